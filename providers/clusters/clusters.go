// Package clusters is the cluster resource: compute on this machine
// (clouds = ["local"]) or GPU instances on AWS, GCP and Azure.
//
// Plan needs no credentials for a new cluster: it picks the cheapest offer of
// the catalog (providers/catalog) that meets the arguments and shows it with
// its price and the number of fallback offers. Apply provisions the nodes
// through the clouds' SDKs (providers/aws, gcp, azure), failing over to the
// next offer on capacity and quota errors (providers/cloud). Refresh re-reads
// every node; FindOrphans lists instances tagged with the state's lineage that
// the state does not know.
//
// Drift: when every node of a cluster is gone, Read returns null and the plan
// creates the cluster again; when only some are gone, Read returns the
// surviving nodes with status "degraded" and the plan replaces the cluster
// (its nodes are one unit: a training spread over them cannot resume on a
// part). A node that a run replaced while it went (replace.go) is not lost:
// Read adopts the instance tagged as that node.
package clusters

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/catalog"
	"github.com/leptonml/lepton/providers/cloud"
	"github.com/leptonml/lepton/providers/remote"
	"github.com/zclconf/go-cty/cty"
)

// CatalogEnv names the environment variable pointing at a user catalog CSV,
// whose rows refresh the embedded catalog (see catalog.Resolve).
const CatalogEnv = "LEPTON_CATALOG"

// ProvisionerFunc builds the provisioner of one cloud ("aws", "gcp", "azure")
// from its evaluated provider block.
type ProvisionerFunc func(ctx context.Context, cloudName string, block map[string]string) (cloud.Provisioner, error)

// Options configure the cluster resource. The zero value is what the CLI uses.
type Options struct {
	// Catalog of offers; nil: the embedded catalog refreshed with the file
	// named by LEPTON_CATALOG, if any.
	Catalog *catalog.Catalog
	// NewProvisioner builds a cloud's provisioner; nil: SDKProvisioner (the
	// official SDKs with their default credentials).
	NewProvisioner ProvisionerFunc
	// Parallelism bounds concurrent node creations and deletions within one
	// cluster; 0: all nodes at once.
	Parallelism int
	// Runs opens the run storages whose agents the nodes boot; nil: nodes
	// get no agent.
	Runs *remote.Runs
}

// Cluster is the cluster resource (providers.Resource and
// providers.OrphanFinder). It caches the catalog and one provisioner per
// provider block, so the clusters of one apply share SDK clients and image
// lookups. Call Close when done.
type Cluster struct {
	opts Options

	catOnce sync.Once
	cat     *catalog.Catalog
	catErr  error

	mu      sync.Mutex
	provs   map[string]*provEntry
	configs map[string]cty.Value // by address, the last configuration Plan saw
}

type provEntry struct {
	once sync.Once
	p    cloud.Provisioner
	err  error
}

// New returns the cluster resource.
func New(opts Options) *Cluster {
	if opts.NewProvisioner == nil {
		opts.NewProvisioner = SDKProvisioner
	}
	return &Cluster{opts: opts, provs: map[string]*provEntry{}, configs: map[string]cty.Value{}}
}

// Close releases the provisioners' connections.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for k, e := range c.provs {
		if cl, ok := e.p.(interface{ Close() error }); ok && e.err == nil {
			errs = append(errs, cl.Close())
		}
		delete(c.provs, k)
	}
	return errors.Join(errs...)
}

func (c *Cluster) catalog() (*catalog.Catalog, error) {
	c.catOnce.Do(func() {
		if c.opts.Catalog != nil {
			c.cat = c.opts.Catalog
			return
		}
		file := os.Getenv(CatalogEnv)
		c.cat, c.catErr = catalog.Resolve(file)
		if c.catErr != nil {
			c.catErr = fmt.Errorf("%s=%s: %w", CatalogEnv, file, c.catErr)
		}
	})
	return c.cat, c.catErr
}

// provisioner returns the (cached) provisioner of a cloud for its block.
func (c *Cluster) provisioner(ctx context.Context, cloudName string, env providers.Env) (cloud.Provisioner, error) {
	block, ok := env.Providers[cloudName]
	if !ok {
		return nil, fmt.Errorf("the cluster is on %s but the configuration has no provider %q block", cloudName, cloudName)
	}
	key := cloudName + "\x00" + blockKey(block)
	c.mu.Lock()
	e, ok := c.provs[key]
	if !ok {
		e = &provEntry{}
		c.provs[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() {
		// Built with a context that outlives this call: the provisioner is
		// shared by later calls.
		e.p, e.err = c.opts.NewProvisioner(context.WithoutCancel(ctx), cloudName, block)
		if e.err != nil {
			e.err = fmt.Errorf("provider %q: %w", cloudName, e.err)
			return
		}
		e.p = &staleTokens{Provisioner: e.p}
	})
	return e.p, e.err
}

func blockKey(b map[string]string) string {
	keys := make([]string, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%s\x00", k, b[k])
	}
	return sb.String()
}

// choose runs the optimizer for a's constraints.
func (c *Cluster) choose(a args) (catalog.Choice, error) {
	cat, err := c.catalog()
	if err != nil {
		return catalog.Choice{}, err
	}
	ch, err := catalog.Choose(cat, catalog.Filter{
		GPU: a.GPU, Clouds: a.Clouds, Regions: a.Regions, Spot: a.Spot,
		MaxPricePerHour: a.MaxPrice, InstanceType: a.InstanceType, Nodes: a.Nodes,
	})
	var nm *catalog.NoMatchError
	if errors.As(err, &nm) {
		return ch, fmt.Errorf("no offer meets the cluster's %s argument: %w", nm.Constraint, err)
	}
	return ch, err
}

// Plan picks the offer of a new cluster, or keeps an existing cluster where it
// is (a nodes change is an in-place resize; other changes replace it).
func (c *Cluster) Plan(ctx context.Context, req providers.PlanRequest) (providers.PlanResponse, error) {
	if !req.Config.IsWhollyKnown() {
		// Arguments known only after apply: the offer is chosen then.
		return providers.PlanResponse{Planned: stateValue(req.Config, nil)}, nil
	}
	a, err := parseArgs(req.Config, req.Env.Providers)
	if err != nil {
		return providers.PlanResponse{}, err
	}
	if err := c.checkNames(a); err != nil {
		return providers.PlanResponse{}, err
	}
	c.remember(req.Address, req.Config)
	if a.kube() {
		return c.planKube(ctx, req, a)
	}
	var replace []cty.Path
	reason := ""
	if !req.Prior.IsNull() {
		for _, n := range changedArgs(req.Prior, req.Config) {
			if n != "nodes" {
				replace = append(replace, cty.GetAttrPath(n))
			}
		}
		if lost := lostNodes(req.Prior); lost != "" && len(replace) == 0 {
			replace, reason = []cty.Path{cty.GetAttrPath("node_ids")}, lost
		}
		if len(replace) == 0 {
			return c.planInPlace(req, a)
		}
	}
	resp, err := c.planNew(req.Config, a)
	resp.RequiresReplace, resp.Reason = replace, reason
	return resp, err
}

// lostNodes explains a prior whose nodes were partly terminated outside
// lepton (Read marks it degraded), or "" when it is whole.
func lostNodes(prior cty.Value) string {
	if str(attr(prior, "status")) != statusDegraded {
		return ""
	}
	want := 1
	if n, ok := num(attr(prior, "nodes")); ok {
		want = int(n)
	}
	have := len(strList(attr(prior, "node_ids")))
	if have >= want {
		return "the lepton agent of a node stopped reporting: its instance is up but runs nothing"
	}
	return fmt.Sprintf("%d of %d nodes were terminated outside lepton", want-have, want)
}

func (c *Cluster) planNew(cfg cty.Value, a args) (providers.PlanResponse, error) {
	if a.local() {
		return planLocal(cfg, a)
	}
	ch, err := c.choose(a)
	if err != nil {
		return providers.PlanResponse{}, err
	}
	best := ch.Best
	total := roundCents(ch.TotalPerHour())
	planned := stateValue(cfg, map[string]cty.Value{
		"cloud":          cty.StringVal(best.Cloud),
		"region":         cty.StringVal(best.Region),
		"zone":           cty.StringVal(best.Zone),
		"instance_type":  cty.StringVal(best.InstanceType),
		"price_per_hour": numVal(total),
	})
	return providers.PlanResponse{
		Planned:      planned,
		PricePerHour: total,
		Detail:       choiceDetail(ch),
	}, nil
}

// choiceDetail is what the plan shows under a cluster's header.
func choiceDetail(ch catalog.Choice) []string {
	noun := "offers remain"
	if len(ch.Fallbacks) == 1 {
		noun = "offer remains"
	}
	lines := []string{
		"offer: " + ch.Best.String(),
		fmt.Sprintf("price: $%.4f/hr for %d node(s)", roundCents(ch.TotalPerHour()), ch.Nodes),
		fmt.Sprintf("fallbacks: %d %s if it has no capacity", len(ch.Fallbacks), noun),
	}
	if len(ch.Fallbacks) > 0 {
		lines[2] += "; next: " + ch.Fallbacks[0].String()
	}
	return lines
}

func planLocal(cfg cty.Value, a args) (providers.PlanResponse, error) {
	switch {
	case a.Nodes != 1:
		return providers.PlanResponse{}, fmt.Errorf("nodes = %d: a local cluster is this machine, one node", a.Nodes)
	case a.Spot || a.MaxPrice > 0 || a.InstanceType != "" || len(a.Regions) > 0 || a.Image != "":
		return providers.PlanResponse{}, errors.New(`clouds = ["local"] is this machine: spot, max_price_per_hour, instance_type, regions and image apply to cloud clusters only`)
	}
	planned := stateValue(cfg, localComputed())
	resp := providers.PlanResponse{Planned: planned, Detail: []string{"this machine (clouds = [\"local\"]), $0/hr"}}
	if a.GPU != "" {
		resp.Detail = append(resp.Detail, fmt.Sprintf("gpu = %q is not checked on this machine", a.GPU))
	}
	return resp, nil
}

func localComputed() map[string]cty.Value {
	return map[string]cty.Value{
		"cloud":          cty.StringVal(Local),
		"region":         cty.StringVal(Local),
		"zone":           cty.StringVal(""),
		"instance_type":  cty.StringVal(Local),
		"price_per_hour": numVal(0),
		"node_ids":       strListVal([]string{Local}),
		"node_addresses": strListVal([]string{"127.0.0.1"}),
		"status":         cty.StringVal(statusRunning),
	}
}

// planInPlace keeps an existing cluster's placement; a nodes change resizes it.
func (c *Cluster) planInPlace(req providers.PlanRequest, a args) (providers.PlanResponse, error) {
	prior := req.Prior
	before, err := parseArgs(prior, req.Env.Providers)
	if err != nil {
		return providers.PlanResponse{}, fmt.Errorf("the cluster in state: %w", err)
	}
	comp := map[string]cty.Value{}
	for _, n := range []string{"id", "cloud", "region", "zone", "instance_type", "node_ids", "node_addresses", "status"} {
		comp[n] = prior.GetAttr(n)
	}
	price, _ := num(attr(prior, "price_per_hour"))
	perNode := price / float64(before.Nodes)
	total := roundCents(perNode * float64(a.Nodes))
	comp["price_per_hour"] = numVal(total)
	detail := []string{fmt.Sprintf("on %s %s in %s, $%.4f/hr for %d node(s)",
		str(attr(prior, "cloud")), str(attr(prior, "instance_type")), where(str(attr(prior, "region")), str(attr(prior, "zone"))), total, a.Nodes)}
	if a.Nodes != before.Nodes {
		if a.local() {
			return providers.PlanResponse{}, fmt.Errorf("nodes = %d: a local cluster is this machine, one node", a.Nodes)
		}
		for _, n := range []string{"node_ids", "node_addresses", "status"} {
			comp[n] = cty.UnknownVal(prior.Type().AttributeType(n))
		}
		verb := "adds"
		if a.Nodes < before.Nodes {
			verb = "removes"
		}
		d := a.Nodes - before.Nodes
		if d < 0 {
			d = -d
		}
		detail = append(detail, fmt.Sprintf("resize %s %d node(s) in place", verb, d))
	}
	return providers.PlanResponse{Planned: stateValue(req.Config, comp), PricePerHour: total, Detail: detail}, nil
}

func where(region, zone string) string {
	if zone == "" {
		return region
	}
	return region + "/" + zone
}

// Status values of a cluster.
const (
	statusRunning  = "running"
	statusDegraded = "degraded" // some nodes were terminated outside lepton
	statusFailed   = "failed"   // apply failed; the nodes listed could not be deleted
)

// Apply creates the cluster (failing over across offers) or resizes it.
func (c *Cluster) Apply(ctx context.Context, req providers.ApplyRequest) (cty.Value, error) {
	a, err := parseArgs(req.Planned, req.Env.Providers)
	if err != nil {
		return cty.NilVal, err
	}
	if a.local() {
		return stateValue(req.Planned, localComputed()), nil
	}
	if a.kube() {
		return c.applyKube(ctx, req, a)
	}
	if req.Prior.IsNull() {
		return c.create(ctx, req, a)
	}
	return c.resize(ctx, req, a)
}

// plannedOffers returns the offers to try for a planned cluster, the planned
// one first. The planned value holds the chosen instance type whether or not
// the configuration pinned it, so the choice is made as the plan made it when
// Plan saw this address's configuration, and otherwise unpinned when that
// gives the planned offer, pinned when not.
func (c *Cluster) plannedOffers(address string, planned cty.Value, a args) ([]cloud.Offer, error) {
	if cfg, ok := c.configFor(address, planned); ok {
		a.InstanceType = str(attr(cfg, "instance_type"))
	} else {
		a.InstanceType = ""
		if ch, err := c.choose(a); err != nil || !isPlanned(ch.CloudOffers()[0], planned) {
			a.InstanceType = str(attr(planned, "instance_type"))
		}
	}
	ch, err := c.choose(a)
	if err != nil {
		return nil, err
	}
	offers := ch.CloudOffers()
	if !isPlanned(offers[0], planned) {
		return nil, fmt.Errorf("the offer catalog changed since the plan (it now picks %s): run plan again", offers[0])
	}
	return offers, nil
}

func isPlanned(o cloud.Offer, planned cty.Value) bool {
	return o.Cloud == str(attr(planned, "cloud")) && o.Region == str(attr(planned, "region")) &&
		o.Zone == str(attr(planned, "zone")) && o.InstanceType == str(attr(planned, "instance_type"))
}

// remember keeps the configuration Plan saw for an address: the planner plans
// each instance again right before applying it, and Apply needs to know
// whether instance_type was an argument or the optimizer's choice.
func (c *Cluster) remember(address string, cfg cty.Value) {
	c.mu.Lock()
	c.configs[address] = cfg
	c.mu.Unlock()
}

// configFor returns the remembered configuration of address if it agrees with
// planned.
func (c *Cluster) configFor(address string, planned cty.Value) (cty.Value, bool) {
	c.mu.Lock()
	cfg, ok := c.configs[address]
	c.mu.Unlock()
	if !ok {
		return cty.NilVal, false
	}
	for _, n := range argNames() {
		if n == "instance_type" {
			continue
		}
		if eq := attr(cfg, n).Equals(attr(planned, n)); !eq.IsKnown() || !eq.True() {
			return cty.NilVal, false
		}
	}
	if it := attr(cfg, "instance_type"); !it.IsNull() && str(it) != str(attr(planned, "instance_type")) {
		return cty.NilVal, false
	}
	return cfg, true
}

// reportAttempts logs each provisioning attempt over offers as failover goes
// (created, capacity error and the next offer, failure, leaked instances),
// counting them in tried.
func reportAttempts(logf func(string, ...any), offers []cloud.Offer, tried *int) func(cloud.Attempt) {
	return func(at cloud.Attempt) {
		*tried++
		switch {
		case at.Err == nil:
			logf("created %d node(s) on %s", len(at.Created), at.Offer)
		case errors.Is(at.Err, cloud.ErrCapacity) && *tried < len(offers):
			next := offers[*tried]
			logf("capacity error in %s (%s); trying %s %s", placeOf(at.Offer), errorCode(at.Err), next.Cloud, placeOf(next))
		default:
			logf("%s failed: %v", at.Offer, at.Err)
		}
		if at.CleanupErr != nil {
			logf("could not delete the %d instance(s) of the failed attempt on %s: %v", len(at.Created), at.Offer, at.CleanupErr)
		}
	}
}

func (c *Cluster) create(ctx context.Context, req providers.ApplyRequest, a args) (cty.Value, error) {
	offers, err := c.plannedOffers(req.Address, req.Planned, a)
	if err != nil {
		return cty.NilVal, err
	}
	provs := map[string]cloud.Provisioner{}
	for _, name := range a.Clouds {
		provs[name] = c.booting(&lazy{c: c, cloud: name, env: req.Env}, name, req.Address, req.Env)
	}
	logf := logger(req.Env)
	tried := 0
	res, err := cloud.Provision(ctx, cloud.Request{
		Offers: offers,
		Nodes:  a.Nodes,
		Template: cloud.NodeSpec{
			Address: req.Address, Lineage: req.Env.Lineage, DiskGB: a.DiskGB, Image: a.Image,
		},
		TokenSeed:   req.Env.Lineage + "/" + req.Address + "/" + a.seed(),
		Parallelism: c.opts.Parallelism,
		Report:      reportAttempts(logf, offers, &tried),
	}, provs)
	if err != nil {
		return leaked(req.Planned, res, err)
	}
	if tried > 1 {
		logf("landed on %s %s in %s after %d attempts", res.Offer.Cloud, res.Offer.InstanceType, placeOf(res.Offer), tried)
	}
	return landed(req.Planned, res.Offer, res.Nodes), nil
}

// leaked records the instances a failed create could not delete, so that the
// cluster is kept in state (tainted) and the next apply deletes them; nodes of
// other offers, which one state value cannot place, are named in the error.
func leaked(planned cty.Value, res cloud.Result, err error) (cty.Value, error) {
	if len(res.Leaked) == 0 {
		return cty.NilVal, err
	}
	var first cloud.Offer
	var nodes []cloud.Node
	var others []string
	for _, at := range res.Attempts {
		if at.CleanupErr == nil {
			continue
		}
		if len(nodes) == 0 {
			first = at.Offer
		}
		for _, n := range at.Created {
			if !contains(res.Leaked, n.ID) {
				continue
			}
			if at.Offer == first {
				nodes = append(nodes, n)
			} else {
				others = append(others, fmt.Sprintf("%s %s in %s", at.Offer.Cloud, n.ID, placeOf(at.Offer)))
			}
		}
	}
	v := landed(planned, first, nodes)
	v = setAttr(v, "status", cty.StringVal(statusFailed))
	msg := fmt.Sprintf("%v; %d instance(s) on %s could not be deleted and are kept in state (the next apply deletes them)", err, len(nodes), first)
	if len(others) > 0 {
		msg += "; delete these by hand: " + strings.Join(others, ", ")
	}
	return v, errors.New(msg)
}

func contains(nodes []cloud.Node, id string) bool {
	for _, n := range nodes {
		if n.ID == id {
			return true
		}
	}
	return false
}

// landed is the cluster's value once its nodes run on offer o.
func landed(planned cty.Value, o cloud.Offer, nodes []cloud.Node) cty.Value {
	ids := make([]string, len(nodes))
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i], addrs[i] = n.ID, n.Address
	}
	status := statusRunning
	for _, n := range nodes {
		if n.Status != "running" && n.Status != "" {
			status = n.Status
			break
		}
	}
	return stateValue(planned, map[string]cty.Value{
		"cloud":          cty.StringVal(o.Cloud),
		"region":         cty.StringVal(o.Region),
		"zone":           cty.StringVal(o.Zone),
		"instance_type":  cty.StringVal(o.InstanceType),
		"price_per_hour": numVal(o.PricePerHour * float64(len(nodes))),
		"node_ids":       strListVal(ids),
		"node_addresses": strListVal(addrs),
		"status":         cty.StringVal(status),
	})
}

func setAttr(obj cty.Value, name string, v cty.Value) cty.Value {
	m := obj.AsValueMap()
	m[name] = v
	return cty.ObjectVal(m)
}

// placeOf names where an offer is: its zone, or its region where the cloud
// places by region.
func placeOf(o cloud.Offer) string {
	if o.Zone != "" {
		return o.Zone
	}
	return o.Region
}

// capacityCodes are the clouds' error codes for no capacity and quota; the
// log names the one an error carries.
var capacityCodes = regexp.MustCompile(`InsufficientInstanceCapacity|InstanceLimitExceeded|VcpuLimitExceeded|MaxSpotInstanceCountExceeded|SpotMaxPriceTooLow|Unsupported|ZONE_RESOURCE_POOL_EXHAUSTED(_WITH_DETAILS)?|QUOTA_EXCEEDED|quotaExceeded|ZonalAllocationFailed|AllocationFailed|SkuNotAvailable|QuotaExceeded|OperationNotAllowed`)

func errorCode(err error) string {
	if m := capacityCodes.FindString(err.Error()); m != "" {
		return m
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

func logger(env providers.Env) func(string, ...any) {
	if env.Log == nil {
		return func(string, ...any) {}
	}
	return env.Log
}

// priorOffer rebuilds the offer an existing cluster runs on, for resizing.
func (c *Cluster) priorOffer(prior cty.Value, a args) (cloud.Offer, error) {
	o := cloud.Offer{
		Cloud: str(attr(prior, "cloud")), Region: str(attr(prior, "region")), Zone: str(attr(prior, "zone")),
		InstanceType: str(attr(prior, "instance_type")), Spot: a.Spot,
	}
	cat, err := c.catalog()
	if err != nil {
		return o, err
	}
	for _, off := range cat.Offers() {
		if off.Cloud == o.Cloud && strings.EqualFold(off.InstanceType, o.InstanceType) && off.Region == o.Region && off.Zone == o.Zone {
			o.GPUName, o.GPUCount = off.GPU, off.GPUCount
			o.PricePerHour, _ = off.Price(a.Spot)
			return o, nil
		}
	}
	g, err := catalog.ParseGPU(a.GPU)
	if err != nil || g.Model == "" {
		return o, fmt.Errorf("%s %s in %s is no longer in the offer catalog, and gpu = %q does not name its GPU", o.Cloud, o.InstanceType, where(o.Region, o.Zone), a.GPU)
	}
	o.GPUName, o.GPUCount = g.Model, g.Count
	return o, nil
}

// resize adds or removes nodes of an existing cluster in place.
func (c *Cluster) resize(ctx context.Context, req providers.ApplyRequest, a args) (cty.Value, error) {
	prior := req.Prior
	ids := strList(attr(prior, "node_ids"))
	addrs := strList(attr(prior, "node_addresses"))
	offer, err := c.priorOffer(prior, a)
	if err != nil {
		return cty.NilVal, err
	}
	p, err := c.provisioner(ctx, offer.Cloud, req.Env)
	if err != nil {
		return cty.NilVal, err
	}
	p = c.booting(p, offer.Cloud, req.Address, req.Env)
	logf := logger(req.Env)
	nodes := make([]cloud.Node, len(ids))
	for i, id := range ids {
		nodes[i] = cloud.Node{ID: id, Region: offer.Region, Zone: offer.Zone, Index: i, Status: statusRunning}
		if i < len(addrs) {
			nodes[i].Address = addrs[i]
		}
	}
	switch {
	case a.Nodes > len(nodes):
		var idx []int
		for i := len(nodes); i < a.Nodes; i++ {
			idx = append(idx, i)
		}
		tmpl := cloud.NodeSpec{Address: req.Address, Lineage: req.Env.Lineage, DiskGB: a.DiskGB, Image: a.Image}
		added, err := cloud.CreateNodes(ctx, p, offer, tmpl, req.Env.Lineage+"/"+req.Address+"/"+a.seed(), idx, c.opts.Parallelism)
		if err != nil {
			// The cluster stays as it was: remove what this resize made.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			left, cerr := cloud.DeleteNodes(cctx, p, added, c.opts.Parallelism)
			cancel()
			if cerr != nil {
				return cty.NilVal, fmt.Errorf("adding %d node(s): %w; and %d new instance(s) could not be deleted, delete them by hand: %s (%v)", len(idx), err, len(left), nodeIDs(left), cerr)
			}
			return cty.NilVal, fmt.Errorf("adding %d node(s) on %s: %w", len(idx), offer, err)
		}
		logf("added %d node(s): %s", len(added), nodeIDs(added))
		nodes = append(nodes, added...)
	case a.Nodes < len(nodes):
		gone := nodes[a.Nodes:]
		if left, err := cloud.DeleteNodes(ctx, p, gone, c.opts.Parallelism); err != nil {
			return cty.NilVal, fmt.Errorf("removing %d node(s) (%s still exist): %w", len(gone), nodeIDs(left), err)
		}
		logf("removed %d node(s): %s", len(gone), nodeIDs(gone))
		nodes = nodes[:a.Nodes]
	}
	return landed(req.Planned, offer, nodes), nil
}

const cleanupTimeout = 15 * time.Minute // as cloud.Provision

func nodeIDs(nodes []cloud.Node) string {
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	return strings.Join(ids, ", ")
}

// stateNodes are the nodes a state value records.
func stateNodes(v cty.Value) (cloudName string, nodes []cloud.Node) {
	cloudName = str(attr(v, "cloud"))
	region, zone := str(attr(v, "region")), str(attr(v, "zone"))
	addrs := strList(attr(v, "node_addresses"))
	for i, id := range strList(attr(v, "node_ids")) {
		n := cloud.Node{ID: id, Region: region, Zone: zone, Index: i}
		if i < len(addrs) {
			n.Address = addrs[i]
		}
		nodes = append(nodes, n)
	}
	return cloudName, nodes
}

// Read re-reads every node. All gone: null (the plan creates the cluster
// again); some gone: the survivors with status "degraded" (the plan replaces
// it).
func (c *Cluster) Read(ctx context.Context, req providers.ReadRequest) (cty.Value, error) {
	cur := req.Current
	cloudName, nodes := stateNodes(cur)
	if cloudName == Kubernetes {
		return c.readKube(ctx, req)
	}
	if cloudName == "" || cloudName == Local || len(nodes) == 0 {
		return cur, nil
	}
	p, err := c.provisioner(ctx, cloudName, req.Env)
	if err != nil {
		return cty.NilVal, fmt.Errorf("reading the cluster's %s instances: %w", cloudName, err)
	}
	type got struct {
		n     cloud.Node
		found bool
		err   error
	}
	out := make([]got, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].n, out[i].found, out[i].err = p.Read(ctx, n.Region, n.Zone, n.ID)
		}()
	}
	wg.Wait()
	var gone []int
	for i, g := range out {
		if g.err != nil {
			return cty.NilVal, fmt.Errorf("reading %s instance %s: %w", cloudName, nodes[i].ID, g.err)
		}
		if !g.found {
			gone = append(gone, i)
		}
	}
	var adopted map[int]cloud.Node
	if len(gone) > 0 && req.Env.Lineage != "" {
		// A lost node a run replaced (replace.go): the cluster adopts the
		// replacement as that node. Listing is best effort: without it the
		// lost node alone decides (degraded).
		if listed, err := p.ListByLineage(ctx, req.Env.Lineage, []string{str(attr(cur, "region"))}); err == nil {
			known := map[string]bool{}
			for _, n := range nodes {
				known[n.ID] = true
			}
			adopted = adoptions(listed, req.Address, cur, known, gone)
		}
	}
	dead := c.deadAgents(ctx, cloudName, req.Address, req.Env, len(nodes))
	var ids, addrs []string
	status := statusRunning
	for i, g := range out {
		if !g.found {
			n, ok := adopted[i]
			if !ok {
				continue
			}
			g.n, nodes[i].ID, nodes[i].Address = n, n.ID, n.Address
		}
		ids = append(ids, nodes[i].ID)
		addr := g.n.Address
		if addr == "" {
			addr = nodes[i].Address
		}
		addrs = append(addrs, addr)
		if g.n.Status != "running" && status == statusRunning {
			status = g.n.Status
		}
	}
	if len(ids) == 0 {
		return cty.NullVal(cur.Type()), nil
	}
	cur = c.adopt(cur, adopted, req.Env)
	if len(ids) < len(nodes) || len(dead) > 0 {
		// Lost nodes, or nodes whose agent stopped: the instances stay
		// listed so that replacing the cluster deletes them.
		status = statusDegraded
	}
	if prev := str(attr(cur, "status")); prev == statusFailed {
		status = statusFailed
	}
	v := setAttr(cur, "node_ids", strListVal(ids))
	v = setAttr(v, "node_addresses", strListVal(addrs))
	return setAttr(v, "status", cty.StringVal(status)), nil
}

// Delete deletes every node and waits.
func (c *Cluster) Delete(ctx context.Context, req providers.DeleteRequest) error {
	cloudName, nodes := stateNodes(req.Current)
	if cloudName == Kubernetes {
		return c.deleteKube(ctx, req)
	}
	if cloudName == "" || cloudName == Local || len(nodes) == 0 {
		return nil
	}
	p, err := c.provisioner(ctx, cloudName, req.Env)
	if err != nil {
		return fmt.Errorf("deleting the cluster's %s instances: %w", cloudName, err)
	}
	left, err := cloud.DeleteNodes(ctx, p, nodes, c.opts.Parallelism)
	if err != nil {
		return fmt.Errorf("%d of %d instance(s) not deleted (%s): %w", len(left), len(nodes), nodeIDs(left), err)
	}
	logger(req.Env)("deleted %d node(s) on %s", len(nodes), cloudName)
	if err := c.deleteRunObjects(ctx, cloudName, req.Address, req.Env); err != nil {
		return fmt.Errorf("the nodes are deleted, but not the cluster's objects in its run storage: %w", err)
	}
	return nil
}

// FindOrphans lists instances tagged with the state's lineage that no cluster
// in state records, in the clouds and regions the state's clusters use. It
// makes no call when the state has no cloud cluster, so plans of new
// configurations stay offline.
func (c *Cluster) FindOrphans(ctx context.Context, req providers.OrphansRequest) ([]string, error) {
	if req.Env.Lineage == "" {
		return nil, nil
	}
	regions := map[string]map[string]bool{}
	known := map[string]bool{}
	for _, v := range req.Instances {
		cloudName, nodes := stateNodes(v)
		if cloudName == "" || cloudName == Local || cloudName == Kubernetes {
			continue
		}
		if regions[cloudName] == nil {
			regions[cloudName] = map[string]bool{}
		}
		if r := str(attr(v, "region")); r != "" {
			regions[cloudName][r] = true
		}
		for _, n := range nodes {
			known[cloudName+"\x00"+n.ID] = true
		}
	}
	var clouds []string
	for name := range regions {
		clouds = append(clouds, name)
	}
	sort.Strings(clouds)
	var lines []string
	var errs []error
	for _, name := range clouds {
		p, err := c.provisioner(ctx, name, req.Env)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var rs []string
		for r := range regions[name] {
			rs = append(rs, r)
		}
		sort.Strings(rs)
		listed, err := p.ListByLineage(ctx, req.Env.Lineage, rs)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s instances of this state: %w", name, err))
			continue
		}
		live := map[string]bool{}
		for _, n := range listed {
			live[n.ID] = true
		}
		for _, n := range cloud.Orphans(listed, func(id string) bool { return known[name+"\x00"+id] }) {
			if v, ok := req.Instances[n.Cluster]; ok && replacesLost(v, n, live) {
				continue // the cluster's refresh adopts it (replace.go)
			}
			owner := n.Cluster
			if owner == "" {
				owner = "unknown cluster"
			}
			lines = append(lines, fmt.Sprintf("%s %s in %s (%s node %d, %s)", name, n.ID, where(n.Region, n.Zone), owner, n.Index, n.Status))
		}
	}
	return lines, errors.Join(errs...)
}

// replacesLost reports whether n is a replacement of a lost node of the
// cluster v that its Read adopts: v's node at n's index is not among the
// instances listed (live).
func replacesLost(v cty.Value, n cloud.Node, live map[string]bool) bool {
	_, sn, ok := StateNode(v, n.Index)
	return ok && !live[sn.ID]
}

// lazy builds a cloud's provisioner on first use, so that a cluster whose
// cheapest offer is on AWS needs no Azure credential unless it fails over
// there.
type lazy struct {
	c     *Cluster
	cloud string
	env   providers.Env
}

func (l *lazy) get(ctx context.Context) (cloud.Provisioner, error) {
	return l.c.provisioner(ctx, l.cloud, l.env)
}

func (l *lazy) Create(ctx context.Context, spec cloud.NodeSpec) (cloud.Node, error) {
	p, err := l.get(ctx)
	if err != nil {
		return cloud.Node{}, err
	}
	return p.Create(ctx, spec)
}

func (l *lazy) Read(ctx context.Context, region, zone, id string) (cloud.Node, bool, error) {
	p, err := l.get(ctx)
	if err != nil {
		return cloud.Node{}, false, err
	}
	return p.Read(ctx, region, zone, id)
}

func (l *lazy) Delete(ctx context.Context, node cloud.Node) error {
	p, err := l.get(ctx)
	if err != nil {
		return err
	}
	return p.Delete(ctx, node)
}

func (l *lazy) ListByLineage(ctx context.Context, lineage string, regions []string) ([]cloud.Node, error) {
	p, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return p.ListByLineage(ctx, lineage, regions)
}

// staleTokens handles a create whose idempotency token was already used by an
// instance that has since been terminated (a cluster deleted, or lost to drift,
// and created again with the same arguments): EC2 answers such a RunInstances
// with the old, terminated instance. The create is retried under a token
// derived from the old instance's ID, which is just as stable across retries.
type staleTokens struct {
	cloud.Provisioner
}

// maxGenerations bounds the chain of derived tokens.
const maxGenerations = 16

func (s *staleTokens) Create(ctx context.Context, spec cloud.NodeSpec) (cloud.Node, error) {
	for gen := 0; ; gen++ {
		n, err := s.Provisioner.Create(ctx, spec)
		if err == nil || n.ID == "" || n.Status != "terminated" || gen == maxGenerations || ctx.Err() != nil {
			return n, err
		}
		spec.ClientToken = uuid.NewSHA1(uuid.NameSpaceOID, []byte(spec.ClientToken+"\x00after\x00"+n.ID)).String()
	}
}

// Resumable: provisioning is long; an interrupted one is found again by its
// tags on the next apply.
func (c *Cluster) Resumable() bool { return true }
