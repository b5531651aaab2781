package local

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/cloud"
	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/runspec"
)

// Recovery: while apply follows a run on nodes of its own (resources { }),
// a node that is preempted (its agent reports the run interrupted) or stops
// reporting is replaced, and the run starts again as a new run (a new id,
// Run.Attempt one more) that restores the checkpoint the lost one kept in
// the run storage (Run.Checkpoint, one series of attempts under the first
// attempt's id). Each step is recorded in state before it is taken, so a
// killed apply resumes it without a second instance or a second run:
//
//  1. the restart (cause, new run id, the node to make and its idempotency
//     seed) is recorded;
//  2. the lost instance is deleted, and its replacement made on the same
//     offer, or on the next one with capacity (providers/clusters);
//  3. the new node's id is recorded, and the new run handed over.
//
// max_restarts (default 3) bounds it. A run on a named cluster is not
// restarted: the cluster owns its nodes, and its refresh marks the lost
// one degraded, so the error says to apply again (which replaces the
// cluster and runs the training again).

// restart is one restart of a run, for state and `lepton status`.
type restart struct {
	At    time.Time `json:"at"`
	Run   string    `json:"run"` // the attempt that was lost
	Node  int       `json:"node"`
	Cause string    `json:"cause"`
}

// attemptOf is the series and attempt of the run id about to be handed
// over: those recorded for a run on nodes of its own, else a first attempt
// naming its own series.
func attemptOf(tg target, id string) (series string, attempt int) {
	if rc := tg.compute; rc != nil && rc.p.Run == id && rc.p.Series != "" {
		return rc.p.Series, rc.p.Attempt
	}
	return id, 0
}

// prepareAttempt gives a built-in run about to be handed over its attempt
// and its checkpoint objects (handOver calls it last).
func prepareAttempt(ctx context.Context, c *remote.Client, tg target, run *runspec.Run) error {
	series, attempt := attemptOf(tg, run.ID)
	run.Attempt = attempt
	if run.Kind != runspec.KindTraining {
		return nil
	}
	cp, err := commandCheckpoint(ctx, c, series, attempt, run.Node)
	if err != nil {
		return err
	}
	cp.Every = 0 // a built-in kernel saves after each checkpointed epoch
	run.Checkpoint = cp
	return nil
}

// lostNode reports whether a wait ended because a node was lost (not
// because the run failed of itself).
func lostNode(err error) (*remote.NodeLostError, bool) {
	var lost *remote.NodeLostError
	return lost, errors.As(err, &lost)
}

// restart replaces the lost node of the run p and hands over its next
// attempt; p and tg are updated. It returns an error when the run cannot
// go on (max_restarts reached, no capacity left).
func (rc *runCompute) restart(ctx context.Context, req *providers.ApplyRequest, c *remote.Client, tg *target, p *runPrivate, lost *remote.NodeLostError, handOver func(id string) error) error {
	logf := logger(req.Env)
	cause, instance := lost.Cause, ""
	if p.Compute != nil && lost.Node < len(p.Compute.Nodes) {
		n := p.Compute.Nodes[lost.Node]
		instance = n.ID + ", "
		if got, found, err := rc.cl.ReadComputeNode(ctx, req.Env, p.Compute.Offer.Cloud, n); err == nil {
			switch {
			case !found:
				instance, cause = n.ID+" gone, ", cause+fmt.Sprintf("; instance %s is gone", n.ID)
			case got.Status != "running":
				instance, cause = n.ID+" "+got.Status+", ", cause+fmt.Sprintf("; instance %s is %s", n.ID, got.Status)
			}
		}
	}
	short := cause
	if lost.Short != "" {
		short = fmt.Sprintf("node %d (%s%s) %s", lost.Node, instance, lost.Host, lost.Short)
	}
	if p.Attempt >= rc.max {
		return fmt.Errorf("%s; the run was restarted %d time(s) already (max_restarts = %d): giving up", cause, p.Attempt, rc.max)
	}
	// 1. Recorded first: the next apply continues this restart.
	old := p.Run
	p.Restarts = append(p.Restarts, restart{At: nowUTC(), Run: old, Node: lost.Node, Cause: short})
	p.Attempt++
	if p.Series == "" {
		p.Series = old
	}
	p.Run = newRunID(req.Address)
	p.Started = nowUTC()
	p.Compute.Making = []int{lost.Node}
	p.Compute.Seed = fmt.Sprintf("%s/attempt-%d", p.Series, p.Attempt)
	if err := rc.save(ctx, req, *p); err != nil {
		return err
	}
	logf("restart %d of at most %d: %s", p.Attempt, rc.max, cause)
	for _, n := range p.Nodes {
		// Every node's part of the lost attempt stops; the next starts
		// on all of them.
		if err := c.RemoveRun(ctx, tg.key, n, old); err != nil {
			logf("could not take run %s out of node %d's inbox: %v", old, n, err)
		}
	}
	if err := rc.replace(ctx, req, c, tg, p); err != nil {
		return err
	}
	if err := handOver(p.Run); err != nil {
		return err
	}
	logf("started run %s (attempt %d) on %s node %d (%s), from the last checkpoint of %s", p.Run, p.Attempt, tg.address, lost.Node, tg.host(lost.Node), p.Series)
	return nil
}

// replace deletes the instances of p.Compute.Making (when they still
// exist) and makes new ones, preferring their offer.
func (rc *runCompute) replace(ctx context.Context, req *providers.ApplyRequest, c *remote.Client, tg *target, p *runPrivate) error {
	cn := p.Compute
	var gone []cloud.Node
	for _, i := range cn.Making {
		if i < len(cn.Nodes) && cn.Nodes[i].ID != "" {
			gone = append(gone, cn.Nodes[i])
		}
	}
	// The old instance goes first: a node that only stopped reporting
	// must not run anything again, and the new one reads its inbox.
	if err := rc.cl.DeleteComputeNodes(ctx, req.Env, cn.Offer.Cloud, gone); err != nil {
		return fmt.Errorf("deleting the lost node: %w", err)
	}
	for _, n := range gone {
		cn.Nodes[n.Index].ID, cn.Nodes[n.Index].Address = "", ""
		c.Store.Delete(ctx, runspec.HeartbeatKey(tg.key, n.Index)) // the lost agent's last word
	}
	prefer := cn.Offer
	if err := rc.make(ctx, req, p, &prefer); err != nil {
		return err
	}
	tg.cloud = cn.Offer.Cloud
	tg.setNodes(cn.Nodes)
	return nil
}

// restartsDetail is what `lepton status` says of a run's restarts.
func restartsDetail(p runPrivate) string {
	if len(p.Restarts) == 0 {
		return ""
	}
	noun := "restarts"
	if len(p.Restarts) == 1 {
		noun = "restart"
	}
	var causes []string
	for _, r := range p.Restarts {
		causes = append(causes, r.At.UTC().Format("15:04:05")+" "+r.Cause)
	}
	return fmt.Sprintf("%d %s (%s)", len(p.Restarts), noun, strings.Join(causes, "; "))
}
