package planner

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers"
	"github.com/zclconf/go-cty/cty"
)

// Planner plans and applies one configuration.
type Planner struct {
	Config    *lang.Config
	Scope     *lang.Scope
	Providers *providers.Registry
	Env       providers.Env // Dir, DataDir and Log; Lookup and Lineage are set per run
}

// Options select what a plan covers.
type Options struct {
	Mode        Mode
	Targets     []lang.Target
	Replace     []lang.Target
	Refresh     bool
	Parallelism int
}

// instance is a prior state instance. Its value is decoded when first
// needed: a no-op plan of a large state decodes each instance once, in the
// parallel walk, and need not keep it (see transient).
type instance struct {
	res   *state.Resource
	addr  lang.Instance
	ty    cty.Type
	types *typeCache

	mu      sync.Mutex
	decoded bool
	v       cty.Value
	err     error
}

// value is the decoded instance, decoded once and kept.
func (in *instance) value() (cty.Value, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.decoded {
		in.v, in.err = in.decode()
		in.decoded = true
	}
	return in.v, in.err
}

// transient is the decoded instance, not kept unless it already was: for an
// instance the plan leaves as it is, whose decoded value (many kilobytes of
// cty maps) is not needed again unless something asks for it, when value
// decodes it again.
func (in *instance) transient() (cty.Value, error) {
	in.mu.Lock()
	if in.decoded {
		defer in.mu.Unlock()
		return in.v, in.err
	}
	in.mu.Unlock()
	return in.decode()
}

func (in *instance) decode() (cty.Value, error) {
	v, err := decodeInstanceWith(in.res, in.ty, in.types)
	if err != nil {
		return cty.UnknownVal(in.ty), fmt.Errorf("invalid resource in state: %w", err)
	}
	return v, nil
}

// mustValue is value for the places that cannot fail: a state instance that
// does not decode was reported when the walk reached it.
func (in *instance) mustValue() cty.Value {
	v, _ := in.value()
	return v
}

// priorIndex groups state instances by resource.
type priorIndex struct {
	byRes  map[lang.Resource][]*instance
	byAddr map[string]*instance
	order  []lang.Resource
}

func indexState(cfg *lang.Config, st *state.State) (*priorIndex, hcl.Diagnostics) {
	idx := &priorIndex{byRes: map[lang.Resource][]*instance{}, byAddr: map[string]*instance{}}
	if st == nil {
		return idx, nil
	}
	schemas := lang.Schemas()
	types := newTypeCache()
	var diags hcl.Diagnostics
	for _, r := range st.Resources {
		schema := schemas[r.Kind]
		if schema == nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown resource kind in state", Detail: fmt.Sprintf("%s has kind %q, which this lepton does not know.", r.Address, r.Kind)})
			continue
		}
		addr, err := lang.ParseInstance(r.Address)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid address in state", Detail: err.Error()})
			continue
		}
		if r, err = upgradeResource(r, schema); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid resource in state", Detail: err.Error()})
			continue
		}
		in := &instance{res: r, addr: addr, ty: schema.StateType(), types: types}
		if _, ok := idx.byRes[addr.Resource]; !ok {
			idx.order = append(idx.order, addr.Resource)
		}
		idx.byRes[addr.Resource] = append(idx.byRes[addr.Resource], in)
		idx.byAddr[r.Address] = in
	}
	return idx, diags
}

// resourceValue builds what a reference to a whole resource evaluates to.
func resourceValue(rb *lang.ResourceBlock, keys []lang.Key, vals []cty.Value) cty.Value {
	switch {
	case rb != nil && rb.Count != nil:
		if len(vals) == 0 {
			return cty.EmptyTupleVal
		}
		return cty.TupleVal(vals)
	case rb != nil && rb.ForEach != nil:
		m := make(map[string]cty.Value, len(keys))
		for i, k := range keys {
			m[string(k.(lang.StringKey))] = vals[i]
		}
		return cty.ObjectVal(m)
	}
	if len(vals) == 0 {
		return cty.DynamicVal
	}
	return vals[0]
}

// run holds one plan's working data.
type run struct {
	p      *Planner
	opts   Options
	prior  *priorIndex
	mu     sync.Mutex
	values map[string]cty.Value // "local.x", "dataset.a" -> value for references
	lazy   map[string]*instance // resources left as they are, decoded on reference
	// encoders are argsUpToDate's scratch space.
	encoders sync.Pool
	// changes by instance address
	changes map[string]*ResourceChange
	drift   []*ResourceChange
	outputs []*OutputChange
	diags   hcl.Diagnostics
	st      *state.State
}

func (r *run) lookup(ref lang.Reference) cty.Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.values[ref.Key()]; ok {
		return v
	}
	if in, ok := r.lazy[ref.Key()]; ok {
		v := in.mustValue()
		r.values[ref.Key()] = v
		return v
	}
	return cty.DynamicVal
}

func (r *run) addDiags(d hcl.Diagnostics) {
	if len(d) == 0 {
		return
	}
	r.mu.Lock()
	r.diags = append(r.diags, d...)
	r.mu.Unlock()
}

// node kinds in the plan graph
type nodeKind uint8

const (
	nodeLocal nodeKind = iota
	nodeResource
	nodeOutput
	nodeOrphan
)

type planNode struct {
	kind     nodeKind
	local    *lang.Local
	resource *lang.ResourceBlock
	output   *lang.Output
	orphan   lang.Resource
}

// buildGraph makes the plan graph: locals, resources and outputs, with edges
// from references. A cycle is an error naming its path.
func (p *Planner) buildGraph() (*graph, []planNode, map[string]int, hcl.Diagnostics) {
	cfg := p.Config
	g := &graph{}
	var nodes []planNode
	ids := map[string]int{}
	var diags hcl.Diagnostics
	add := func(name string, n planNode) {
		ids[name] = g.add(name)
		nodes = append(nodes, n)
	}
	for _, l := range cfg.SortedLocals() {
		add("local."+l.Name, planNode{kind: nodeLocal, local: l})
	}
	for _, rb := range cfg.Resources {
		add(rb.Addr.String(), planNode{kind: nodeResource, resource: rb})
	}
	for _, o := range cfg.SortedOutputs() {
		add("output."+o.Name, planNode{kind: nodeOutput, output: o})
	}
	link := func(from string, refs []lang.Reference) {
		for _, ref := range refs {
			if ref.Kind != lang.RefLocal && ref.Kind != lang.RefResource {
				continue
			}
			if to, ok := ids[ref.Key()]; ok {
				g.edge(ids[from], to)
			}
		}
	}
	for _, l := range cfg.SortedLocals() {
		refs, d := lang.ExprRefs(l.Expr)
		diags = append(diags, d...)
		link("local."+l.Name, refs)
	}
	for _, rb := range cfg.Resources {
		refs, d := cfg.ResourceRefs(rb)
		diags = append(diags, d...)
		link(rb.Addr.String(), refs)
	}
	for _, o := range cfg.SortedOutputs() {
		refs, d := cfg.OutputRefs(o)
		diags = append(diags, d...)
		link("output."+o.Name, refs)
	}
	if c := g.cycle(); c != nil {
		var subj *hcl.Range
		if rb := cfg.Resource(parseResource(c[0])); rb != nil {
			subj = rb.DeclRange.Ptr()
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Dependency cycle",
			Detail:   fmt.Sprintf("These blocks refer to each other in a cycle: %s. Remove one of the references.", strings.Join(c, " -> ")),
			Subject:  subj,
		})
	}
	return g, nodes, ids, diags
}

func parseResource(s string) lang.Resource {
	kind, name, _ := strings.Cut(s, ".")
	return lang.Resource{Kind: kind, Name: name}
}

// Graph returns the configuration's dependency graph as DOT.
func (p *Planner) Graph() (string, hcl.Diagnostics) {
	g, _, _, diags := p.buildGraph()
	var b strings.Builder
	b.WriteString("digraph lepton {\n  compound = \"true\"\n  newrank = \"true\"\n  rankdir = \"RL\"\n")
	for _, n := range g.names {
		fmt.Fprintf(&b, "  %q [label=%q, shape=box]\n", n, n)
	}
	for i, ds := range g.deps {
		seen := map[int]bool{}
		for _, d := range ds {
			if !seen[d] {
				seen[d] = true
				fmt.Fprintf(&b, "  %q -> %q\n", g.names[i], g.names[d])
			}
		}
	}
	b.WriteString("}\n")
	return b.String(), diags
}

// targetClosure returns the resources selected by the targets and everything
// they depend on; nil means everything.
func (p *Planner) targetClosure(g *graph, ids map[string]int, targets []lang.Target) map[string]bool {
	if len(targets) == 0 {
		return nil
	}
	sel := map[string]bool{}
	var visit func(i int)
	visit = func(i int) {
		if sel[g.names[i]] {
			return
		}
		sel[g.names[i]] = true
		for _, d := range g.deps[i] {
			visit(d)
		}
	}
	for _, t := range targets {
		if i, ok := ids[t.Resource.String()]; ok {
			visit(i)
		}
	}
	return sel
}

// Plan computes a plan against the prior state.
func (p *Planner) Plan(ctx context.Context, prior *state.State, opts Options) (*Plan, hcl.Diagnostics) {
	if opts.Parallelism < 1 {
		opts.Parallelism = 10
	}
	idx, diags := indexState(p.Config, prior)
	if diags.HasErrors() {
		return nil, diags
	}
	r := &run{p: p, opts: opts, prior: idx, values: map[string]cty.Value{}, lazy: map[string]*instance{}, encoders: sync.Pool{New: func() any { return &ctyEncoder{} }}, changes: map[string]*ResourceChange{}, st: prior}
	plan := &Plan{Mode: opts.Mode, Targets: opts.Targets, Replace: opts.Replace, Refresh: opts.Refresh, Variables: p.Scope.Vars, Prior: prior}
	if prior != nil {
		plan.Lineage, plan.Serial = prior.Lineage, prior.Serial
	}
	for _, t := range append(append([]lang.Target(nil), opts.Targets...), opts.Replace...) {
		if p.Config.Resource(t.Resource) == nil && len(idx.byRes[t.Resource]) == 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid target address", Detail: fmt.Sprintf("%s is neither in the configuration nor in the state.", t)})
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}

	if opts.Mode == DestroyMode || opts.Mode == RefreshOnlyMode {
		r.planWithoutConfig(ctx, plan)
	} else {
		g, nodes, ids, d := p.buildGraph()
		diags = append(diags, d...)
		if diags.HasErrors() {
			return nil, diags
		}
		closure := p.targetClosure(g, ids, opts.Targets)
		// State instances of resources no longer configured are orphans: add
		// them as nodes so they refresh in parallel with the rest.
		for _, res := range idx.order {
			if p.Config.Resource(res) == nil {
				g.add(res.String())
				nodes = append(nodes, planNode{kind: nodeOrphan, orphan: res})
			}
		}
		errs := g.walk(ctx, walkOptions{Parallelism: opts.Parallelism}, func(ctx context.Context, i int) error {
			n := nodes[i]
			switch n.kind {
			case nodeLocal:
				return r.planLocal(n.local)
			case nodeResource:
				if closure != nil && !closure[n.resource.Addr.String()] {
					r.usePrior(n.resource)
					return nil
				}
				return r.planResource(ctx, n.resource)
			case nodeOutput:
				if closure != nil {
					return nil
				}
				return r.planOutput(n.output)
			case nodeOrphan:
				if closure != nil && !targeted(opts.Targets, n.orphan) {
					return nil
				}
				return r.planOrphan(ctx, n.orphan)
			}
			return nil
		})
		for _, err := range errs {
			if err != nil {
				plan.Errored = true
			}
		}
		if closure == nil {
			r.planRemovedOutputs()
		}
	}
	if opts.Mode != RefreshOnlyMode {
		diags = append(diags, r.planDeposed(prior)...)
	}
	diags = append(diags, r.findOrphans(ctx)...)
	diags = append(diags, r.diags...)
	if diags.HasErrors() {
		plan.Errored = true
	}
	for _, c := range r.changes {
		plan.Changes = append(plan.Changes, c)
	}
	sort.Slice(plan.Changes, func(i, j int) bool {
		a, b := plan.Changes[i], plan.Changes[j]
		if a.Addr == b.Addr {
			return a.DeposedKey < b.DeposedKey
		}
		return lessAddr(a.Addr, b.Addr)
	})
	sort.Slice(r.drift, func(i, j int) bool { return lessAddr(r.drift[i].Addr, r.drift[j].Addr) })
	plan.Drift = r.drift
	sort.Slice(r.outputs, func(i, j int) bool { return r.outputs[i].Name < r.outputs[j].Name })
	plan.Outputs = r.outputs
	plan.Refreshed = r.refreshedState(prior)
	return plan, diags
}

func targeted(ts []lang.Target, res lang.Resource) bool {
	for _, t := range ts {
		if t.Resource == res {
			return true
		}
	}
	return false
}

func lessAddr(a, b lang.Instance) bool {
	if a.Resource != b.Resource {
		return a.Resource.String() < b.Resource.String()
	}
	ai, aInt := a.Key.(lang.IntKey)
	bi, bInt := b.Key.(lang.IntKey)
	if aInt && bInt {
		return ai < bi
	}
	return a.String() < b.String()
}

func (r *run) planLocal(l *lang.Local) error {
	refs, _ := lang.ExprRefs(l.Expr)
	v, d := l.Expr.Value(r.p.Scope.EvalContext(refs, r.lookup, nil))
	r.addDiags(d)
	if d.HasErrors() {
		v = cty.DynamicVal
	}
	r.mu.Lock()
	r.values["local."+l.Name] = v
	r.mu.Unlock()
	if d.HasErrors() {
		return fmt.Errorf("local.%s", l.Name)
	}
	return nil
}

// usePrior makes an untargeted resource's references resolve to its state.
func (r *run) usePrior(rb *lang.ResourceBlock) {
	ins := r.prior.byRes[rb.Addr]
	keys := make([]lang.Key, len(ins))
	vals := make([]cty.Value, len(ins))
	for i, in := range ins {
		keys[i], vals[i] = in.addr.Key, in.mustValue()
	}
	r.mu.Lock()
	r.values[rb.Addr.String()] = resourceValue(rb, keys, vals)
	r.mu.Unlock()
}

func (r *run) record(c *ResourceChange) {
	r.mu.Lock()
	r.changes[c.key()] = c
	r.mu.Unlock()
}

// refresh reads the real object behind a prior instance; a difference is
// drift. The instance is decoded and kept.
func (r *run) refresh(ctx context.Context, in *instance) (cty.Value, error) {
	if !r.opts.Refresh || in.res.Status == state.StatusRunning {
		return in.value()
	}
	_, res, err := r.p.Providers.For(in.addr.Resource.Kind, in.res.Provider)
	if err != nil {
		v, _ := in.value()
		return v, err
	}
	if cr, ok := res.(providers.CurrentReader); ok && cr.ReadsCurrent() {
		return in.value()
	}
	cur, err := in.value()
	if err != nil {
		return cur, err
	}
	// Only the paths state lists as sensitive carry marks (decodeInstance);
	// UnmarkDeepWithPaths rebuilds the whole value, so skip it without them.
	unmarked, pvm := cur, []cty.PathValueMarks(nil)
	if len(in.res.SensitiveAttributes) > 0 {
		unmarked, pvm = cur.UnmarkDeepWithPaths()
	}
	got, err := res.Read(ctx, providers.ReadRequest{Address: in.res.Address, Current: unmarked, Private: in.res.Private, Env: withProviderConfig(r.env(), in.res.ProviderConfig)})
	if err != nil {
		return cur, fmt.Errorf("%s: refreshing: %w", in.res.Address, err)
	}
	if !got.IsNull() {
		got = got.MarkWithPaths(pvm)
	}
	if !valuesEqual(got, cur) {
		ty := lang.Schemas()[in.addr.Resource.Kind].StateType()
		c := &ResourceChange{Addr: in.addr, Provider: in.res.Provider, Action: Update, Before: cur, After: got, Type: ty}
		if got.IsNull() {
			c.Action = Delete
			c.After = cty.NullVal(ty)
		}
		r.mu.Lock()
		r.drift = append(r.drift, c)
		r.mu.Unlock()
	}
	return got, nil
}

// withProviderConfig is e for a resource that names a provider
// configuration ("aws.west"): that block stands in for the provider's
// default one ("aws").
func withProviderConfig(e providers.Env, config string) providers.Env {
	name, alias, ok := strings.Cut(config, ".")
	if !ok || alias == "" {
		return e
	}
	blocks := make(map[string]map[string]string, len(e.Providers))
	for k, v := range e.Providers {
		blocks[k] = v
	}
	blocks[name] = e.Providers[config]
	if blocks[name] == nil {
		blocks[name] = map[string]string{}
	}
	e.Providers = blocks
	return e
}

func (r *run) env() providers.Env {
	e := r.p.Env
	if r.st != nil {
		e.Lineage = r.st.Lineage
	}
	e.Lookup = func(addr string) (cty.Value, bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if c, ok := r.changes[addr]; ok && c.lazy == nil && !c.After.IsNull() {
			v, _ := c.After.UnmarkDeep()
			return v, true
		}
		if in, ok := r.prior.byAddr[addr]; ok {
			v, _ := in.mustValue().UnmarkDeep()
			return v, true
		}
		return cty.NilVal, false
	}
	return e
}

func (r *run) planResource(ctx context.Context, rb *lang.ResourceBlock) error {
	cfg := r.p.Config
	refs, _ := cfg.ResourceRefs(rb)
	evalRefs := cfg.ResourceEvalRefs(rb)
	keys, kds, d := r.p.Scope.Expand(rb, r.p.Scope.EvalContext(evalRefs, r.lookup, nil))
	r.addDiags(d)
	if d.HasErrors() {
		r.mu.Lock()
		r.values[rb.Addr.String()] = cty.DynamicVal
		r.mu.Unlock()
		return fmt.Errorf("%s: expansion failed", rb.Addr)
	}
	deps := r.p.dependencies(refs)
	vals := make([]cty.Value, len(keys))
	var failed error
	var single *instance // a lone instance left as it is, not kept decoded
	present := map[string]bool{}
	for i, key := range keys {
		addr := rb.Addr.Instance(key)
		present[addr.String()] = true
		if !r.instanceTargeted(addr) {
			// -target names other instances of this resource: this one
			// keeps its state (or stays absent).
			vals[i] = cty.DynamicVal
			if in := r.prior.byAddr[addr.String()]; in != nil {
				vals[i] = in.mustValue()
			}
			continue
		}
		v, lazy, err := r.planInstance(ctx, rb, addr, evalRefs, kds[i], deps)
		if lazy != nil {
			if len(keys) == 1 && rb.Count == nil && rb.ForEach == nil {
				// Decoded again only if something refers to it.
				single = lazy
			} else {
				v = lazy.mustValue()
			}
		}
		if err != nil {
			failed = err
		}
		vals[i] = v
	}
	// Prior instances whose key is gone are deleted.
	for _, in := range r.prior.byRes[rb.Addr] {
		if present[in.res.Address] {
			continue
		}
		reason := ReasonCountIndex
		switch {
		case rb.Count == nil && rb.ForEach == nil:
			reason = ReasonWrongRepetition
		case rb.ForEach != nil:
			reason = ReasonEachKey
			if _, ok := in.addr.Key.(lang.StringKey); !ok {
				reason = ReasonWrongRepetition
			}
		case rb.Count != nil:
			if _, ok := in.addr.Key.(lang.IntKey); !ok {
				reason = ReasonWrongRepetition
			}
		}
		if !r.selected(in.addr) {
			continue
		}
		cur, err := in.value()
		if err != nil {
			r.addDiags(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid resource in state", Detail: err.Error()}})
			failed = err
			continue
		}
		if err := r.preventDestroy(rb, in.res.Address); err != nil {
			failed = err
		}
		r.record(r.deleteChange(in, cur, reason))
	}
	r.mu.Lock()
	if single != nil {
		r.lazy[rb.Addr.String()] = single
	} else {
		r.values[rb.Addr.String()] = resourceValue(rb, keys, vals)
	}
	r.mu.Unlock()
	return failed
}

// selected reports whether -target selects the instance (everything without -target).
func (r *run) selected(a lang.Instance) bool {
	if len(r.opts.Targets) == 0 {
		return true
	}
	for _, t := range r.opts.Targets {
		if t.Matches(a) {
			return true
		}
	}
	return false
}

// instanceTargeted reports whether an instance of a resource in the -target
// closure is planned: all of a resource that is only a dependency, and only
// the named instances of a resource that a target names with an index.
func (r *run) instanceTargeted(a lang.Instance) bool {
	named := false
	for _, t := range r.opts.Targets {
		if t.Resource == a.Resource {
			if t.Matches(a) {
				return true
			}
			named = true
		}
	}
	return !named
}

func resourceDeps(refs []lang.Reference) []string {
	seen := map[string]bool{}
	var out []string
	for _, ref := range refs {
		if ref.Kind == lang.RefResource && !seen[ref.Key()] {
			seen[ref.Key()] = true
			out = append(out, ref.Key())
		}
	}
	sort.Strings(out)
	return out
}

// dependencies are the resources a resource block uses: those it refers to,
// and those the locals it refers to use, at any depth. Locals are not nodes
// of the apply graph, so without them a resource that reads another through
// a local would be applied before it (with the value still unknown) and
// destroyed after it.
func (p *Planner) dependencies(refs []lang.Reference) []string {
	viaLocal := false
	for _, ref := range refs {
		viaLocal = viaLocal || ref.Kind == lang.RefLocal
	}
	if !viaLocal {
		return resourceDeps(refs)
	}
	seen := map[string]bool{}
	var out []string
	var visit func(refs []lang.Reference)
	visit = func(refs []lang.Reference) {
		for _, ref := range refs {
			if (ref.Kind != lang.RefResource && ref.Kind != lang.RefLocal) || seen[ref.Key()] {
				continue
			}
			seen[ref.Key()] = true
			if ref.Kind == lang.RefResource {
				out = append(out, ref.Key())
			} else if l := p.Config.Locals[ref.Name]; l != nil {
				lrefs, _ := lang.ExprRefs(l.Expr)
				visit(lrefs)
			}
		}
	}
	visit(refs)
	sort.Strings(out)
	return out
}

// deleteChange deletes in, whose current value is cur.
func (r *run) deleteChange(in *instance, cur cty.Value, reason string) *ResourceChange {
	ty := lang.Schemas()[in.addr.Resource.Kind].StateType()
	return &ResourceChange{
		Addr: in.addr, Provider: in.res.Provider, Action: Delete, Before: cur, After: cty.NullVal(ty), Type: ty,
		ActionReason: reason, Dependencies: in.res.Dependencies, PriorPrice: priceOf(cur), Status: in.res.Status,
		PriorPrivate: in.res.Private, PriorProviderConfig: in.res.ProviderConfig,
	}
}

func priceOf(v cty.Value) float64 {
	if v.IsNull() || !v.IsKnown() || !v.Type().IsObjectType() || !v.Type().HasAttribute("price_per_hour") {
		return 0
	}
	p, _ := v.GetAttr("price_per_hour").Unmark()
	if p.IsNull() || !p.IsKnown() {
		return 0
	}
	f, _ := p.AsBigFloat().Float64()
	return f
}

// planInstance plans one instance and returns its planned value, for
// references. lazy is set instead, and the value is not, for an instance left
// as it is whose decoded value was not kept (see instance.transient).
func (r *run) planInstance(ctx context.Context, rb *lang.ResourceBlock, addr lang.Instance, refs []lang.Reference, kd *lang.KeyData, deps []string) (v cty.Value, lazy *instance, err error) {
	schema := rb.Schema
	ty := schema.StateType()
	address := addr.String()
	fail := func(err error) (cty.Value, *instance, error) {
		r.addDiags(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Planning " + address + " failed", Detail: err.Error(), Subject: errSubject(rb, err)}})
		return cty.UnknownVal(ty), nil, err
	}
	cfgVal, d := r.p.Scope.DecodeResource(rb, r.p.Scope.EvalContext(refs, r.lookup, kd))
	r.addDiags(d)
	if d.HasErrors() {
		return cty.UnknownVal(ty), nil, fmt.Errorf("%s: invalid arguments", address)
	}
	in := r.prior.byAddr[address]
	prior := cty.NullVal(ty)
	status := ""
	provName := ""
	if in != nil {
		status = in.res.Status
		provName = in.res.Provider
	}
	name, res, err := r.p.Providers.For(rb.Addr.Kind, provName)
	if err != nil {
		return fail(err)
	}
	// fromState: the prior is the state's value as stored (nothing to read),
	// decoded here without being kept.
	fromState := false
	if in != nil {
		cr, reads := res.(providers.CurrentReader)
		fromState = !r.opts.Refresh || status == state.StatusRunning || (reads && cr.ReadsCurrent())
		if fromState && r.argsUpToDate(rb, res, in, addr, cfgVal) {
			r.record(&ResourceChange{Addr: addr, Provider: name, Type: ty, Dependencies: deps, Status: status, Action: NoOp, lazy: in})
			return cty.NilVal, in, nil
		}
		if fromState {
			prior, err = in.transient()
		} else {
			prior, err = r.refresh(ctx, in)
		}
		if err != nil {
			return fail(err)
		}
	}
	ignoring := !prior.IsNull() && (rb.Lifecycle.IgnoreAll || len(rb.Lifecycle.IgnoreChanges) > 0)
	if ignoring {
		cfgVal = ignoreChanges(cfgVal, prior, rb.Lifecycle)
	}
	cfgUnmarked, cfgMarks := cfgVal, []cty.PathValueMarks(nil)
	if ignoring || rb.MayBeMarked() {
		cfgUnmarked, cfgMarks = cfgVal.UnmarkDeepWithPaths()
	}
	// The refreshed prior carries marks only where state lists sensitive paths.
	priorUnmarked, priorMarks := prior, []cty.PathValueMarks(nil)
	if in != nil && len(in.res.SensitiveAttributes) > 0 {
		priorUnmarked, priorMarks = prior.UnmarkDeepWithPaths()
	}
	forced := r.forcedReplace(addr)
	// A resource that consumes a changed resource (dataset = dataset.x) is
	// rebuilt from it.
	consumed := ""
	if !prior.IsNull() {
		consumed = r.consumedChange(schema, cfgUnmarked)
	}
	planPrior := priorUnmarked
	if status == state.StatusTainted || status == state.StatusRunning || forced || consumed != "" {
		// Plan as a new object; the old one goes.
		planPrior = cty.NullVal(ty)
	}
	var priorPrivate []byte
	priorConfig := ""
	if in != nil {
		priorPrivate, priorConfig = in.res.Private, in.res.ProviderConfig
	}
	// The provider gets the prior's private data with the prior, or alone
	// when it is to resume an interrupted create; not when the object is
	// replaced (tainted, -replace, a consumed change): the new object is
	// another one, and the old data would make it adopt the old object.
	planPrivate := priorPrivate
	if planPrior.IsNull() && status != state.StatusRunning {
		planPrivate = nil
	}
	resp, err := res.Plan(ctx, providers.PlanRequest{Address: address, Prior: planPrior, Config: cfgUnmarked, PriorPrivate: planPrivate, Env: withProviderConfig(r.env(), rb.Provider)})
	r.addWarnings(rb, address, resp.Warnings)
	if err != nil {
		return fail(err)
	}
	if resp.Unchanged && !planPrior.IsNull() && len(cfgMarks) == 0 && len(resp.RequiresReplace) == 0 {
		// Up to date: the prior stays, with its marks, as the planned value.
		c := &ResourceChange{
			Addr: addr, Provider: name, Before: prior, After: prior, Type: ty, Dependencies: deps,
			PricePerHour: resp.PricePerHour, PriorPrice: priceOf(prior), Detail: resp.Detail, Status: status, Action: NoOp,
			Private: priorPrivate, PriorPrivate: priorPrivate, ProviderConfig: rb.Provider, PriorProviderConfig: priorConfig,
		}
		if fromState {
			c.Before, c.After, c.lazy = cty.NilVal, cty.NilVal, in
			r.record(c)
			return cty.NilVal, in, nil
		}
		r.record(c)
		return prior, nil, nil
	}
	planned := resp.Planned
	if planned.IsNull() || !conforms(planned, ty) {
		return fail(fmt.Errorf("provider %s returned a value of the wrong type for %s: %v", name, rb.Addr.Kind, planned.Type().TestConformance(ty)))
	}
	planned = setAttr(planned, "id", cty.StringVal(address))
	planned = planned.MarkWithPaths(cfgMarks)
	if !prior.IsNull() {
		planned = planned.MarkWithPaths(priorMarks)
	}
	planned = markSensitive(planned, schema.Sensitive)
	planned = markDerived(planned, schema, cfgMarks)

	c := &ResourceChange{
		Addr: addr, Provider: name, Before: prior, After: planned, Type: ty, Dependencies: deps,
		PricePerHour: resp.PricePerHour, PriorPrice: priceOf(prior), Detail: resp.Detail, Status: status, Compute: resp.Compute,
		Private: resp.Private, PriorPrivate: priorPrivate, ProviderConfig: rb.Provider, PriorProviderConfig: priorConfig,
	}
	switch {
	case prior.IsNull():
		c.Action = Create
	case status == state.StatusTainted:
		c.Action, c.ActionReason, c.Reason = r.replaceAction(rb), ReasonTainted, "is tainted, so must be replaced"
	case status == state.StatusRunning:
		// Not a replacement: deleting would throw away the checkpoints that
		// the create resumes from.
		c.Action, c.Reason = Create, "was interrupted; it resumes from its last checkpoint"
		if resp.Reason != "" {
			c.Reason = resp.Reason // a run going on elsewhere, say
		}
	case forced:
		c.Action, c.ActionReason, c.Reason = r.replaceAction(rb), ReasonRequested, "will be replaced, as requested"
	case consumed != "":
		c.Action, c.ActionReason, c.Reason = r.replaceAction(rb), ReasonCannotUpdate, "("+consumed+" changed)"
	case len(resp.RequiresReplace) > 0:
		c.Action, c.ActionReason, c.RequiresReplace = r.replaceAction(rb), ReasonCannotUpdate, resp.RequiresReplace
		c.Reason = resp.Reason
	case !valuesEqual(prior, planned):
		c.Action = Update
		c.Reason = resp.Reason
	default:
		c.Action = NoOp
	}
	if c.Action == Delete || c.Action.IsReplace() {
		if err := r.preventDestroy(rb, address); err != nil {
			r.record(c)
			return planned, nil, err
		}
	}
	r.record(c)
	if c.Action == NoOp {
		return prior, nil, nil
	}
	return planned, nil, nil
}

// preventDestroy reports an error, and returns it, when rb (nil for a
// resource no longer configured) forbids destroying the instance at address.
func (r *run) preventDestroy(rb *lang.ResourceBlock, address string) error {
	if rb == nil || !rb.Lifecycle.PreventDestroy {
		return nil
	}
	r.addDiags(hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Instance cannot be destroyed",
		Detail:   fmt.Sprintf("%s has lifecycle.prevent_destroy set, but the plan calls for it to be destroyed. To avoid this error and continue with the plan, either disable lifecycle.prevent_destroy or reduce the scope of the plan using -target.", address),
		Subject:  rb.DeclRange.Ptr(),
	}})
	return fmt.Errorf("%s: prevent_destroy", address)
}

// argsUpToDate: the instance is up to date, shown without decoding its state,
// because its resource is determined by its arguments (ArgsDetermined) and
// they are the stored ones, and nothing else asks for a change.
func (r *run) argsUpToDate(rb *lang.ResourceBlock, res providers.Resource, in *instance, addr lang.Instance, cfg cty.Value) bool {
	ad, ok := res.(providers.ArgsDetermined)
	switch {
	case !ok, in.res.Status != state.StatusReady, len(in.res.SensitiveAttributes) > 0,
		rb.MayBeMarked(), rb.Lifecycle.IgnoreAll, len(rb.Lifecycle.IgnoreChanges) > 0,
		r.forcedReplace(addr), !cfg.IsWhollyKnown(), !ad.DeterminedByArgs(cfg),
		r.consumedChange(rb.Schema, cfg) != "":
		return false
	}
	e := r.encoders.Get().(*ctyEncoder)
	defer r.encoders.Put(e)
	return argsMatchState(e, cfg, rb.Schema.ConfigType(), in.res)
}

func (r *run) replaceAction(rb *lang.ResourceBlock) Action {
	if rb.Lifecycle.CreateBeforeDestroy {
		return CreateThenDelete
	}
	return DeleteThenCreate
}

func (r *run) forcedReplace(a lang.Instance) bool {
	for _, t := range r.opts.Replace {
		if t.Matches(a) {
			return true
		}
	}
	return false
}

// consumedChange names a resource this one consumes (through a reference
// argument such as dataset) that the plan changes, or "".
func (r *run) consumedChange(schema *lang.KindSchema, cfg cty.Value) string {
	for _, name := range schema.Refs {
		v := cfg.GetAttr(name)
		if v.IsNull() || !v.IsKnown() {
			continue
		}
		placement := slices.Contains(schema.Placement, name)
		id := v.AsString()
		r.mu.Lock()
		c := r.changes[id]
		r.mu.Unlock()
		// Where a resource runs is changed in place (a resized cluster)
		// without rebuilding what it made; a replaced one rebuilds it.
		if c != nil && (c.Action == Update && !placement || c.Action.IsReplace()) {
			return id
		}
	}
	return ""
}

func setAttr(obj cty.Value, name string, v cty.Value) cty.Value {
	m := obj.AsValueMap()
	m[name] = v
	return cty.ObjectVal(m)
}

// markDerived marks the computed attributes that carry values of the data a
// resource reads (one-hot column names, class labels, per-column statistics)
// as sensitive when any of its arguments is: they would otherwise show the
// secret they were computed from.
func markDerived(v cty.Value, schema *lang.KindSchema, cfgMarks []cty.PathValueMarks) cty.Value {
	if len(cfgMarks) == 0 {
		return v
	}
	return markSensitive(v, schema.DerivedFromData)
}

func markSensitive(v cty.Value, names []string) cty.Value {
	if len(names) == 0 || v.IsNull() || !v.IsKnown() {
		return v
	}
	m := v.AsValueMap()
	for _, n := range names {
		if a, ok := m[n]; ok {
			m[n] = a.Mark(lang.Sensitive)
		}
	}
	return cty.ObjectVal(m)
}

// ignoreChanges keeps prior values for ignored arguments.
func ignoreChanges(cfg, prior cty.Value, lc lang.Lifecycle) cty.Value {
	if !lc.IgnoreAll && len(lc.IgnoreChanges) == 0 {
		return cfg
	}
	m := cfg.AsValueMap()
	for name := range m {
		ignored := lc.IgnoreAll
		for _, n := range lc.IgnoreChanges {
			ignored = ignored || n == name
		}
		if ignored && prior.Type().HasAttribute(name) {
			pv := prior.GetAttr(name)
			if pv.Type().Equals(m[name].Type()) {
				m[name] = pv
			}
		}
	}
	return cty.ObjectVal(m)
}

func (r *run) planOrphan(ctx context.Context, res lang.Resource) error {
	var failed error
	for _, in := range r.prior.byRes[res] {
		v, err := r.refresh(ctx, in)
		if err != nil {
			r.addDiags(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Refreshing " + in.res.Address + " failed", Detail: err.Error()}})
			failed = err
			continue
		}
		if v.IsNull() {
			continue // already gone: the refreshed state drops it
		}
		r.record(r.deleteChange(in, v, ReasonNoResourceConfig))
	}
	return failed
}

func (r *run) planOutput(o *lang.Output) error {
	refs, _ := r.p.Config.OutputRefs(o)
	v, d := o.Value.Value(r.p.Scope.EvalContext(refs, r.lookup, nil))
	r.addDiags(d)
	if d.HasErrors() {
		return fmt.Errorf("output.%s", o.Name)
	}
	if !o.Sensitive && containsSensitive(v) {
		r.addDiags(hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Output refers to sensitive values",
			Detail:   fmt.Sprintf("Output %q refers to sensitive values. To show it anyway, set sensitive = true in the output block; lepton then hides it in the plan and in `lepton output` unless named.", o.Name),
			Subject:  o.DeclRange.Ptr(),
		}})
		return fmt.Errorf("output.%s", o.Name)
	}
	oc := &OutputChange{Name: o.Name, After: v, Sensitive: o.Sensitive, Before: cty.NullVal(cty.DynamicPseudoType), Action: Create}
	if r.st != nil {
		if prev, ok := r.st.Outputs[o.Name]; ok {
			if pv, err := decodeValue(prev.Value, prev.Type); err == nil {
				oc.Before = pv
				oc.Action = Update
				if valuesEqual(pv, v) && prev.Sensitive == o.Sensitive {
					oc.Action = NoOp
				}
			}
		}
	}
	r.mu.Lock()
	r.outputs = append(r.outputs, oc)
	r.mu.Unlock()
	return nil
}

func containsSensitive(v cty.Value) bool {
	_, pvm := v.UnmarkDeepWithPaths()
	for _, pm := range pvm {
		if _, ok := pm.Marks[lang.Sensitive]; ok {
			return true
		}
	}
	return false
}

func (r *run) planRemovedOutputs() {
	if r.st == nil {
		return
	}
	for name, prev := range r.st.Outputs {
		if _, ok := r.p.Config.Outputs[name]; ok {
			continue
		}
		pv, err := decodeValue(prev.Value, prev.Type)
		if err != nil {
			continue
		}
		r.outputs = append(r.outputs, &OutputChange{Name: name, Action: Delete, Before: pv, After: cty.NullVal(cty.DynamicPseudoType), Sensitive: prev.Sensitive})
	}
}

// planWithoutConfig plans destroy and refresh-only: every state instance is
// refreshed in parallel; destroy deletes the selected ones.
func (r *run) planWithoutConfig(ctx context.Context, plan *Plan) {
	var all []*instance
	for _, res := range r.prior.order {
		all = append(all, r.prior.byRes[res]...)
	}
	selected := r.destroySelection(all)
	g := &graph{}
	for _, in := range all {
		g.add(in.res.Address)
	}
	errs := g.walk(ctx, walkOptions{Parallelism: r.opts.Parallelism}, func(ctx context.Context, i int) error {
		in := all[i]
		v, err := r.refresh(ctx, in)
		if err != nil {
			r.addDiags(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Refreshing " + in.res.Address + " failed", Detail: err.Error()}})
			return err
		}
		if r.opts.Mode == DestroyMode && selected[in.res.Address] && !v.IsNull() {
			r.record(r.deleteChange(in, v, ""))
			return r.preventDestroy(r.p.Config.Resource(in.addr.Resource), in.res.Address)
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			plan.Errored = true
		}
	}
	if r.opts.Mode == DestroyMode && len(r.opts.Targets) == 0 && r.st != nil {
		for name, prev := range r.st.Outputs {
			pv, err := decodeValue(prev.Value, prev.Type)
			if err != nil {
				continue
			}
			r.outputs = append(r.outputs, &OutputChange{Name: name, Action: Delete, Before: pv, After: cty.NullVal(cty.DynamicPseudoType), Sensitive: prev.Sensitive})
		}
	}
}

// destroySelection is every instance, or with -target the targets and
// everything that depends on them (they cannot outlive what they use).
func (r *run) destroySelection(all []*instance) map[string]bool {
	sel := map[string]bool{}
	if len(r.opts.Targets) == 0 {
		for _, in := range all {
			sel[in.res.Address] = true
		}
		return sel
	}
	res := map[string]bool{}
	for _, t := range r.opts.Targets {
		res[t.Resource.String()] = true
	}
	for changed := true; changed; {
		changed = false
		for _, in := range all {
			r := in.addr.Resource.String()
			if res[r] {
				continue
			}
			for _, d := range in.res.Dependencies {
				if res[d] {
					res[r], changed = true, true
					break
				}
			}
		}
	}
	for _, in := range all {
		if !res[in.addr.Resource.String()] {
			continue
		}
		for _, t := range r.opts.Targets {
			if t.Resource != in.addr.Resource || t.Matches(in.addr) {
				sel[in.res.Address] = true
			}
		}
	}
	return sel
}

// planDeposed plans the delete of every deposed object in state (within
// -target): they are what a create_before_destroy left behind when the old
// object's delete failed or was interrupted.
func (r *run) planDeposed(prior *state.State) hcl.Diagnostics {
	if prior == nil {
		return nil
	}
	var diags hcl.Diagnostics
	types := newTypeCache()
	schemas := lang.Schemas()
	for _, d := range prior.Deposed {
		addr, err := lang.ParseInstance(d.Address)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid address in state", Detail: err.Error()})
			continue
		}
		if len(r.opts.Targets) > 0 && !targeted(r.opts.Targets, addr.Resource) {
			continue
		}
		schema := schemas[d.Kind]
		if schema == nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown resource kind in state", Detail: fmt.Sprintf("%s has kind %q, which this lepton does not know.", d.Address, d.Kind)})
			continue
		}
		res, err := upgradeResource(&d.Resource, schema)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid resource in state", Detail: err.Error()})
			continue
		}
		ty := schema.StateType()
		v, err := decodeInstanceWith(res, ty, types)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid resource in state", Detail: err.Error()})
			continue
		}
		r.record(&ResourceChange{
			Addr: addr, Provider: d.Provider, Action: Delete, Before: v, After: cty.NullVal(ty), Type: ty,
			Dependencies: d.Dependencies, PriorPrice: priceOf(v), Status: d.Status, PriorPrivate: d.Private, PriorProviderConfig: d.ProviderConfig,
			DeposedKey: d.Key, Reason: "left over from a partially-failed replacement of this instance",
		})
	}
	return diags
}

// refreshedState is the prior state with refreshed values (for -refresh-only).
func (r *run) refreshedState(prior *state.State) *state.State {
	if prior == nil {
		return nil
	}
	out := prior.Clone()
	for _, d := range r.drift {
		addr := d.Addr.String()
		if d.Action == Delete {
			out.Remove(addr)
			continue
		}
		if res := out.Find(addr); res != nil {
			if b, paths, err := encodeInstance(d.After, d.Type); err == nil {
				res.Attributes, res.SensitiveAttributes = b, paths
			}
		}
	}
	return out
}

// Validate reports what the graph finds wrong (cycles), for `lepton validate`.
func (p *Planner) Validate() hcl.Diagnostics {
	_, _, _, d := p.buildGraph()
	return d
}
