package local

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/cloud"
	"github.com/leptonml/lepton/providers/clusters"
	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/runspec"
)

// Recovery: while apply follows a run on cloud nodes, a node that is
// preempted (its agent reports the run interrupted) or stops reporting is
// replaced, and the run starts again as a new run (a new id, Run.Attempt
// one more) that restores the checkpoint the lost one kept in the run
// storage (Run.Checkpoint, one series of attempts under the first
// attempt's id). Each step is recorded in state before it is taken, so a
// killed apply resumes it without a second instance or a second run:
//
//  1. the restart (cause, new run id, the node to make and its idempotency
//     seed, the lost instance) is recorded;
//  2. the lost instance is deleted, and its replacement made on the same
//     offer, or on the next one with capacity (providers/clusters);
//  3. the new node is recorded, and the new run handed over.
//
// The nodes are a run's own (resources { }, resources.go: the run records
// them and deletes them when it ends) or a named cluster's. A named
// cluster's node is replaced only when it is gone (preempted, or the cloud
// reports its instance gone or not running): one whose instance runs but
// whose agent is silent is not deleted under the cluster, and the run
// fails saying to apply again. A named cluster's lost node is replaced as the cluster's (clusters.ReplaceNode:
// the cluster's spec, tags, node index and agent bootstrap), and the
// cluster adopts it: its Read finds the instance tagged as its node i, and
// Env.Reread has the cluster's state record it before the run goes on, so
// the next plan shows no change, destroy deletes the new node, and a
// killed apply leaves an instance the cluster's refresh adopts. The run
// records only the replacement in progress (runPrivate.Replacing).
//
// max_restarts (default 3) bounds it.

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

// nodeReplacing is a lost node of a named cluster being replaced,
// recorded before the lost instance is deleted: a killed apply deletes it
// (when still there) and makes the replacement with the same seed, which
// finds the instance the first try made.
type nodeReplacing struct {
	Index int        `json:"index"`
	Lost  cloud.Node `json:"lost"`
	Seed  string     `json:"seed"`
}

// recoverOn has the lost nodes of the named cluster tg replaced during the
// run, as a run's own are (tg.compute), and finishes the replacement an
// interrupted apply recorded in req.Private.
func recoverOn(ctx context.Context, runs *remote.Runs, cl *clusters.Cluster, req *providers.ApplyRequest, tg *target) error {
	if cl == nil {
		return nil // a build without clusters: a lost node fails the run
	}
	max, err := maxRestarts(req.Planned)
	if err != nil {
		return err
	}
	rc := &runCompute{cl: cl, cluster: tg.address, max: max}
	if p, resumed := parsePrivate(req.Private); resumed && p.Cluster == tg.address {
		rc.p = p
	}
	tg.compute = rc
	r := rc.p.Replacing
	if r == nil {
		return nil
	}
	if cloudName, n, ok := rc.lostInstance(req, &rc.p, r.Index); ok && n.ID != r.Lost.ID {
		// The cluster has another node i already: it adopted the
		// replacement (its refresh found it), or it was replaced as a
		// whole. A node that runs needs no replacement.
		if _, found, err := cl.ReadComputeNode(ctx, req.Env, cloudName, n); err == nil && found {
			rc.p.Replacing = nil
			return rc.save(ctx, req, rc.p)
		}
	}
	c, err := openRuns(ctx, runs, req.Env, *tg)
	if err != nil {
		return err
	}
	logger(req.Env)("replacing node %d of %s, as an interrupted apply was", rc.p.Replacing.Index, tg.address)
	return rc.replace(ctx, req, c, tg, &rc.p)
}

// lostInstance is the instance node i of the run's target was: a node of
// the run's own, or of its named cluster as its state has it.
func (rc *runCompute) lostInstance(req *providers.ApplyRequest, p *runPrivate, i int) (cloudName string, n cloud.Node, ok bool) {
	if rc.cluster == "" {
		if p.Compute != nil && i < len(p.Compute.Nodes) && p.Compute.Nodes[i].ID != "" {
			return p.Compute.Offer.Cloud, p.Compute.Nodes[i], true
		}
		return "", cloud.Node{}, false
	}
	if req.Env.Lookup == nil {
		return "", cloud.Node{}, false
	}
	v, found := req.Env.Lookup(rc.cluster)
	if !found {
		return "", cloud.Node{}, false
	}
	return clusters.StateNode(v, i)
}

// restart replaces the lost node of the run p and hands over its next
// attempt; p and tg are updated. It returns an error when the run cannot
// go on (max_restarts reached, no capacity left).
func (rc *runCompute) restart(ctx context.Context, req *providers.ApplyRequest, c *remote.Client, tg *target, p *runPrivate, lost *remote.NodeLostError, handOver func(id string) error) error {
	logf := logger(req.Env)
	cause, instance := lost.Cause, ""
	cloudName, n, known := rc.lostInstance(req, p, lost.Node)
	gone := lost.Interrupted // the cloud took the node, or soon will
	if known {
		instance = n.ID + ", "
		if got, found, err := rc.cl.ReadComputeNode(ctx, req.Env, cloudName, n); err == nil {
			switch {
			case !found:
				instance, cause, gone = n.ID+" gone, ", cause+fmt.Sprintf("; instance %s is gone", n.ID), true
			case got.Status != "running":
				instance, cause, gone = n.ID+" "+got.Status+", ", cause+fmt.Sprintf("; instance %s is %s", n.ID, got.Status), true
			}
		}
	}
	if rc.cluster != "" && !gone {
		// A named cluster's node whose instance still runs (a hung agent,
		// a partition): the cluster owns it, and it may serve more than
		// this run, so it is not deleted under the cluster here.
		return fmt.Errorf("%s; the run was stopped on every node of %s, and its log so far stays readable (lepton logs %s -node %d): apply again to run the training anew once the node answers (a node that is gone is replaced by the cluster when a plan finds it)",
			cause, tg.address, req.Address, lost.Node)
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
	seed := fmt.Sprintf("%s/attempt-%d", p.Series, p.Attempt)
	if rc.cluster != "" {
		p.Replacing = &nodeReplacing{Index: lost.Node, Lost: n, Seed: seed}
	} else {
		p.Compute.Making = []int{lost.Node}
		p.Compute.Seed = seed
	}
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

// replace deletes the lost instances a restart recorded (when they still
// exist) and makes new ones, preferring their offer.
func (rc *runCompute) replace(ctx context.Context, req *providers.ApplyRequest, c *remote.Client, tg *target, p *runPrivate) error {
	if rc.cluster != "" {
		return rc.replaceClusterNode(ctx, req, c, tg, p)
	}
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

// replaceClusterNode replaces the node of the named cluster that
// p.Replacing records, and has the cluster's state record the new one.
func (rc *runCompute) replaceClusterNode(ctx context.Context, req *providers.ApplyRequest, c *remote.Client, tg *target, p *runPrivate) error {
	r := p.Replacing
	if r.Lost.ID != "" {
		// The old instance goes first: a node that only stopped reporting
		// must not run anything again, and the new one reads its inbox.
		if err := rc.cl.DeleteComputeNodes(ctx, req.Env, tg.cloud, []cloud.Node{r.Lost}); err != nil {
			return fmt.Errorf("deleting the lost node %d of %s: %w", r.Index, rc.cluster, err)
		}
	}
	c.Store.Delete(ctx, runspec.HeartbeatKey(tg.key, r.Index)) // the lost agent's last word
	cur, found := req.Env.Lookup(rc.cluster)
	if !found || cur.IsNull() {
		return fmt.Errorf("%s is not in state: its lost node %d cannot be replaced", rc.cluster, r.Index)
	}
	node, offer, err := rc.cl.ReplaceNode(ctx, clusters.NodeReplacement{Address: rc.cluster, Current: cur, Index: r.Index, Seed: r.Seed, Env: req.Env})
	if err != nil {
		return err
	}
	logger(req.Env)("replaced node %d of %s: %s on %s", r.Index, rc.cluster, node.ID, offer)
	if req.Env.Reread != nil {
		// The cluster adopts the node (its Read finds it by its tags) and
		// its state says so before the run goes on.
		if err := req.Env.Reread(ctx, rc.cluster); err != nil {
			return fmt.Errorf("recording the new node %d (%s) in %s: %w", r.Index, node.ID, rc.cluster, err)
		}
		cur, _ = req.Env.Lookup(rc.cluster)
		if _, got, ok := clusters.StateNode(cur, r.Index); !ok || got.ID != node.ID {
			return fmt.Errorf("%s did not adopt its new node %d (%s): its refresh does not find it", rc.cluster, r.Index, node.ID)
		}
		tg.ids, tg.hosts = strList(attr(cur, "node_ids")), strList(attr(cur, "node_addresses"))
	} else {
		for len(tg.ids) <= r.Index {
			tg.ids, tg.hosts = append(tg.ids, ""), append(tg.hosts, "")
		}
		tg.ids[r.Index], tg.hosts[r.Index] = node.ID, node.Address
	}
	p.Replacing = nil
	return rc.save(ctx, req, *p)
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
