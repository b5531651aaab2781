package catalog

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/leptonml/lepton/providers/cloud"
)

// Filter is what a cluster (or `lepton offers`) asks of the catalog. Zero values
// mean "no constraint".
type Filter struct {
	GPU             string   // gpu spec NAME[:COUNT]; empty: any GPU offer
	Clouds          []string // aws, gcp, azure; empty: all
	Regions         []string // empty: all
	Spot            bool     // price and choose on the spot market; offers without a spot price are excluded
	MaxPricePerHour float64  // per node, USD, on the market asked for; 0: no limit
	InstanceType    string   // pins an instance type (case-insensitive)
	Nodes           int      // cluster size; 0 means 1
}

// Candidate is an offer priced for a request: per node on the market asked for.
// The Offer is shared with the catalog (which never changes): read it, don't
// modify it.
type Candidate struct {
	*Offer
	Spot         bool
	PricePerHour float64 // per node
}

// CloudOffer is the candidate in the form the provisioning seam takes.
func (c Candidate) CloudOffer() cloud.Offer {
	return cloud.Offer{
		Cloud:        c.Cloud,
		InstanceType: c.InstanceType,
		Region:       c.Region,
		Zone:         c.Zone,
		Spot:         c.Spot,
		GPUName:      c.GPU,
		GPUCount:     c.GPUCount,
		PricePerHour: c.PricePerHour,
	}
}

// Choice is the optimizer's answer: the cheapest candidate and every other
// candidate that meets the request, cheapest first, to fail over to.
type Choice struct {
	Best      Candidate
	Fallbacks []Candidate
	Nodes     int
}

// TotalPerHour is the price of all nodes of the cluster on the best offer.
func (c Choice) TotalPerHour() float64 { return c.Best.PricePerHour * float64(c.Nodes) }

// All returns the best candidate followed by the fallbacks.
func (c Choice) All() []Candidate {
	return append([]Candidate{c.Best}, c.Fallbacks...)
}

// CloudOffers returns All in the form cloud.Provision takes.
func (c Choice) CloudOffers() []cloud.Offer {
	out := make([]cloud.Offer, 0, 1+len(c.Fallbacks))
	for _, cand := range c.All() {
		out = append(out, cand.CloudOffer())
	}
	return out
}

// NoMatchError says which constraint of the request left no offer. Constraint is
// the cluster argument's name (gpu, clouds, regions, spot, max_price_per_hour,
// instance_type), so a caller can attach the error to that attribute.
type NoMatchError struct {
	Constraint string
	Detail     string
}

func (e *NoMatchError) Error() string {
	return "no GPU offer matches: " + e.Detail
}

// Choose returns the cheapest offer meeting f and the ordered fallbacks. Ties in
// price are broken by cloud, region, zone, then instance type (lexically), so the
// same catalog and request always give the same choice.
func Choose(c *Catalog, f Filter) (Choice, error) {
	nodes, err := nodesOf(f)
	if err != nil {
		return Choice{}, err
	}
	m, err := newMatcher(f)
	if err != nil {
		return Choice{}, err
	}
	cands := make([]Candidate, 0, 16)
	c.scan(m, func(o *Offer) bool {
		if m.stage(o) == stagePass {
			price, _ := o.Price(f.Spot)
			cands = append(cands, Candidate{Offer: o, Spot: f.Spot, PricePerHour: price})
		}
		return true
	})
	if len(cands) == 0 {
		return Choice{}, explain(c, f, m)
	}
	return Choice{Best: cands[0], Fallbacks: cands[1:], Nodes: nodes}, nil
}

// List returns the offers meeting f (Nodes is ignored), cheapest first on the
// market asked for, for `lepton offers`. An empty list is not an error; a malformed
// gpu spec is.
func List(c *Catalog, f Filter) ([]Offer, error) {
	f.Nodes = 0
	if err := c.checkFilter(f); err != nil {
		return nil, err
	}
	m, err := newMatcher(f)
	if err != nil {
		return nil, err
	}
	var out []Offer
	c.scan(m, func(o *Offer) bool {
		if m.stage(o) == stagePass {
			out = append(out, *o)
		}
		return true
	})
	return out, nil
}

func nodesOf(f Filter) (int, error) {
	switch {
	case f.Nodes < 0:
		return 0, fmt.Errorf("nodes = %d: want at least 1", f.Nodes)
	case f.Nodes == 0:
		return 1, nil
	}
	return f.Nodes, nil
}

// scan visits the offers m may accept, cheapest first on the market asked for:
// only the requested model's offers when the gpu spec names a model.
func (c *Catalog) scan(m *matcher, visit func(*Offer) bool) {
	order := c.onDemand
	if m.f.Spot {
		order = c.spot
	}
	if m.hasGPU && m.gpu.Model != "" {
		mk := c.byModel[m.gpu.Model]
		switch {
		case mk == nil:
			order = nil
		case m.f.Spot:
			order = mk.spot
		default:
			order = mk.onDemand
		}
	}
	for _, i := range order {
		if !visit(&c.offers[i]) {
			return
		}
	}
}

// Stages of a request, in the order constraints are reported when nothing
// matches: the first stage that rejects every offer names the culprit.
type stage int

const (
	stageInstanceType stage = iota
	stageGPU
	stageClouds
	stageRegions
	stageSpot
	stageMaxPrice
	stagePass
)

type matcher struct {
	f       Filter
	gpu     GPUSpec
	hasGPU  bool
	clouds  map[string]bool
	regions map[string]bool
}

func newMatcher(f Filter) (*matcher, error) {
	m := &matcher{f: f}
	if strings.TrimSpace(f.GPU) != "" {
		g, err := ParseGPU(f.GPU)
		if err != nil {
			return nil, err
		}
		m.gpu, m.hasGPU = g, true
	}
	if f.MaxPricePerHour < 0 || math.IsNaN(f.MaxPricePerHour) {
		return nil, fmt.Errorf("max_price_per_hour = %v: want a positive price in USD per node", f.MaxPricePerHour)
	}
	if len(f.Clouds) > 0 {
		m.clouds = map[string]bool{}
		for _, cl := range f.Clouds {
			cl = strings.ToLower(strings.TrimSpace(cl))
			if !knownCloud(cl) {
				return nil, &NoMatchError{Constraint: "clouds", Detail: fmt.Sprintf("clouds: %q is not a cloud with GPU offers (aws, gcp, azure)", cl)}
			}
			m.clouds[cl] = true
		}
	}
	if len(f.Regions) > 0 {
		m.regions = map[string]bool{}
		for _, r := range f.Regions {
			m.regions[strings.TrimSpace(r)] = true
		}
	}
	return m, nil
}

// stage returns the first stage o fails, or stagePass.
func (m *matcher) stage(o *Offer) stage {
	if m.f.InstanceType != "" && !strings.EqualFold(o.InstanceType, m.f.InstanceType) {
		return stageInstanceType
	}
	if m.hasGPU && !m.gpu.Matches(o) {
		return stageGPU
	}
	if m.clouds != nil && !m.clouds[o.Cloud] {
		return stageClouds
	}
	if m.regions != nil && !m.regions[o.Region] {
		return stageRegions
	}
	price, ok := o.Price(m.f.Spot)
	if !ok {
		return stageSpot
	}
	if m.f.MaxPricePerHour > 0 && price > m.f.MaxPricePerHour {
		return stageMaxPrice
	}
	return stagePass
}

// explain builds the NoMatchError: it finds the first constraint that no offer
// passing the earlier ones meets, and describes what was available instead.
func explain(c *Catalog, f Filter, m *matcher) error {
	// Offers of other models fail at the gpu stage at the latest, so when the
	// requested model's own offers get further, they alone decide.
	candidates := func(visit func(*Offer)) {
		for i := range c.offers {
			visit(&c.offers[i])
		}
	}
	if mk := c.byModel[m.gpu.Model]; m.hasGPU && m.gpu.Model != "" && mk != nil {
		furthest := stageInstanceType
		for _, i := range mk.onDemand {
			if s := m.stage(&c.offers[i]); s > furthest {
				furthest = s
			}
		}
		if furthest > stageGPU {
			candidates = func(visit func(*Offer)) {
				for _, i := range mk.onDemand {
					visit(&c.offers[i])
				}
			}
		}
	}
	furthest := stageInstanceType
	candidates(func(o *Offer) {
		if s := m.stage(o); s > furthest {
			furthest = s
		}
	})
	var survivors []*Offer // offers that reached the furthest stage
	candidates(func(o *Offer) {
		if m.stage(o) == furthest {
			survivors = append(survivors, o)
		}
	})
	n := len(survivors)
	what := m.describePassed(furthest)
	switch furthest {
	case stageInstanceType:
		return &NoMatchError{Constraint: "instance_type", Detail: fmt.Sprintf("instance_type %q is not in the catalog (%d offers; see `lepton offers`)", f.InstanceType, c.Len())}
	case stageGPU:
		scope := ""
		if f.InstanceType != "" {
			scope = " of type " + f.InstanceType
		}
		return &NoMatchError{Constraint: "gpu", Detail: fmt.Sprintf("gpu %q: no offer%s has %s per node (GPUs per node offered for it: %s)", f.GPU, scope, m.gpu.String(), countsFor(c, m))}
	case stageClouds:
		return &NoMatchError{Constraint: "clouds", Detail: fmt.Sprintf("%d %s, none in clouds [%s] (they are in: %s)", n, what, strings.Join(f.Clouds, ", "), distinct(survivors, func(o *Offer) string { return o.Cloud }))}
	case stageRegions:
		return &NoMatchError{Constraint: "regions", Detail: fmt.Sprintf("%d %s, none in regions [%s] (they are in: %s)", n, what, strings.Join(f.Regions, ", "), distinct(survivors, func(o *Offer) string { return o.Region }))}
	case stageSpot:
		return &NoMatchError{Constraint: "spot", Detail: fmt.Sprintf("%d %s, none with a spot price in the catalog; set spot = false", n, what)}
	default: // stageMaxPrice
		cheapest := 0.0
		for i, o := range survivors {
			p, _ := o.Price(f.Spot)
			if i == 0 || p < cheapest {
				cheapest = p
			}
		}
		market := "on-demand"
		if f.Spot {
			market = "spot"
		}
		return &NoMatchError{Constraint: "max_price_per_hour", Detail: fmt.Sprintf("%d %s, none at or below max_price_per_hour = %g USD per node; the cheapest costs %g USD/hr (%s)", n, what, f.MaxPricePerHour, cheapest, market)}
	}
}

// describePassed names the offers that met every constraint before stage s.
func (m *matcher) describePassed(s stage) string {
	var parts []string
	if m.f.InstanceType != "" {
		parts = append(parts, "of type "+m.f.InstanceType)
	}
	if s > stageGPU && m.hasGPU {
		parts = append(parts, "with gpu "+m.gpu.String())
	}
	if s > stageClouds && m.clouds != nil {
		parts = append(parts, "in clouds ["+strings.Join(m.f.Clouds, ", ")+"]")
	}
	if s > stageRegions && m.regions != nil {
		parts = append(parts, "in regions ["+strings.Join(m.f.Regions, ", ")+"]")
	}
	if len(parts) == 0 {
		return "offers"
	}
	return "offers " + strings.Join(parts, " ")
}

// countsFor lists the GPU counts per node the catalog has for the requested model
// (or memory bound), to suggest a count that exists.
func countsFor(c *Catalog, m *matcher) string {
	set := map[int]bool{}
	for i := range c.offers {
		o := &c.offers[i]
		if m.f.InstanceType != "" && !strings.EqualFold(o.InstanceType, m.f.InstanceType) {
			continue
		}
		if m.gpu.matchesModel(o) {
			set[o.GPUCount] = true
		}
	}
	if len(set) == 0 {
		models := make([]string, 0, len(c.byModel))
		for m := range c.byModel {
			models = append(models, m)
		}
		sort.Strings(models)
		return "none; this GPU is not in the catalog, which has " + strings.Join(models, ", ")
	}
	counts := make([]int, 0, len(set))
	for n := range set {
		counts = append(counts, n)
	}
	sort.Ints(counts)
	s := make([]string, len(counts))
	for i, n := range counts {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

func distinct(offers []*Offer, key func(*Offer) string) string {
	set := map[string]bool{}
	for _, o := range offers {
		set[key(o)] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	const max = 12
	if len(out) > max {
		return strings.Join(out[:max], ", ") + fmt.Sprintf(" and %d more", len(out)-max)
	}
	return strings.Join(out, ", ")
}

// String describes the candidate for a plan: "aws p4d.24xlarge (A100:8) in
// us-east-1/use1-az1, $32.7726/hr per node on demand".
func (c Candidate) String() string {
	where := c.Region
	if c.Zone != "" {
		where += "/" + c.Zone
	}
	market := "on demand"
	if c.Spot {
		market = "spot"
	}
	return fmt.Sprintf("%s %s (%s:%d) in %s, $%.4f/hr per node %s", c.Cloud, c.InstanceType, c.GPU, c.GPUCount, where, c.PricePerHour, market)
}

// Summary is the plan's line for a choice: the offer, the price of the whole
// cluster and how many fallback offers remain.
func (c Choice) Summary() string {
	noun := "offers"
	if len(c.Fallbacks) == 1 {
		noun = "offer"
	}
	return fmt.Sprintf("%s; %d node(s): $%.4f/hr; %d fallback %s", c.Best, c.Nodes, c.TotalPerHour(), len(c.Fallbacks), noun)
}
