package planner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers"
	"github.com/zclconf/go-cty/cty"
)

// Hooks receive apply progress. Done is called only once the state that
// records the change is on disk.
type Hooks interface {
	Start(addr string, a Action)
	Done(addr string, a Action, elapsed time.Duration, summary string)
	Failed(addr string, a Action, err error)
	Log(addr, line string)
}

// ApplyOptions control an apply.
type ApplyOptions struct {
	Parallelism int
	// Stop, when closed, stops scheduling new work (the first Ctrl-C); the
	// context passed to Apply cancels running work (the second).
	Stop  <-chan struct{}
	Hooks Hooks
}

// ApplyResult counts what an apply did.
type ApplyResult struct {
	Added, Changed, Destroyed int
	Interrupted               bool
}

type applyRun struct {
	p     *Planner
	plan  *Plan
	pers  *state.Persister
	hooks Hooks
	mu    sync.Mutex
	// live values by instance address, and instance keys by resource
	live  map[string]cty.Value
	keys  map[lang.Resource]map[string]lang.Key
	diags hcl.Diagnostics
	res   ApplyResult
	// deposed holds the key under which each create_before_destroy
	// replacement deposed its old object, by address, for its delete.
	deposed map[string]string
}

type applyNode struct {
	change  *ResourceChange
	destroy bool
}

// Apply carries out a plan, writing state through pers as each instance
// finishes. Every error is reported; independent branches complete.
func (p *Planner) Apply(ctx context.Context, plan *Plan, pers *state.Persister, opts ApplyOptions) (ApplyResult, hcl.Diagnostics) {
	plan.LoadValues()
	if opts.Parallelism < 1 {
		opts.Parallelism = 10
	}
	a := &applyRun{p: p, plan: plan, pers: pers, hooks: opts.Hooks, live: map[string]cty.Value{}, keys: map[lang.Resource]map[string]lang.Key{}, deposed: map[string]string{}}
	if a.hooks == nil {
		a.hooks = nopHooks{}
	}
	var lineage string
	// Update, not View: instances of an older schema version are upgraded
	// in the live state, so the next write stores them upgraded.
	pers.Update(func(st *state.State) {
		lineage = st.Lineage
		schemas := lang.Schemas()
		types := newTypeCache()
		for i, r := range st.Resources {
			schema := schemas[r.Kind]
			addr, err := lang.ParseInstance(r.Address)
			if schema == nil || err != nil {
				continue
			}
			if up, err := upgradeResource(r, schema); err == nil {
				st.Resources[i] = up
				r = up
			}
			if v, err := decodeInstanceWith(r, schema.StateType(), types); err == nil {
				a.setLive(addr, v)
			}
		}
	}, nil)
	if plan.Mode == RefreshOnlyMode {
		if plan.Refreshed != nil {
			pers.Update(func(st *state.State) {
				st.Resources = plan.Refreshed.Clone().Resources
			}, nil)
		}
		return a.res, nil
	}
	a.dropDeletedOutside()

	g := &graph{}
	var nodes []applyNode
	applyIDs := map[lang.Resource][]int{}
	destroyIDs := map[lang.Resource][]int{}
	ownApply := map[string]int{}
	ownDestroy := map[string]int{}
	for _, c := range plan.Changes {
		res := c.Addr.Resource
		switch c.Action {
		case NoOp:
			continue
		case Create, Update:
			id := g.add("apply " + c.Address())
			nodes = append(nodes, applyNode{change: c})
			applyIDs[res] = append(applyIDs[res], id)
			ownApply[c.Address()] = id
		case Delete:
			id := g.add("destroy " + c.DisplayAddress())
			nodes = append(nodes, applyNode{change: c, destroy: true})
			if c.DeposedKey != "" {
				// Nothing waits for a deposed object's delete: the
				// current object holds the address.
				continue
			}
			destroyIDs[res] = append(destroyIDs[res], id)
			ownDestroy[c.Address()] = id
		case DeleteThenCreate, CreateThenDelete:
			d := g.add("destroy " + c.Address())
			nodes = append(nodes, applyNode{change: c, destroy: true})
			ap := g.add("apply " + c.Address())
			nodes = append(nodes, applyNode{change: c})
			destroyIDs[res] = append(destroyIDs[res], d)
			applyIDs[res] = append(applyIDs[res], ap)
			ownApply[c.Address()], ownDestroy[c.Address()] = ap, d
			if c.Action == DeleteThenCreate {
				g.edge(ap, d)
			} else {
				g.edge(d, ap)
			}
		}
	}
	priorDeps := map[string][]string{}
	pers.View(func(st *state.State) {
		for _, r := range st.Resources {
			priorDeps[r.Address] = r.Dependencies
		}
	})
	for i, n := range nodes {
		c := n.change
		if !n.destroy {
			for _, dep := range c.Dependencies {
				for _, j := range applyIDs[parseResource(dep)] {
					g.edge(i, j)
				}
			}
			continue
		}
		// A destroy waits for the destroys of what depended on it, and for the
		// updates of what used to depend on it.
		deps := priorDeps[c.Address()]
		if c.DeposedKey != "" {
			deps = c.Dependencies
			// As in create_before_destroy, the old object goes only once its
			// replacement exists: when the plan creates (or resumes) the
			// address's current object, a failed create leaves the old one.
			if ai, ok := ownApply[c.Address()]; ok {
				g.edge(i, ai)
			}
		}
		for _, dep := range deps {
			for _, j := range destroyIDs[parseResource(dep)] {
				g.edge(j, i)
			}
		}
		if c.Action == CreateThenDelete {
			for _, m := range nodes {
				if m.destroy {
					continue
				}
				for _, dep := range m.change.Dependencies {
					if dep == c.Addr.Resource.String() {
						g.edge(i, ownApply[m.change.Address()])
					}
				}
			}
		}
	}
	for addr, deps := range priorDeps {
		ai, ok := ownApply[addr]
		if !ok {
			continue
		}
		for _, dep := range deps {
			for _, d := range destroyIDs[parseResource(dep)] {
				if nodes[d].change.Action == Delete {
					g.edge(d, ai)
				}
			}
		}
	}
	_ = lineage
	stop := opts.Stop
	errs := g.walk(ctx, walkOptions{Stop: stop, Parallelism: opts.Parallelism, Idle: pers.Hurry}, func(ctx context.Context, i int) error {
		n := nodes[i]
		if n.destroy {
			return a.destroy(ctx, n.change)
		}
		return a.apply(ctx, n.change)
	})
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			a.res.Interrupted = true
		default:
			if _, ok := err.(errSkipped); ok {
				a.diags = append(a.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Skipped " + nodes[i].change.Address(), Detail: err.Error()})
			}
		}
	}
	if stop != nil {
		select {
		case <-stop:
			a.res.Interrupted = true
		default:
		}
	}
	if plan.Mode == NormalMode && len(plan.Targets) == 0 {
		a.writeOutputs()
	} else if plan.Mode == DestroyMode && len(plan.Targets) == 0 {
		pers.Update(func(st *state.State) { st.Outputs = map[string]state.Output{} }, nil)
	}
	if err := pers.Flush(); err != nil {
		a.diags = append(a.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Failed to persist state", Detail: err.Error()})
	}
	sortDiags(a.diags)
	return a.res, a.diags
}

func sortDiags(d hcl.Diagnostics) {
	sort.SliceStable(d, func(i, j int) bool { return d[i].Severity < d[j].Severity })
}

type nopHooks struct{}

func (nopHooks) Start(string, Action)                       {}
func (nopHooks) Done(string, Action, time.Duration, string) {}
func (nopHooks) Failed(string, Action, error)               {}
func (nopHooks) Log(string, string)                         {}

func (a *applyRun) setLive(addr lang.Instance, v cty.Value) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.live[addr.String()] = v
	m := a.keys[addr.Resource]
	if m == nil {
		m = map[string]lang.Key{}
		a.keys[addr.Resource] = m
	}
	m[addr.String()] = addr.Key
}

func (a *applyRun) dropLive(addr lang.Instance) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.live, addr.String())
	delete(a.keys[addr.Resource], addr.String())
}

// lookup resolves references during apply from live (applied) values; locals
// are evaluated on demand, since they may use values known only now.
func (a *applyRun) lookup(ref lang.Reference) cty.Value {
	switch ref.Kind {
	case lang.RefLocal:
		l := a.p.Config.Locals[ref.Name]
		if l == nil {
			return cty.DynamicVal
		}
		refs, _ := lang.ExprRefs(l.Expr)
		v, d := l.Expr.Value(a.p.Scope.EvalContext(refs, a.lookup, nil))
		if d.HasErrors() {
			return cty.DynamicVal
		}
		return v
	case lang.RefResource:
		rb := a.p.Config.Resource(ref.Resource)
		a.mu.Lock()
		defer a.mu.Unlock()
		m := a.keys[ref.Resource]
		addrs := make([]lang.Instance, 0, len(m))
		for _, k := range m {
			addrs = append(addrs, ref.Resource.Instance(k))
		}
		sort.Slice(addrs, func(i, j int) bool { return lessAddr(addrs[i], addrs[j]) })
		keys := make([]lang.Key, len(addrs))
		vals := make([]cty.Value, len(addrs))
		for i, ad := range addrs {
			keys[i], vals[i] = ad.Key, a.live[ad.String()]
		}
		return resourceValue(rb, keys, vals)
	}
	return cty.DynamicVal
}

func (a *applyRun) env() providers.Env {
	e := a.p.Env
	a.pers.View(func(st *state.State) { e.Lineage = st.Lineage })
	e.Lookup = func(addr string) (cty.Value, bool) {
		a.mu.Lock()
		defer a.mu.Unlock()
		v, ok := a.live[addr]
		if ok {
			v, _ = v.UnmarkDeep()
		}
		return v, ok
	}
	e.Reread = a.reread
	return e
}

// reread reads the current object of addr again and records the value it
// reads (providers.Env.Reread); the instance keeps its status and private
// data.
func (a *applyRun) reread(ctx context.Context, addr string) error {
	in, err := lang.ParseInstance(addr)
	if err != nil {
		return err
	}
	rb := a.p.Config.Resource(in.Resource)
	if rb == nil {
		return fmt.Errorf("%s is not in the configuration", addr)
	}
	var cur state.Resource
	found := false
	a.pers.View(func(st *state.State) {
		if r := st.Find(addr); r != nil {
			cur, found = *r, true
		}
	})
	a.mu.Lock()
	v, live := a.live[addr]
	a.mu.Unlock()
	if !found || !live || cur.Status != state.StatusReady {
		return fmt.Errorf("%s is not in state as applied", addr)
	}
	_, res, err := a.p.Providers.For(in.Resource.Kind, cur.Provider)
	if err != nil {
		return err
	}
	unmarked, marks := v.UnmarkDeepWithPaths()
	got, err := res.Read(ctx, providers.ReadRequest{Address: addr, Current: unmarked, Private: cur.Private, Env: withProviderConfig(a.env(), cur.ProviderConfig)})
	if err != nil {
		return fmt.Errorf("reading %s again: %w", addr, err)
	}
	if got.IsNull() {
		return fmt.Errorf("reading %s again: it is gone", addr)
	}
	ty := rb.Schema.StateType()
	if !conforms(got, ty) {
		return fmt.Errorf("reading %s again: the provider returned a value of the wrong type", addr)
	}
	got = markSensitive(got.MarkWithPaths(marks), rb.Schema.Sensitive)
	attrs, paths, err := encodeInstance(got, ty)
	if err != nil {
		return fmt.Errorf("encoding state: %w", err)
	}
	a.setLive(in, got)
	a.pers.Update(func(st *state.State) {
		if r := st.Find(addr); r != nil {
			nr := *r
			nr.Attributes, nr.SensitiveAttributes = attrs, paths
			st.Put(&nr)
		}
	}, nil)
	return a.pers.Flush()
}

func (a *applyRun) fail(c *ResourceChange, act Action, err error) error {
	return a.failAt(c, c.DisplayAddress(), act, err)
}

// failAt is fail for an object shown under another name (a deposed object).
func (a *applyRun) failAt(c *ResourceChange, shown string, act Action, err error) error {
	a.hooks.Failed(shown, act, err)
	var subj *hcl.Range
	if rb := a.p.Config.Resource(c.Addr.Resource); rb != nil {
		subj = rb.DeclRange.Ptr()
	}
	a.mu.Lock()
	a.diags = append(a.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("%s: %s failed", shown, act), Detail: err.Error(), Subject: subj})
	a.mu.Unlock()
	return err
}

func (a *applyRun) destroy(ctx context.Context, c *ResourceChange) error {
	start := time.Now()
	key := c.DeposedKey
	if c.Action == CreateThenDelete {
		a.mu.Lock()
		key = a.deposed[c.Address()]
		a.mu.Unlock()
	}
	shown := c.DisplayAddress()
	if key != "" {
		shown = c.Address() + " (deposed object " + key + ")"
	}
	a.hooks.Start(shown, Delete)
	_, res, err := a.p.Providers.For(c.Addr.Resource.Kind, c.Provider)
	if err != nil {
		return a.failAt(c, shown, Delete, err)
	}
	cur, _ := c.Before.UnmarkDeep()
	if err := res.Delete(ctx, providers.DeleteRequest{Address: c.Address(), Current: cur, Private: c.PriorPrivate, Env: withProviderConfig(a.env(), c.PriorProviderConfig)}); err != nil {
		// A deposed object stays in state as deposed: the next plan shows
		// it and the next apply deletes it.
		return a.failAt(c, shown, Delete, err)
	}
	if key != "" {
		// The address's current object is another one; only the deposed
		// object went away.
		a.pers.Update(func(st *state.State) { st.RemoveDeposed(c.Address(), key) }, func() {
			a.hooks.Done(shown, Delete, time.Since(start), "")
		})
		if c.Action == Delete {
			a.mu.Lock()
			a.res.Destroyed++
			a.mu.Unlock()
		}
		return nil
	}
	if c.Action == CreateThenDelete {
		// The replacement holds the address; the old object was not in
		// state to depose (nothing to remove).
		a.hooks.Done(shown, Delete, time.Since(start), "deposed object")
		return nil
	}
	a.dropLive(c.Addr)
	durable := make(chan struct{})
	a.pers.Update(func(st *state.State) { st.Remove(c.Address()) }, func() {
		a.hooks.Done(c.Address(), Delete, time.Since(start), "")
		close(durable)
	})
	a.mu.Lock()
	if c.Action == Delete {
		a.res.Destroyed++
	}
	a.mu.Unlock()
	awaitDurable(ctx, durable)
	return nil
}

func (a *applyRun) apply(ctx context.Context, c *ResourceChange) error {
	start := time.Now()
	act := c.Action
	if act.IsReplace() {
		act = Create
	}
	a.hooks.Start(c.Address(), act)
	rb := a.p.Config.Resource(c.Addr.Resource)
	if rb == nil {
		return a.fail(c, act, fmt.Errorf("%s is no longer in the configuration", c.Addr.Resource))
	}
	// Evaluate the arguments again: values unknown at plan time are known now.
	refs := a.p.Config.ResourceEvalRefs(rb)
	kd := keyData(rb, c.Addr.Key, a.p.Scope, refs, a.lookup)
	cfgVal, d := a.p.Scope.DecodeResource(rb, a.p.Scope.EvalContext(refs, a.lookup, kd))
	if d.HasErrors() {
		a.mu.Lock()
		a.diags = append(a.diags, d...)
		a.mu.Unlock()
		return a.fail(c, act, errors.New("invalid arguments"))
	}
	_, res, err := a.p.Providers.For(c.Addr.Resource.Kind, c.Provider)
	if err != nil {
		return a.fail(c, act, err)
	}
	prior := cty.NullVal(c.Type)
	if act == Update {
		prior = c.Before
	}
	ignoring := !prior.IsNull() && (rb.Lifecycle.IgnoreAll || len(rb.Lifecycle.IgnoreChanges) > 0)
	if ignoring {
		cfgVal = ignoreChanges(cfgVal, prior, rb.Lifecycle)
	}
	// UnmarkDeepWithPaths rebuilds a value: only where marks can be.
	cfgUnmarked, cfgMarks := cfgVal, []cty.PathValueMarks(nil)
	if ignoring || rb.MayBeMarked() {
		cfgUnmarked, cfgMarks = cfgVal.UnmarkDeepWithPaths()
	}
	priorUnmarked, priorMarks := prior, []cty.PathValueMarks(nil)
	if !prior.IsNull() {
		priorUnmarked, priorMarks = prior.UnmarkDeepWithPaths()
	}
	env := withProviderConfig(a.env(), rb.Provider)
	env.Log = func(format string, args ...any) { a.hooks.Log(c.Address(), fmt.Sprintf(format, args...)) }
	flushProgress := func() {}
	if env.Progress != nil && !env.ProgressTTY {
		// Plain progress lines, each prefixed with the address like every
		// other apply line.
		lw := &lineWriter{emit: func(line string) { a.hooks.Log(c.Address(), line) }}
		defer lw.Flush()
		env.Progress = lw
		flushProgress = lw.Flush
	}
	resp, err := res.Plan(ctx, providers.PlanRequest{Address: c.Address(), Prior: priorUnmarked, Config: cfgUnmarked, Env: env})
	if err != nil {
		return a.fail(c, act, err)
	}
	if err := consistent(c.After, resp.Planned); err != nil {
		return a.fail(c, act, fmt.Errorf("%w; the plan is stale: run plan again", err))
	}
	private := resp.Private
	if private == nil {
		private = c.Private
	}
	if c.Action == CreateThenDelete {
		// The old object is deposed, durably, before its replacement is
		// created: whatever happens next, state still knows it exists.
		if err := a.depose(c); err != nil {
			return a.fail(c, act, err)
		}
	}
	// running is the value recorded while the instance is in progress,
	// built only when needed: most instances of a large apply are quick
	// ones that never record it.
	running := func() cty.Value { return setAttr(unknownAsNull(resp.Planned), "id", cty.StringVal(c.Address())) }
	if isResumable(res) {
		// Long operations are marked in state first, so an interrupted run
		// is found (and resumed) by the next plan.
		a.record(c, running(), cfgMarks, priorMarks, state.StatusRunning, private, nil)
	}
	var recMu sync.Mutex
	record := func(ctx context.Context, b []byte) error {
		recMu.Lock()
		private = append([]byte(nil), b...)
		recMu.Unlock()
		a.record(c, running(), cfgMarks, priorMarks, state.StatusRunning, b, nil)
		if err := a.pers.Flush(); err != nil {
			return fmt.Errorf("recording %s in state: %w", c.Address(), err)
		}
		return ctx.Err()
	}
	newVal, err := res.Apply(ctx, providers.ApplyRequest{Address: c.Address(), Prior: priorUnmarked, Planned: resp.Planned, Private: private, Record: record, Env: env})
	recMu.Lock()
	final := private
	recMu.Unlock()
	if err != nil {
		interrupted := ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, providers.ErrLeftRunning)
		resumable := isResumable(res)
		partial := newVal != cty.NilVal && !newVal.IsNull() && conforms(newVal, c.Type)
		switch {
		case interrupted && resumable:
			// Leave it marked running: the next apply resumes it.
		case act == Update:
			// The object is as it was before this change.
			if resumable {
				a.record(c, priorUnmarked, cfgMarks, priorMarks, state.StatusReady, c.PriorPrivate, nil)
			}
		case c.Action == CreateThenDelete && !interrupted && !partial:
			// Nothing was created: the old object holds its address again.
			a.restoreDeposed(c)
		case act == Create:
			v := resp.Planned
			if partial {
				v = newVal
			}
			v = setAttr(unknownAsNull(v), "id", cty.StringVal(c.Address()))
			a.record(c, v, cfgMarks, priorMarks, state.StatusTainted, final, nil)
		}
		return a.fail(c, act, err)
	}
	if newVal.IsNull() || !conforms(newVal, c.Type) {
		return a.fail(c, act, fmt.Errorf("provider returned a value of the wrong type"))
	}
	newVal = setAttr(newVal, "id", cty.StringVal(c.Address()))
	flushProgress() // the operation's last progress line before its "complete"
	durable := make(chan struct{})
	recorded := a.record(c, newVal, cfgMarks, priorMarks, state.StatusReady, final, func(summary string) {
		a.hooks.Done(c.Address(), act, time.Since(start), summary)
		close(durable)
	})
	a.mu.Lock()
	switch c.Action {
	case Create, DeleteThenCreate, CreateThenDelete:
		a.res.Added++
		if c.Action.IsReplace() {
			a.res.Destroyed++
		}
	case Update:
		a.res.Changed++
	}
	a.mu.Unlock()
	if recorded {
		awaitDurable(ctx, durable)
	}
	return nil
}

// record stores an instance in the live state; done (may be nil) runs once
// durable. It reports whether the instance was recorded (done will run).
func (a *applyRun) record(c *ResourceChange, v cty.Value, cfgMarks, priorMarks []cty.PathValueMarks, status string, private []byte, done func(summary string)) bool {
	rb := a.p.Config.Resource(c.Addr.Resource)
	v = v.MarkWithPaths(cfgMarks)
	v = v.MarkWithPaths(priorMarks)
	v = markSensitive(v, rb.Schema.Sensitive)
	v = markDerived(v, rb.Schema, cfgMarks)
	attrs, paths, err := encodeInstance(v, c.Type)
	if err != nil {
		a.fail(c, c.Action, fmt.Errorf("encoding state: %w", err))
		return false
	}
	if status == state.StatusReady {
		a.setLive(c.Addr, v)
	}
	refs, _ := a.p.Config.ResourceRefs(rb)
	deps := a.p.dependencies(refs)
	r := &state.Resource{
		Address: c.Address(), Kind: c.Addr.Resource.Kind, Name: c.Addr.Resource.Name, Index: lang.KeyJSON(c.Addr.Key),
		Provider: c.Provider, Status: status, Attributes: attrs, SensitiveAttributes: paths, Dependencies: deps,
		SchemaVersion: rb.Schema.Version, Private: private, ProviderConfig: rb.Provider,
	}
	var onDurable func()
	if done != nil {
		summary := summarize(v)
		onDurable = func() { done(summary) }
	}
	a.pers.Update(func(st *state.State) { st.Put(r) }, onDurable)
	return true
}

func isResumable(res providers.Resource) bool {
	r, ok := res.(providers.Resumable)
	return ok && r.Resumable()
}

// depose moves the current object of a create_before_destroy replacement to
// the state's deposed objects and waits until that is on disk.
func (a *applyRun) depose(c *ResourceChange) error {
	key := ""
	a.pers.Update(func(st *state.State) {
		if r := st.Find(c.Address()); r != nil {
			key = st.AddDeposed(r)
			st.Remove(c.Address())
		}
	}, nil)
	if err := a.pers.Flush(); err != nil {
		return fmt.Errorf("recording the old object as deposed: %w", err)
	}
	a.mu.Lock()
	a.deposed[c.Address()] = key
	a.mu.Unlock()
	return nil
}

// restoreDeposed undoes depose when the replacement created nothing.
func (a *applyRun) restoreDeposed(c *ResourceChange) {
	a.mu.Lock()
	key := a.deposed[c.Address()]
	delete(a.deposed, c.Address())
	a.mu.Unlock()
	if key == "" {
		return
	}
	a.pers.Update(func(st *state.State) {
		// The address holds nothing, or this apply's own running mark of
		// the replacement (a Resumable kind), which made nothing.
		cur := st.Find(c.Address())
		if d := st.FindDeposed(c.Address(), key); d != nil && (cur == nil || cur.Status == state.StatusRunning) {
			r := d.Resource
			st.RemoveDeposed(c.Address(), key)
			st.Put(&r)
		}
	}, nil)
}

// summarize gives the short "[digest=...]" shown when an apply step completes.
func summarize(v cty.Value) string {
	for _, name := range []string{"digest", "model", "url", "instance_type"} {
		if !v.Type().HasAttribute(name) {
			continue
		}
		a := v.GetAttr(name)
		if a.IsMarked() || a.IsNull() || !a.IsKnown() || a.Type() != cty.String {
			continue
		}
		s := a.AsString()
		if len(s) > 19 {
			s = s[:19] + "…"
		}
		return name + "=" + s
	}
	return ""
}

func keyData(rb *lang.ResourceBlock, key lang.Key, s *lang.Scope, refs []lang.Reference, lookup lang.Lookup) *lang.KeyData {
	switch k := key.(type) {
	case lang.IntKey:
		return &lang.KeyData{CountIndex: k.Value()}
	case lang.StringKey:
		keys, kds, d := s.Expand(rb, s.EvalContext(refs, lookup, nil))
		if !d.HasErrors() {
			for i, kk := range keys {
				if kk == key {
					return kds[i]
				}
			}
		}
		return &lang.KeyData{EachKey: k.Value(), EachValue: cty.DynamicVal}
	}
	return nil
}

// consistent checks that what the plan knew still holds at apply time.
func consistent(planned, now cty.Value) error {
	planned, _ = planned.UnmarkDeep()
	if planned.IsNull() || !planned.IsKnown() || now.IsNull() || !now.IsKnown() {
		return nil
	}
	var diffs []string
	for name, pv := range planned.AsValueMap() {
		if !pv.IsWhollyKnown() || name == "id" {
			continue
		}
		nv := now.GetAttr(name)
		if !nv.IsWhollyKnown() {
			continue
		}
		if !valuesEqual(pv, nv) {
			diffs = append(diffs, name)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		return fmt.Errorf("%s changed between plan and apply", strings.Join(diffs, ", "))
	}
	return nil
}

func (a *applyRun) writeOutputs() {
	outs := map[string]state.Output{}
	for _, o := range a.p.Config.SortedOutputs() {
		refs, _ := a.p.Config.OutputRefs(o)
		v, d := o.Value.Value(a.p.Scope.EvalContext(refs, a.lookup, nil))
		if d.HasErrors() || !v.IsWhollyKnown() {
			continue
		}
		if !o.Sensitive && containsSensitive(v) {
			continue
		}
		val, typ, err := encodeValue(v)
		if err != nil {
			continue
		}
		outs[o.Name] = state.Output{Value: val, Type: typ, Sensitive: o.Sensitive}
	}
	a.pers.Update(func(st *state.State) { st.Outputs = outs }, nil)
}

// lineWriter turns a stream into whole lines.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexAny(string(w.buf), "\r\n")
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(w.buf[:i])); line != "" {
			w.emit(line)
		}
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// Flush emits a last unterminated line.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if line := strings.TrimSpace(string(w.buf)); line != "" {
		w.emit(line)
	}
	w.buf = nil
}
