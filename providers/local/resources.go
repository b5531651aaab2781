package local

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/leptonml/lepton/lang/kinds/runcompute"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/cloud"
	"github.com/leptonml/lepton/providers/clusters"
	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/zclconf/go-cty/cty"
)

// Compute for one run: a training or batch inference with `resources { }`
// instead of a cluster gets nodes of its own. The offer is chosen and the
// nodes provisioned by providers/clusters (the same catalog, failover and
// agent bootstrap as a cluster's); they are tagged with the run's address,
// their agents read inboxes under its name in the run storage, and they are
// deleted when the run ends, whether it succeeded or failed. Every step is
// recorded in state private data (computeNodes) before it is taken: a
// killed apply leaves the ids (or the idempotency seed of the nodes being
// made) in state, so the next apply finds the same instances and the same
// run, and destroy deletes them.

// computeNodes is what state keeps of a run's own nodes.
type computeNodes struct {
	Offer cloud.Offer  `json:"offer"`
	Nodes []cloud.Node `json:"nodes,omitempty"` // by index once made
	// Making are node indexes being provisioned with Seed: an apply killed
	// meanwhile provisions them again with the same seed, which finds the
	// instances the first one made (idempotency tokens).
	Making []int  `json:"making,omitempty"`
	Seed   string `json:"seed,omitempty"`
	// Deleted: the run ended and its nodes are gone.
	Deleted bool `json:"deleted,omitempty"`
}

// runCompute is the nodes of a run while apply follows it: its own, or
// its named cluster's.
type runCompute struct {
	cl   *clusters.Cluster
	comp clusters.Compute
	// cluster is set for a run on a named cluster: its lost nodes are
	// replaced as the cluster's (remote_recover.go), comp is unused.
	cluster string
	max     int // max_restarts
	// p is the run as last recorded: its attempt and series for the run
	// handed over next, its nodes for their deletion.
	p runPrivate
}

// save records p in state and keeps it as the latest.
func (rc *runCompute) save(ctx context.Context, req *providers.ApplyRequest, p runPrivate) error {
	rc.p = p
	return record(ctx, req, p)
}

// computeOf decodes a resources block; ok is false without one.
func computeOf(v cty.Value, env providers.Env) (clusters.Compute, bool, error) {
	r := attr(v, "resources")
	if r.IsNull() {
		return clusters.Compute{}, false, nil
	}
	comp, err := clusters.ParseCompute(r, env.Providers)
	if err != nil {
		return comp, true, providers.AtArg("resources", err)
	}
	return comp, true, nil
}

// maxRestarts is the max_restarts argument (default 3).
func maxRestarts(v cty.Value) (int, error) {
	f, ok := num(attr(v, "max_restarts"))
	if !ok {
		return runcompute.DefaultMaxRestarts, nil
	}
	if f != math.Trunc(f) || f < 0 || f > 100 {
		return 0, providers.ArgErrorf("max_restarts", "max_restarts = %v: want a whole number from 0 to 100", f)
	}
	return int(f), nil
}

// planCompute checks placement arguments and, for a resources block, shows
// the chosen offer and its price as a cluster's plan does.
func planCompute(cl *clusters.Cluster, cfg cty.Value, env providers.Env, resp *providers.PlanResponse) error {
	for _, name := range []string{"resources", "cluster", "max_restarts"} {
		if !attr(cfg, name).IsWhollyKnown() {
			// Known after apply: checked (and the offer chosen) then. The
			// rest of the block may be unknown (a batch's model before
			// its training ran): the placement does not depend on it.
			return nil
		}
	}
	if _, err := maxRestarts(cfg); err != nil {
		return err
	}
	comp, ok, err := computeOf(cfg, env)
	if err != nil || !ok {
		return err
	}
	if str(attr(cfg, "cluster")) != "" {
		return providers.ArgErrorf("resources", "a run goes on a named cluster or on resources of its own, not both: remove cluster or the resources block")
	}
	if cl == nil {
		return errors.New("resources are not available in this build")
	}
	cp, err := cl.PlanCompute(comp)
	if err != nil {
		return providers.AtArg("resources", err)
	}
	resp.Detail = append(resp.Detail, cp.Detail...)
	resp.PricePerHour = cp.PricePerHour
	resp.Compute = &providers.Compute{
		Cloud: cp.Offer.Cloud, Region: cp.Offer.Region, Zone: cp.Offer.Zone, InstanceType: cp.Offer.InstanceType,
		Spot: cp.Offer.Spot, Nodes: cp.Nodes, PricePerHour: cp.PricePerHour, Fallbacks: cp.Fallbacks,
	}
	return nil
}

// ensureNodes makes (or finds again) the nodes of a run with resources and
// returns where the run goes, with req.Private holding what was recorded.
func ensureNodes(ctx context.Context, runs *remote.Runs, cl *clusters.Cluster, req *providers.ApplyRequest, comp clusters.Compute, everyNode bool) (target, error) {
	max, err := maxRestarts(req.Planned)
	if err != nil {
		return target{}, err
	}
	rc := &runCompute{cl: cl, comp: comp, max: max}
	p, resumed := parsePrivate(req.Private)
	if !resumed || p.Compute == nil || p.Cluster != req.Address || p.Compute.Deleted {
		id := newRunID(req.Address)
		idx := make([]int, comp.Nodes())
		for i := range idx {
			idx[i] = i
		}
		p = runPrivate{Run: id, Series: id, Cluster: req.Address, Nodes: []int{0}, Started: nowUTC(),
			Compute: &computeNodes{Making: idx, Seed: id}}
		if everyNode {
			p.Nodes = idx // a command runs on every node; a built-in kernel on node 0
		}
		// The planned offer, so that destroy finds what an apply killed
		// while making the nodes left there.
		if cp, err := cl.PlanCompute(comp); err == nil {
			p.Compute.Offer = cp.Offer
		}
	}
	if err := rc.save(ctx, req, p); err != nil {
		return target{}, err
	}
	// From here on an error returns tg: onCompute then deletes whatever
	// nodes exist already (found by their tags when not yet recorded).
	tg := target{address: req.Address, key: remote.ClusterKey(req.Address), compute: rc}
	if len(p.Compute.Making) > 0 && p.Cloud == "" {
		// The first nodes.
		if err := rc.make(ctx, req, &p, nil); err != nil {
			return tg, err
		}
	}
	tg.cloud = p.Compute.Offer.Cloud
	tg.setNodes(p.Compute.Nodes)
	c, err := runs.Open(ctx, tg.cloud, req.Env.Providers[tg.cloud], req.Env.Lineage, false)
	if err != nil {
		return tg, err
	}
	if p.Storage == "" {
		p.Storage = c.URL
		if err := rc.save(ctx, req, p); err != nil {
			return tg, err
		}
	}
	if len(p.Compute.Making) > 0 {
		// A replacement an earlier apply was making when it stopped.
		if err := rc.replace(ctx, req, c, &tg, &p); err != nil {
			return tg, err
		}
	}
	return tg, nil
}

// record keeps p in state and as the request's private data (what a later
// step of this apply finds again).
func record(ctx context.Context, req *providers.ApplyRequest, p runPrivate) error {
	req.Private = p.bytes()
	if req.Record == nil {
		return nil
	}
	return req.Record(ctx, req.Private)
}

func (t *target) setNodes(nodes []cloud.Node) {
	t.ids, t.hosts = nil, nil
	for _, n := range nodes {
		t.ids = append(t.ids, n.ID)
		t.hosts = append(t.hosts, n.Address)
	}
}

// make provisions the nodes p.Compute.Making with p.Compute.Seed (prefer,
// when set, is a lost node's offer, tried first) and records them.
func (rc *runCompute) make(ctx context.Context, req *providers.ApplyRequest, p *runPrivate, prefer *cloud.Offer) error {
	cn := p.Compute
	offer, nodes, leaked, err := rc.cl.ProvisionCompute(ctx, clusters.ComputeRequest{
		Owner: req.Address, Compute: rc.comp, Indexes: cn.Making, Seed: cn.Seed,
		Prefer: prefer, SameCloud: prefer != nil && len(cn.Nodes) > 1, Env: req.Env,
	})
	if err != nil {
		if len(leaked) > 0 {
			// Kept on record, so that the end of the run or destroy deletes them.
			cn.Offer = offer
			cn.Nodes = placeNodes(cn.Nodes, leaked)
			rc.save(context.WithoutCancel(ctx), req, *p)
		}
		return fmt.Errorf("provisioning the run's nodes: %w", err)
	}
	if prefer != nil && offer != *prefer {
		logger(req.Env)("the replacement landed on %s", offer)
	}
	cn.Offer = offer
	cn.Nodes = placeNodes(cn.Nodes, nodes)
	cn.Making = nil
	p.Cloud = offer.Cloud
	return rc.save(ctx, req, *p)
}

// placeNodes puts nodes at their indexes.
func placeNodes(have []cloud.Node, nodes []cloud.Node) []cloud.Node {
	for _, n := range nodes {
		for len(have) <= n.Index {
			have = append(have, cloud.Node{Index: len(have)})
		}
		have[n.Index] = n
	}
	return have
}

// release deletes a run's nodes once it ended (succeeded or failed) and
// records that they are gone.
func (rc *runCompute) release(ctx context.Context, req *providers.ApplyRequest) error {
	p := rc.p
	if p.Compute == nil || p.Compute.Deleted {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	if err := deleteComputeNodes(ctx, rc.cl, req.Env, p); err != nil {
		return fmt.Errorf("the run's nodes: %w; they are kept in state: lepton destroy (or the next apply) deletes them", err)
	}
	p.Compute.Deleted, p.Compute.Nodes, p.Compute.Making = true, nil, nil
	return rc.save(ctx, req, p)
}

// deleteComputeNodes deletes the instances p records, and its nodes'
// objects in the run storage.
func deleteComputeNodes(ctx context.Context, cl *clusters.Cluster, env providers.Env, p runPrivate) error {
	cn := p.Compute
	if cn == nil || cn.Deleted {
		return nil
	}
	var nodes []cloud.Node
	seen := map[string]bool{}
	for _, n := range cn.Nodes {
		if n.ID != "" {
			nodes, seen[n.ID] = append(nodes, n), true
		}
	}
	if len(cn.Making) > 0 && cn.Offer.Cloud != "" {
		// Being made when apply stopped: found by their tags.
		found, err := cl.FindComputeNodes(ctx, env, cn.Offer.Cloud, []string{cn.Offer.Region}, p.Cluster)
		if err != nil {
			return err
		}
		for _, n := range found {
			if !seen[n.ID] {
				nodes, seen[n.ID] = append(nodes, n), true
			}
		}
	}
	if len(nodes) > 0 {
		if err := cl.DeleteComputeNodes(ctx, env, cn.Offer.Cloud, nodes); err != nil {
			return err
		}
		logger(env)("deleted %d node(s) of the run: %s", len(nodes), instanceIDs(nodes))
	}
	if len(cn.Making) > 0 && cn.Offer.Cloud == "" {
		return fmt.Errorf("nodes %v were being made when apply stopped, on an offer not recorded yet: run apply again (it finds them by their idempotency tokens), then destroy", cn.Making)
	}
	return nil
}

func instanceIDs(nodes []cloud.Node) string {
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	return strings.Join(ids, ", ")
}

// deleteRunObjects removes what a run with resources left in the run
// storage besides its runs: its nodes' inboxes and heartbeats, and its
// checkpoints.
func deleteComputeObjects(ctx context.Context, c *remote.Client, p runPrivate) error {
	if err := runstore.DeletePrefix(ctx, c.Store, "clusters/"+remote.ClusterKey(p.Cluster)+"/"); err != nil {
		return err
	}
	if p.Series != "" {
		return runstore.DeletePrefix(ctx, c.Store, "checkpoints/"+p.Series+"/")
	}
	return nil
}

// onCompute runs a training or batch inference on nodes of its own: made
// (or found again), the run followed by apply (replacing lost nodes), then
// deleted whether the run succeeded or failed. An interrupted apply leaves
// the nodes and the run going, recorded in state: the next apply waits for
// the run, destroy deletes the nodes.
func onCompute(ctx context.Context, runs *remote.Runs, cl *clusters.Cluster, req providers.ApplyRequest, comp clusters.Compute, everyNode bool, apply func(providers.ApplyRequest, target) (cty.Value, error)) (cty.Value, error) {
	tg, err := ensureNodes(ctx, runs, cl, &req, comp, everyNode)
	if err != nil {
		if ctx.Err() == nil && tg.compute != nil {
			if rerr := tg.compute.release(ctx, &req); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return cty.NilVal, err
	}
	v, err := apply(req, tg)
	if ctx.Err() != nil || errors.Is(err, providers.ErrLeftRunning) {
		return v, err // the run goes on, on its nodes
	}
	if rerr := tg.compute.release(ctx, &req); rerr != nil {
		if err == nil {
			return cty.NilVal, rerr
		}
		err = errors.Join(err, rerr)
	}
	return v, err
}
