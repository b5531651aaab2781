package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leptonml/lepton/runtime/objstore/signed"
	"github.com/leptonml/lepton/runtime/runspec"
)

// Why a run was stopped.
type stopReason int32

const (
	stopNone     stopReason = iota
	stopRemoved             // it left the inbox
	stopReplaced            // a new run of the same endpoint took its server
	stopShutdown            // the agent is stopping (SIGTERM)
)

const (
	// minStatusGap bounds status writes to about 5 a second.
	minStatusGap = 200 * time.Millisecond
	// logEvery is the most often the log object is rewritten.
	logEvery = time.Second
	// maxLog is how much of the log's end the log object holds.
	maxLog = 4 << 20
)

// run is one run of the inbox on this node.
type run struct {
	a      *Agent
	dir    string
	ctx    context.Context
	cancel context.CancelFunc
	reason atomic.Int32
	// finished is set once the run's final status is written.
	finished atomic.Bool
	updates  chan runspec.Run // endpoints: a changed spec of the same run

	mu       sync.Mutex
	spec     runspec.Run
	st       runspec.Status
	dirty    bool
	log      []byte // the log's end (at most about maxLog)
	logDirty bool
	logFile  *os.File // the whole log, in the run's directory
	kick     chan struct{}
}

// newRun is called with a.mu held.
func (a *Agent) newRun(ctx context.Context, w runspec.Run) *run {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &run{a: a, dir: a.runDir(w.ID), ctx: rctx, cancel: cancel, spec: w, updates: make(chan runspec.Run, 1),
		kick: make(chan struct{}, 1)}
	r.st = runspec.Status{Run: w.ID, Node: a.cfg.Node, Host: a.host, State: runspec.StateStarting, Started: time.Now().UTC()}
	return r
}

func (r *run) active() bool { return !r.finished.Load() }

// stop asks the run to end; it reports how it ended itself.
func (r *run) stop(why stopReason) {
	r.reason.CompareAndSwap(int32(stopNone), int32(why))
	r.cancel()
}

// update hands an endpoint run its changed spec (the latest wins).
func (r *run) update(w runspec.Run) {
	r.mu.Lock()
	same := specEqual(r.spec, w)
	r.mu.Unlock()
	if same {
		return
	}
	select {
	case <-r.updates:
	default:
	}
	r.updates <- w
}

func specEqual(a, b runspec.Run) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// objects are the run's status and log URLs (an update may renew them).
func (r *run) objects() (status, log runspec.Object) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.spec.Status, r.spec.Log
}

// execute runs the run to its end and writes its final status.
func (r *run) execute() {
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		r.failNow(err)
		return
	}
	if f, err := os.OpenFile(filepath.Join(r.dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		r.logFile = f
		defer f.Close()
	}
	stop := make(chan struct{})
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		r.report(stop)
	}()
	var res *runspec.Result
	var err error
	switch r.spec.Kind {
	case runspec.KindTraining:
		r.setState(runspec.StateRunning, nil, "")
		res, err = r.train()
	case runspec.KindBatch:
		r.setState(runspec.StateRunning, nil, "")
		res, err = r.batch()
	case runspec.KindEndpoint:
		res, err = r.serveEndpoint()
	default:
		err = fmt.Errorf("run kind %q: this agent (%s) runs %s, %s and %s", r.spec.Kind, agentVersion(), runspec.KindTraining, runspec.KindBatch, runspec.KindEndpoint)
	}
	close(stop)
	<-reported
	r.end(res, err)
}

// end writes the final state of the run: its log first, then its status.
func (r *run) end(res *runspec.Result, err error) {
	state, msg := runspec.StateSucceeded, ""
	switch why := stopReason(r.reason.Load()); {
	case why == stopReplaced:
		state, msg = runspec.StateStopped, "replaced by a newer run of the same endpoint, which took over its server"
	case why == stopRemoved:
		state, msg = runspec.StateStopped, "stopped: the run left the node's inbox"
	case why == stopShutdown && r.spec.Kind == runspec.KindEndpoint:
		state, msg = runspec.StateStopped, "stopped: the node's agent was stopped"
	case why == stopShutdown:
		state, msg = runspec.StateFailed, "interrupted: the node's agent was stopped during the run (SIGTERM: the node is shutting down or was preempted)"
		r.mu.Lock()
		r.st.Interrupted = true
		r.mu.Unlock()
	case err != nil:
		state, msg = runspec.StateFailed, err.Error()
	case r.spec.Kind == runspec.KindEndpoint:
		state = runspec.StateStopped
	}
	if msg != "" {
		r.logf("%s", msg)
	}
	r.setState(state, res, msg)
	r.finish()
}

// finish writes the last log and status, retrying a failed status write
// (a reader waits on it) for a while.
func (r *run) finish() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r.writeLog(ctx)
	for wait := 200 * time.Millisecond; ; wait *= 2 {
		if err := r.writeStatus(ctx); err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	r.finished.Store(true)
}

// failNow reports a run that could not start at all.
func (r *run) failNow(err error) {
	r.logf("%v", err)
	r.setState(runspec.StateFailed, nil, err.Error())
	r.finish()
}

// interrupted reports a run an earlier agent started and did not finish:
// it is not started a second time.
func (r *run) interrupted() {
	r.failNow(errors.New("interrupted: the node's agent restarted while the run was going (it is not started twice); apply again to start a new run"))
}

// setState changes the run's state and asks for a prompt status write.
func (r *run) setState(state string, res *runspec.Result, errText string) {
	r.mu.Lock()
	r.st.State, r.st.Result, r.st.Error, r.dirty = state, res, errText, true
	if runspec.Terminal(state) && r.st.Ended.IsZero() {
		r.st.Ended = time.Now().UTC()
	}
	r.mu.Unlock()
	r.poke()
}

func (r *run) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// line records a progress line: the status carries the last MaxLines and
// is written promptly; the log gets every one.
func (r *run) line(s string) {
	r.mu.Lock()
	r.st.Lines = append(r.st.Lines, s)
	if n := len(r.st.Lines); n > runspec.MaxLines {
		r.st.Lines = append([]string(nil), r.st.Lines[n-runspec.MaxLines:]...)
	}
	r.st.LineSeq++
	r.dirty = true
	r.appendLogLocked(s + "\n")
	r.mu.Unlock()
	r.poke()
}

// logf adds a line to the run's log.
func (r *run) logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	r.mu.Lock()
	r.appendLogLocked(time.Now().UTC().Format("15:04:05 ") + s)
	r.mu.Unlock()
}

func (r *run) appendLogLocked(s string) {
	if r.logFile != nil {
		r.logFile.WriteString(s)
	}
	r.log = append(r.log, s...)
	if len(r.log) > maxLog+maxLog/4 {
		cut := len(r.log) - maxLog
		if i := bytes.IndexByte(r.log[cut:], '\n'); i >= 0 && i < 4096 {
			cut += i + 1
		}
		r.log = append([]byte(nil), r.log[cut:]...)
	}
	r.logDirty = true
}

// logTail is the end of the log the log object holds: at most maxLog
// bytes, from the start of a line.
func logTail(b []byte) []byte {
	if len(b) <= maxLog {
		return b
	}
	b = b[len(b)-maxLog:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 && i < 4096 {
		b = b[i+1:]
	}
	return b
}

// logWriter writes lines to the run's log (for the runtime's own log lines).
type logWriter struct{ r *run }

func (w logWriter) Write(p []byte) (int, error) {
	if f := w.r.a.opts.onLog; f != nil {
		f(w.r.spec.ID, string(p))
	}
	w.r.mu.Lock()
	w.r.appendLogLocked(string(p))
	w.r.mu.Unlock()
	return len(p), nil
}

// lineWriter splits what a runtime prints as progress into lines.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.line(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
}

// report writes the status on every change (at most every minStatusGap)
// and at least every HeartbeatEvery, and the log at most every logEvery,
// until stop is closed.
func (r *run) report(stop <-chan struct{}) {
	t := time.NewTicker(minStatusGap)
	defer t.Stop()
	var lastStatus, lastLog time.Time
	tick := func() {
		now := time.Now()
		r.mu.Lock()
		dirty, logDirty := r.dirty, r.logDirty
		r.mu.Unlock()
		if (dirty && now.Sub(lastStatus) >= minStatusGap) || now.Sub(lastStatus) >= r.a.opts.HeartbeatEvery {
			lastStatus = now
			if err := bounded(r.writeStatus); err != nil {
				r.a.log.Warn("status", "run", r.spec.ID, "err", err)
			}
		}
		if logDirty && now.Sub(lastLog) >= logEvery {
			lastLog = now
			bounded(func(ctx context.Context) error { r.writeLog(ctx); return nil })
		}
	}
	tick()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			tick()
		case <-r.kick:
			tick()
		}
	}
}

// bounded runs one write with its own deadline: a stopped run still
// reports, and a hung store does not hold the reporter forever.
func bounded(f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return f(ctx)
}

func (r *run) writeStatus(ctx context.Context) error {
	host := r.a.hostNow() // before r.mu: the agent takes a.mu, then r.mu
	r.mu.Lock()
	r.st.Updated = time.Now().UTC()
	if r.st.Host == "" {
		r.st.Host = host
	}
	b, err := json.Marshal(r.st)
	r.dirty = false
	o := r.spec.Status
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if err := signed.Put(ctx, r.a.opts.Client, o, bytes.NewReader(b), int64(len(b))); err != nil {
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
		return err
	}
	return nil
}

func (r *run) writeLog(ctx context.Context) {
	r.mu.Lock()
	b := append([]byte(nil), logTail(r.log)...)
	r.logDirty = false
	o := r.spec.Log
	r.mu.Unlock()
	if o.URL == "" {
		return
	}
	if err := signed.Put(ctx, r.a.opts.Client, o, bytes.NewReader(b), int64(len(b))); err != nil {
		r.a.log.Warn("log", "run", r.spec.ID, "err", err)
		r.mu.Lock()
		r.logDirty = true
		r.mu.Unlock()
	}
}
