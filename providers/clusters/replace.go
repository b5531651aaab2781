package clusters

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/cloud"
	"github.com/zclconf/go-cty/cty"
)

// Replacing one node of a named cluster while a run goes on it (spot and
// failure recovery, providers/local/remote_recover.go). The cluster adopts
// the replacement rather than the run owning it: it is made with the
// cluster's own spec and bootstrap (its address and node index in the
// instance's tags, the agent of a cluster node in its user data), so that
// the cluster's Read finds it where the lost instance was (node i) and the
// cluster converges: its state names the new instance, the next plan shows
// no change, destroy deletes it, and FindOrphans does not report it.
//
// The replacement is tried on the cluster's own offer first. A one-node
// cluster then fails over to the next offer its arguments allow in the same
// cloud and region (the run storage and the state's region stay the same;
// Read records the new zone and instance type). A cluster of several nodes
// stays on its offer: its nodes are one instance type in one zone (one state
// value, one price, a network they share), so when that offer has no
// capacity the error says to apply again, which replaces the cluster.

// NodeReplacement asks for node Index of a named cluster again.
type NodeReplacement struct {
	Address string    // the cluster's address, cluster.gpu
	Current cty.Value // its state value
	Index   int
	// Seed makes the idempotency tokens: the same seed finds the instance
	// a killed apply created instead of making another.
	Seed string
	Env  providers.Env
}

// StateNode is node i of a cluster's state value, with its cloud; ok is
// false when the cluster has no cloud node i.
func StateNode(v cty.Value, i int) (cloudName string, n cloud.Node, ok bool) {
	cloudName, nodes := stateNodes(v)
	if cloudName == "" || cloudName == Local || cloudName == Kubernetes || i < 0 || i >= len(nodes) {
		return cloudName, cloud.Node{}, false
	}
	return cloudName, nodes[i], true
}

// replacementOffers are the offers a node of the cluster cur is replaced
// on: its own first.
func (c *Cluster) replacementOffers(cur cty.Value, a args) ([]cloud.Offer, error) {
	own, err := c.priorOffer(cur, a)
	if err != nil {
		return nil, err
	}
	offers := []cloud.Offer{own}
	if a.Nodes != 1 {
		return offers, nil
	}
	ch, err := c.choose(a)
	if err != nil {
		return offers, nil // the catalog no longer has others: its own offer only
	}
	for _, o := range ch.CloudOffers() {
		if o.Cloud == own.Cloud && o.Region == own.Region && !sameOffer(o, own) {
			offers = append(offers, o)
		}
	}
	return offers, nil
}

func sameOffer(a, b cloud.Offer) bool {
	return a.Cloud == b.Cloud && strings.EqualFold(a.InstanceType, b.InstanceType) && a.Region == b.Region && a.Zone == b.Zone && a.Spot == b.Spot
}

// ReplaceNode makes node r.Index of a named cluster again (the caller
// deleted the lost instance first) with the cluster's spec, tags and agent
// bootstrap (see above). It returns the new instance and the offer it
// landed on. The cluster's Read adopts it.
func (c *Cluster) ReplaceNode(ctx context.Context, r NodeReplacement) (cloud.Node, cloud.Offer, error) {
	cloudName := str(attr(r.Current, "cloud"))
	if cloudName == "" || cloudName == Local || cloudName == Kubernetes {
		return cloud.Node{}, cloud.Offer{}, fmt.Errorf("%s is not on cloud instances: lepton replaces no node of it", r.Address)
	}
	a, err := parseArgs(r.Current, r.Env.Providers)
	if err != nil {
		return cloud.Node{}, cloud.Offer{}, fmt.Errorf("%s in state: %w", r.Address, err)
	}
	offers, err := c.replacementOffers(r.Current, a)
	if err != nil {
		return cloud.Node{}, cloud.Offer{}, err
	}
	logf := logger(r.Env)
	tried := 0
	res, err := cloud.Provision(ctx, cloud.Request{
		Offers:  offers,
		Nodes:   1,
		Indexes: []int{r.Index},
		Template: cloud.NodeSpec{
			Address: r.Address, Lineage: r.Env.Lineage, DiskGB: a.DiskGB, Image: a.Image,
		},
		TokenSeed:   r.Env.Lineage + "/" + r.Address + "/" + r.Seed + "/" + a.seed(),
		Parallelism: c.opts.Parallelism,
		Report:      reportAttempts(logf, offers, &tried),
	}, map[string]cloud.Provisioner{cloudName: c.booting(&lazy{c: c, cloud: cloudName, env: r.Env}, cloudName, r.Address, r.Env)})
	if err != nil {
		msg := fmt.Sprintf("replacing node %d of %s: %v", r.Index, r.Address, err)
		if len(res.Leaked) > 0 {
			msg += fmt.Sprintf("; %d instance(s) could not be deleted: %s (tagged as the cluster's node %d: its refresh adopts one, destroy deletes it; delete any other by hand)", len(res.Leaked), nodeIDs(res.Leaked), r.Index)
		}
		if len(offers) == 1 && errors.Is(err, cloud.ErrCapacity) {
			msg += fmt.Sprintf("; the nodes of %s are one instance type in one zone: apply again to replace the cluster on an offer with capacity", r.Address)
		}
		return cloud.Node{}, cloud.Offer{}, errors.New(msg)
	}
	if len(res.Nodes) != 1 {
		return cloud.Node{}, cloud.Offer{}, fmt.Errorf("replacing node %d of %s: %d instances made, want 1", r.Index, r.Address, len(res.Nodes))
	}
	return res.Nodes[0], res.Offer, nil
}

// adoptions finds, for the nodes of a cluster whose instances are gone
// (indexes gone), a replacement made by ReplaceNode: an instance tagged
// with the state's lineage, the cluster's address and that node index that
// the state does not record. A cluster of several nodes adopts only one of
// its own instance type (its replacements stay on its offer).
func adoptions(listed []cloud.Node, address string, cur cty.Value, known map[string]bool, gone []int) map[int]cloud.Node {
	multi := len(strList(attr(cur, "node_ids"))) > 1
	own := str(attr(cur, "instance_type"))
	var out map[int]cloud.Node
	sort.Slice(listed, func(i, j int) bool { return listed[i].ID < listed[j].ID })
	for _, i := range gone {
		for _, n := range listed {
			if n.Cluster != address || n.Index != i || known[n.ID] || (n.Status != "running" && n.Status != "pending") {
				continue
			}
			if multi && n.InstanceType != "" && !strings.EqualFold(n.InstanceType, own) {
				continue
			}
			if out == nil {
				out = map[int]cloud.Node{}
			}
			out[i] = n
			known[n.ID] = true
			break
		}
	}
	return out
}

// adopt puts the adopted nodes in a cluster's value read from the cloud: a
// one-node cluster whose replacement failed over records its new zone,
// instance type and price (when the catalog knows that offer).
func (c *Cluster) adopt(cur cty.Value, adopted map[int]cloud.Node, env providers.Env) cty.Value {
	n, ok := adopted[0]
	if !ok || len(strList(attr(cur, "node_ids"))) != 1 {
		return cur
	}
	zone, it := str(attr(cur, "zone")), str(attr(cur, "instance_type"))
	if n.InstanceType == "" || strings.EqualFold(n.InstanceType, it) && (n.Zone == "" || n.Zone == zone) {
		return cur
	}
	a, err := parseArgs(cur, env.Providers)
	if err != nil {
		return cur
	}
	moved := setAttr(setAttr(cur, "zone", cty.StringVal(n.Zone)), "instance_type", cty.StringVal(n.InstanceType))
	o, err := c.priorOffer(moved, a)
	if err != nil || o.PricePerHour == 0 {
		// Not an offer of the catalog in that zone (a cloud that places by
		// region reports a zone offers do not have): the type alone moved.
		moved = setAttr(cur, "instance_type", cty.StringVal(n.InstanceType))
		if o, err = c.priorOffer(moved, a); err != nil || o.PricePerHour == 0 {
			return cur
		}
	}
	return setAttr(moved, "price_per_hour", numVal(o.PricePerHour))
}
