package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/leptonml/lepton/runtime/runspec"
)

// Watch follows one run on some nodes of a cluster through the status
// objects their agents write.
type Watch struct {
	Client  *Client
	Cluster string // ClusterKey of the cluster
	Run     string
	Nodes   []int
	// Progress receives the progress lines the nodes report, each once.
	Progress io.Writer
	// Done says when a node's status is final for this wait; default: a
	// terminal state.
	Done func(runspec.Status) bool
	// BootTimeout bounds how long a node may show no sign of its agent
	// (neither a status for the run nor a heartbeat); default 10 minutes.
	BootTimeout time.Duration
	// Every is the polling period; default 250ms (progress reaches the
	// terminal well within 2 s of a node writing it).
	Every time.Duration
	// CorruptGrace is how long a status that is not valid JSON is waited
	// out (a going run's agent rewrites it every HeartbeatEvery); default
	// StaleAfter.
	CorruptGrace time.Duration
}

// NodeLostError is a run that did not fail of itself: its node was
// preempted or shut down under it (the agent said so), or its agent stopped
// reporting. A run with nodes of its own starts again on a new node.
type NodeLostError struct {
	Run   string
	Node  int
	Host  string
	Cause string
	// Short says what happened in a few words ("was interrupted",
	// "stopped reporting"), for a status line.
	Short string
	// Interrupted: the node's agent reported the run interrupted (it was
	// stopped under it: a preemption, a shutdown), rather than going
	// silent.
	Interrupted bool
}

func (e *NodeLostError) Error() string { return e.Cause }

// Wait polls until every node is done, and returns their statuses. A failed
// run is an error naming the node; so is a node whose agent stopped
// reporting.
func (w Watch) Wait(ctx context.Context) (map[int]runspec.Status, error) {
	if w.Done == nil {
		w.Done = func(st runspec.Status) bool { return runspec.Terminal(st.State) }
	}
	if w.BootTimeout == 0 {
		w.BootTimeout = 10 * time.Minute
	}
	if w.Every == 0 {
		w.Every = 250 * time.Millisecond
	}
	if w.CorruptGrace == 0 {
		w.CorruptGrace = runspec.StaleAfter
	}
	start := time.Now()
	seen := map[int]int{}
	done := map[int]runspec.Status{}
	lastHB := map[int]time.Time{}
	corrupt := map[int]time.Time{}
	t := time.NewTicker(w.Every)
	defer t.Stop()
	for {
		for _, n := range w.Nodes {
			if _, ok := done[n]; ok {
				continue
			}
			st, found, err := w.Client.Status(ctx, w.Run, n)
			var bad *runspec.DecodeError
			if errors.As(err, &bad) {
				// Overwritten by the agent's next report, unless the run
				// has ended: then it stays, and so does the run's record.
				if corrupt[n].IsZero() {
					corrupt[n] = time.Now()
				}
				if time.Since(corrupt[n]) < w.CorruptGrace {
					continue
				}
				return done, fmt.Errorf("%w (for %s): the run is left as it is; remove or repair the object, then apply again", err, time.Since(corrupt[n]).Round(time.Second))
			}
			if err != nil {
				return done, err
			}
			delete(corrupt, n)
			if !found {
				if err := w.checkNode(ctx, n, start, lastHB); err != nil {
					return done, err
				}
				continue
			}
			w.print(n, st, seen)
			switch {
			case st.State == runspec.StateFailed && st.Interrupted:
				return done, &NodeLostError{Run: w.Run, Node: n, Host: st.Host, Interrupted: true, Short: "was interrupted (its agent was stopped: preempted or shut down)",
					Cause: fmt.Sprintf("run %s was interrupted on node %d (%s): %s", w.Run, n, st.Host, st.Error)}
			case st.State == runspec.StateFailed:
				n, st = w.firstFailure(ctx, n, st)
				return done, fmt.Errorf("run %s failed on node %d (%s): %s", w.Run, n, st.Host, st.Error)
			case w.Done(st):
				done[n] = st
			case runspec.Stale(st.Updated, time.Now()):
				return done, &NodeLostError{Run: w.Run, Node: n, Host: st.Host, Short: "stopped reporting",
					Cause: fmt.Sprintf("node %d (%s) stopped reporting on run %s at %s (%s ago): its agent or the instance is gone",
						n, st.Host, w.Run, st.Updated.UTC().Format(time.RFC3339), time.Since(st.Updated).Round(time.Second))}
			}
		}
		if len(done) == len(w.Nodes) {
			return done, nil
		}
		select {
		case <-ctx.Done():
			return done, ctx.Err()
		case <-t.C:
		}
	}
}

// settle is how long a run on several nodes is given, once one of them
// failed, for the statuses of the others to show whether one failed before
// it (a rank that dies takes its peers down a moment later).
const settle = time.Second

// firstFailure is, of the nodes that failed, the one whose run ended first:
// the cause, rather than a peer it brought down.
func (w Watch) firstFailure(ctx context.Context, n int, st runspec.Status) (int, runspec.Status) {
	if len(w.Nodes) < 2 {
		return n, st
	}
	select {
	case <-ctx.Done():
		return n, st
	case <-time.After(settle):
	}
	for _, m := range w.Nodes {
		o, found, err := w.Client.Status(ctx, w.Run, m)
		if err != nil || !found || o.State != runspec.StateFailed || o.Ended.IsZero() {
			continue
		}
		if st.Ended.IsZero() || o.Ended.Before(st.Ended) || (o.Ended.Equal(st.Ended) && m < n) {
			n, st = m, o
		}
	}
	return n, st
}

// checkNode looks at the heartbeat of a node that has not reported on the
// run yet (at most every 2 s).
func (w Watch) checkNode(ctx context.Context, n int, start time.Time, last map[int]time.Time) error {
	if time.Since(last[n]) < 2*time.Second {
		return nil
	}
	last[n] = time.Now()
	hb, found, err := w.Client.Heartbeat(ctx, w.Cluster, n)
	if err != nil {
		return err
	}
	switch {
	case found && hb.Error != "" && !runspec.Stale(hb.Updated, time.Now()):
		return fmt.Errorf("the agent of %s node %d (%s) reports: %s", w.Cluster, n, hb.Host, hb.Error)
	case found && runspec.Stale(hb.Updated, time.Now()) && time.Since(start) > runspec.StaleAfter:
		return &NodeLostError{Run: w.Run, Node: n, Host: hb.Host, Short: "stopped reporting",
			Cause: fmt.Sprintf("the agent of %s node %d (%s) stopped reporting at %s (%s ago): the node is gone or stuck",
				w.Cluster, n, hb.Host, hb.Updated.UTC().Format(time.RFC3339), time.Since(hb.Updated).Round(time.Second))}
	case !found && time.Since(start) > w.BootTimeout:
		return fmt.Errorf("%s node %d has not started its agent after %s: see the instance's console output", w.Cluster, n, w.BootTimeout)
	}
	return nil
}

// print writes the progress lines of st not printed yet.
func (w Watch) print(n int, st runspec.Status, seen map[int]int) {
	if w.Progress == nil {
		seen[n] = st.LineSeq
		return
	}
	first := st.LineSeq - len(st.Lines) // sequence number of Lines[0], minus one
	for i, line := range st.Lines {
		if first+i+1 <= seen[n] {
			continue
		}
		if len(w.Nodes) > 1 {
			fmt.Fprintf(w.Progress, "node %d: %s\n", n, strings.TrimRight(line, "\n"))
		} else {
			fmt.Fprintln(w.Progress, strings.TrimRight(line, "\n"))
		}
	}
	if st.LineSeq > seen[n] {
		seen[n] = st.LineSeq
	}
}
