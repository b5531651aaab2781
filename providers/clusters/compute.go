package clusters

import (
	"context"
	"errors"
	"fmt"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/cloud"
	"github.com/zclconf/go-cty/cty"
)

// Compute is the nodes of one run: a training's or a batch inference's
// `resources { ... }` block, which takes a cluster's arguments. Its offer is
// chosen as a cluster's is, its nodes are provisioned with the same failover
// and boot the same agent, but they belong to the run (providers/local): made
// when it starts, replaced when one is lost, deleted when it ends.
type Compute struct{ a args }

// ParseCompute decodes a resources block; configured are the provider
// blocks (the default clouds).
func ParseCompute(v cty.Value, configured map[string]map[string]string) (Compute, error) {
	a, err := parseArgs(v, configured)
	if err != nil {
		return Compute{}, err
	}
	if a.local() {
		if a.CloudsSet {
			return Compute{}, errors.New(`clouds = ["local"]: resources are cloud instances made for the run; to run on this machine, remove the resources block`)
		}
		return Compute{}, errors.New(`resources are cloud instances made for the run, but the configuration has no provider "aws", "gcp" or "azure" block: add one, or remove the resources block to run on this machine`)
	}
	return Compute{a: a}, nil
}

// Nodes is how many nodes the run gets.
func (c Compute) Nodes() int { return c.a.Nodes }

// ComputePlan is the offer a run's nodes would land on.
type ComputePlan struct {
	Offer        cloud.Offer
	Nodes        int
	PricePerHour float64 // all nodes
	Fallbacks    int
	Detail       []string // the plan's lines, as a cluster's
}

// PlanCompute chooses the offer of a run's nodes.
func (c *Cluster) PlanCompute(comp Compute) (ComputePlan, error) {
	ch, err := c.choose(comp.a)
	if err != nil {
		return ComputePlan{}, err
	}
	offers := ch.CloudOffers()
	detail := choiceDetail(ch)
	detail[1] += " while the run goes (made for it, deleted when it ends)"
	return ComputePlan{Offer: offers[0], Nodes: ch.Nodes, PricePerHour: roundCents(ch.TotalPerHour()), Fallbacks: len(ch.Fallbacks), Detail: detail}, nil
}

// ComputeRequest asks for some nodes of a run.
type ComputeRequest struct {
	Owner   string // the run's address: the instances' tag, and where their agents read their inboxes
	Compute Compute
	Indexes []int // the nodes to make
	// Seed makes the idempotency tokens: the same seed finds the instances
	// a killed apply created instead of making others.
	Seed string
	// Prefer is tried first (a lost node's offer); SameCloud keeps the
	// fallbacks in its cloud and region (nodes of one run talk to each
	// other).
	Prefer    *cloud.Offer
	SameCloud bool
	Env       providers.Env
}

// ProvisionCompute creates a run's nodes, failing over across the offers
// that meet its resources. On error, Leaked are instances that could not be
// deleted (the caller keeps them on record).
func (c *Cluster) ProvisionCompute(ctx context.Context, req ComputeRequest) (offer cloud.Offer, nodes []cloud.Node, leaked []cloud.Node, err error) {
	ch, err := c.choose(req.Compute.a)
	if err != nil {
		return offer, nil, nil, err
	}
	var offers []cloud.Offer
	if req.Prefer != nil {
		offers = append(offers, *req.Prefer)
	}
	for _, o := range ch.CloudOffers() {
		if req.Prefer != nil && (o == *req.Prefer || req.SameCloud && (o.Cloud != req.Prefer.Cloud || o.Region != req.Prefer.Region)) {
			continue
		}
		offers = append(offers, o)
	}
	provs := map[string]cloud.Provisioner{}
	for _, o := range offers {
		if _, ok := provs[o.Cloud]; !ok {
			provs[o.Cloud] = c.booting(&lazy{c: c, cloud: o.Cloud, env: req.Env}, o.Cloud, req.Owner, req.Env)
		}
	}
	logf := logger(req.Env)
	tried := 0
	res, err := cloud.Provision(ctx, cloud.Request{
		Offers:  offers,
		Nodes:   len(req.Indexes),
		Indexes: req.Indexes,
		Template: cloud.NodeSpec{
			Address: req.Owner, Lineage: req.Env.Lineage, DiskGB: req.Compute.a.DiskGB, Image: req.Compute.a.Image,
		},
		TokenSeed:   req.Env.Lineage + "/" + req.Owner + "/" + req.Seed + "/" + req.Compute.a.seed(),
		Parallelism: c.opts.Parallelism,
		Report:      reportAttempts(logf, offers, &tried),
	}, provs)
	if err != nil {
		if len(res.Leaked) > 0 {
			err = fmt.Errorf("%w; %d instance(s) could not be deleted: %s", err, len(res.Leaked), nodeIDs(res.Leaked))
			for _, at := range res.Attempts {
				if at.CleanupErr != nil {
					offer = at.Offer // where the leaked ones are (the first such offer)
					break
				}
			}
		}
		return offer, nil, res.Leaked, err
	}
	return res.Offer, res.Nodes, nil, nil
}

// ReadComputeNode re-reads one node of a run.
func (c *Cluster) ReadComputeNode(ctx context.Context, env providers.Env, cloudName string, n cloud.Node) (cloud.Node, bool, error) {
	p, err := c.provisioner(ctx, cloudName, env)
	if err != nil {
		return cloud.Node{}, false, err
	}
	return p.Read(ctx, n.Region, n.Zone, n.ID)
}

// DeleteComputeNodes deletes nodes of a run and waits; deleting an
// instance already gone is not an error.
func (c *Cluster) DeleteComputeNodes(ctx context.Context, env providers.Env, cloudName string, nodes []cloud.Node) error {
	if len(nodes) == 0 {
		return nil
	}
	p, err := c.provisioner(ctx, cloudName, env)
	if err != nil {
		return fmt.Errorf("deleting the run's %s instances: %w", cloudName, err)
	}
	left, err := cloud.DeleteNodes(ctx, p, nodes, c.opts.Parallelism)
	if err != nil {
		return fmt.Errorf("%d of %d instance(s) not deleted (%s): %w", len(left), len(nodes), nodeIDs(left), err)
	}
	return nil
}

// FindComputeNodes lists the instances tagged with the state's lineage and
// owner in a cloud's regions: those a killed apply made before it could
// record their ids.
func (c *Cluster) FindComputeNodes(ctx context.Context, env providers.Env, cloudName string, regions []string, owner string) ([]cloud.Node, error) {
	p, err := c.provisioner(ctx, cloudName, env)
	if err != nil {
		return nil, err
	}
	listed, err := p.ListByLineage(ctx, env.Lineage, regions)
	if err != nil {
		return nil, fmt.Errorf("listing the %s instances of this state: %w", cloudName, err)
	}
	var out []cloud.Node
	for _, n := range listed {
		if n.Cluster == owner && n.Status != "terminated" {
			out = append(out, n)
		}
	}
	return out, nil
}
