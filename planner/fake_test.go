package planner_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers"
	"github.com/zclconf/go-cty/cty"
)

// fakeProvider is a provider for planner tests whose "real objects" live in a
// map, as a cloud's would. It is written against providers.Provider and
// providers.Resource only, so that it is the one place to adapt when the
// protocol changes. It records every call, counts how many run at once, and
// can be told to fail a call, to block one until released (or until its
// context ends), and to change or lose an object behind lepton's back.
//
// Its objects behave like a simple cloud resource: arguments are stored as
// given; computed attributes are unknown at plan and filled in at apply; the
// kind's identity attribute (fakeIDAttr: the cloud's own id of the object)
// is fresh for every created object ("ADDRESS#N" for the Nth created at that
// address) and kept by updates, so two objects at one address
// (create_before_destroy) are told apart.
type fakeProvider struct {
	name string

	mu      sync.Mutex
	objects map[string]cty.Value // real objects by their identity
	kinds   map[string]string    // the kind of each object, by identity
	created map[string]int       // objects created per address
	calls   []fakeCall
	// running and maxRunning count provider calls in progress (all ops).
	running, maxRunning int
	counts              map[string]int // calls per op
	failures            []*fakeFailure
	gates               []*fakeGate

	// forceNew lists, per kind, the arguments that cannot change in place.
	forceNew map[string][]string
	// readsCurrent and argsDetermined switch on the optional interfaces
	// (providers.CurrentReader, providers.ArgsDetermined) per kind.
	readsCurrent, argsDetermined map[string]bool
	// price per hour the plan quotes, per kind.
	price map[string]float64
	// orphans enables providers.OrphanFinder: objects not in state are reported.
	orphans bool
	// onApply runs, by address, inside Apply before the object is made (a
	// training that changes its cluster's real object).
	onApply map[string]func(context.Context, providers.ApplyRequest) error
}

// fakeIDAttr is, per kind, the computed string attribute that holds the
// object's identity in the fake cloud.
var fakeIDAttr = map[string]string{
	"cluster":         "zone",
	"training":        "model",
	"endpoint":        "url",
	"batch_inference": "digest",
	"dataset":         "digest",
}

// fakeSchema is the kind's state type and its computed attributes (those the
// provider fills in). Kind schemas move out of lang: adapt here.
func fakeSchema(kind string) (cty.Type, map[string]cty.Type) {
	s := lang.Schemas()[kind]
	return s.StateType(), s.Computed
}

type fakeCall struct {
	Op   string // plan, apply, read, delete
	Addr string
	// Obj is the identity of the object the call acted on ("" when none:
	// a plan, a read of a gone object).
	Obj string
}

func (c fakeCall) String() string {
	if c.Obj == "" {
		return c.Op + " " + c.Addr
	}
	return c.Op + " " + c.Obj
}

type fakeFailure struct {
	op, addr string
	err      error
	times    int // 0: every time
	// partial: a failed apply still made an object, returned as the partial
	// value (a create that did not become ready).
	partial bool
}

// fakeGate holds calls of one op (and address, or every address for "") until
// released by Release or by the call's context ending.
type fakeGate struct {
	op, addr string
	entered  chan string   // receives the address of each call that reached the gate
	tokens   chan struct{} // each token lets one held call go on
	open     chan struct{} // closed: every call goes on
	once     sync.Once
}

func newFakeProvider() *fakeProvider {
	return &fakeProvider{
		name:           "fake",
		objects:        map[string]cty.Value{},
		kinds:          map[string]string{},
		created:        map[string]int{},
		counts:         map[string]int{},
		forceNew:       map[string][]string{"cluster": {"gpu"}},
		readsCurrent:   map[string]bool{},
		argsDetermined: map[string]bool{},
		price:          map[string]float64{"cluster": 1.5},
	}
}

func (f *fakeProvider) Name() string { return f.name }

func (f *fakeProvider) Configure(context.Context, providers.ConfigureRequest) error { return nil }

func (f *fakeProvider) Close() error { return nil }

func (f *fakeProvider) Resource(kind string) (providers.Resource, bool) {
	if _, ok := fakeIDAttr[kind]; !ok {
		return nil, false
	}
	base := &fakeResource{f: f, kind: kind}
	switch {
	case f.readsCurrent[kind] && f.argsDetermined[kind]:
		return fakeArgsCurrent{base}, true
	case f.readsCurrent[kind]:
		return fakeCurrentReader{base}, true
	case f.argsDetermined[kind]:
		return fakeArgsDetermined{base}, true
	case f.orphans:
		return fakeOrphanFinder{base}, true
	}
	return base, true
}

// fail makes the next times calls of op on addr fail with err (times 0:
// every call).
func (f *fakeProvider) fail(op, addr string, times int, err error) *fakeFailure {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := &fakeFailure{op: op, addr: addr, err: err, times: times}
	f.failures = append(f.failures, fl)
	return fl
}

// gate holds every call of op on addr ("" for any address) until released.
func (f *fakeProvider) gate(op, addr string) *fakeGate {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := &fakeGate{op: op, addr: addr, entered: make(chan string, 1000), tokens: make(chan struct{}, 1000), open: make(chan struct{})}
	f.gates = append(f.gates, g)
	return g
}

// Release lets n held calls go on.
func (g *fakeGate) Release(n int) {
	for range n {
		g.tokens <- struct{}{}
	}
}

// Open lets every call go on, now and later.
func (g *fakeGate) Open() { g.once.Do(func() { close(g.open) }) }

// enter records a call and applies failures and gates; it returns the
// failure to report, or nil. done must be called when the call ends.
func (f *fakeProvider) enter(ctx context.Context, op, addr string) (fl *fakeFailure, done func()) {
	return f.enterThen(ctx, op, addr, nil)
}

// enterThen is enter with a step that runs before a gate holds the call (a
// long Apply records its job id first); its error fails the call.
func (f *fakeProvider) enterThen(ctx context.Context, op, addr string, before func() error) (fl *fakeFailure, done func()) {
	f.mu.Lock()
	f.counts[op]++
	f.running++
	f.maxRunning = max(f.maxRunning, f.running)
	var gate *fakeGate
	for _, g := range f.gates {
		if g.op == op && (g.addr == "" || g.addr == addr) {
			gate = g
		}
	}
	for _, x := range f.failures {
		if x.op == op && (x.addr == "" || x.addr == addr) && x.times >= 0 {
			fl = x
			if x.times > 0 {
				x.times--
				if x.times == 0 {
					x.times = -1 // used up
				}
			}
			break
		}
	}
	f.mu.Unlock()
	done = func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}
	if before != nil {
		if err := before(); err != nil {
			return &fakeFailure{err: err}, done
		}
	}
	if gate != nil {
		gate.entered <- addr
		select {
		case <-gate.tokens:
		case <-gate.open:
		case <-ctx.Done():
			return &fakeFailure{err: ctx.Err()}, done
		}
	}
	return fl, done
}

func (f *fakeProvider) record(op, addr, obj string) {
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{Op: op, Addr: addr, Obj: obj})
	f.mu.Unlock()
}

// callsOf lists the recorded calls of the given ops ("" for all), in order.
func (f *fakeProvider) callsOf(ops ...string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		for _, op := range ops {
			if op == "" || c.Op == op {
				out = append(out, c.String())
				break
			}
		}
	}
	return out
}

func (f *fakeProvider) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// reset forgets the recorded calls and counters (not the objects).
func (f *fakeProvider) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.counts, f.maxRunning = nil, map[string]int{}, 0
	f.failures, f.gates = nil, nil
}

// objectsAt lists the identities of the real objects at an address, sorted.
func (f *fakeProvider) objectsAt(addr string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id, v := range f.objects {
		if v.GetAttr("id").AsString() == addr {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// object returns the one real object at addr.
func (f *fakeProvider) object(addr string) (cty.Value, bool) {
	ids := f.objectsAt(addr)
	if len(ids) != 1 {
		return cty.NilVal, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.objects[ids[0]], true
}

// drift changes attributes of the objects at addr outside lepton.
func (f *fakeProvider) drift(addr string, attrs map[string]cty.Value) {
	for _, id := range f.objectsAt(addr) {
		f.mu.Lock()
		m := f.objects[id].AsValueMap()
		for k, v := range attrs {
			m[k] = v
		}
		f.objects[id] = cty.ObjectVal(m)
		f.mu.Unlock()
	}
}

// vanish deletes the objects at addr outside lepton.
func (f *fakeProvider) vanish(addr string) {
	for _, id := range f.objectsAt(addr) {
		f.mu.Lock()
		delete(f.objects, id)
		f.mu.Unlock()
	}
}

type fakeResource struct {
	f    *fakeProvider
	kind string
}

func (r *fakeResource) idOf(v cty.Value) string {
	if v.IsNull() || !v.IsKnown() {
		return ""
	}
	id := v.GetAttr(fakeIDAttr[r.kind])
	if id.IsNull() || !id.IsKnown() {
		return ""
	}
	return id.AsString()
}

// Resumable: every kind but datasets is marked running while it applies,
// as the local provider's are.
func (r *fakeResource) Resumable() bool { return r.kind != "dataset" }

func (r *fakeResource) Plan(ctx context.Context, req providers.PlanRequest) (providers.PlanResponse, error) {
	fl, done := r.f.enter(ctx, "plan", req.Address)
	defer done()
	r.f.record("plan", req.Address, "")
	if fl != nil {
		return providers.PlanResponse{}, fl.err
	}
	planned := fakePlanned(r.kind, req.Config, req.Prior)
	resp := providers.PlanResponse{Planned: planned, PricePerHour: r.f.price[r.kind]}
	if strings.HasPrefix(string(req.PriorPrivate), "obj:") && req.Prior.IsNull() {
		// Private data without a prior: an interrupted create, which apply
		// resumes (finds the object recorded) instead of making another.
		resp.Private = req.PriorPrivate
	}
	if !req.Prior.IsNull() {
		for _, name := range r.f.forceNew[r.kind] {
			if !planned.GetAttr(name).RawEquals(req.Prior.GetAttr(name)) {
				resp.RequiresReplace = append(resp.RequiresReplace, cty.GetAttrPath(name))
			}
		}
		resp.Unchanged = planned.RawEquals(req.Prior)
		if len(resp.RequiresReplace) > 0 {
			// A replacement is a new object: as real providers do, plan it
			// as one (computed attributes unknown again).
			ty, _ := fakeSchema(r.kind)
			resp.Planned = fakePlanned(r.kind, req.Config, cty.NullVal(ty))
		}
	}
	if r.kind == "cluster" {
		resp.Detail = []string{"offer: fake/" + req.Address}
	}
	return resp, nil
}

// fakePlanned is the planned value: arguments as configured, computed
// attributes kept from the prior object or unknown for a new one.
func fakePlanned(kind string, config, prior cty.Value) cty.Value {
	ty, computed := fakeSchema(kind)
	cfg := config.AsValueMap()
	out := map[string]cty.Value{}
	for name, aty := range ty.AttributeTypes() {
		cv, isArg := cfg[name]
		_, isComputed := computed[name]
		switch {
		case isArg && !cv.IsNull():
			out[name] = cv
		case !isComputed && name != "id":
			out[name] = cty.NullVal(aty)
			if isArg {
				out[name] = cty.NullVal(cv.Type())
			}
		case !prior.IsNull():
			out[name] = prior.GetAttr(name)
		default:
			out[name] = cty.UnknownVal(aty)
		}
	}
	return cty.ObjectVal(out)
}

// Apply creates or updates the object. A create first records the new
// object's identity as private data ("obj:ID"), before it can be held or
// fail, as a long create records its job id; given that private data back
// (an interrupted create planned again), it resumes that object instead of
// making another.
func (r *fakeResource) Apply(ctx context.Context, req providers.ApplyRequest) (cty.Value, error) {
	id := r.idOf(req.Prior)
	fl, done := r.f.enterThen(ctx, "apply", req.Address, func() error {
		if id != "" {
			return nil
		}
		if p := string(req.Private); strings.HasPrefix(p, "obj:") {
			id = strings.TrimPrefix(p, "obj:")
			return nil
		}
		r.f.mu.Lock()
		r.f.created[req.Address]++
		id = fmt.Sprintf("%s#%d", req.Address, r.f.created[req.Address])
		r.f.mu.Unlock()
		return req.Record(ctx, []byte("obj:"+id))
	})
	defer done()
	if req.Env.Log != nil {
		req.Env.Log("applying %s", req.Address)
	}
	if req.Env.Progress != nil {
		fmt.Fprintf(req.Env.Progress, "progress of %s\nhalf", req.Address)
	}
	if fl != nil && !fl.partial {
		r.f.record("apply", req.Address, "")
		return cty.NilVal, fl.err
	}
	if h := r.f.onApply[req.Address]; h != nil {
		if err := h(ctx, req); err != nil {
			return cty.NilVal, err
		}
	}
	// Fill in what only apply knows.
	m := req.Planned.AsValueMap()
	for name, v := range m {
		switch {
		case name == fakeIDAttr[r.kind]:
			m[name] = cty.StringVal(id)
		case v.IsKnown():
		case name == "price_per_hour":
			m[name] = cty.NumberFloatVal(r.f.price[r.kind])
		case v.Type() == cty.String:
			m[name] = cty.StringVal("fake-" + name)
		case v.Type() == cty.Number:
			m[name] = cty.NumberIntVal(1)
		case v.Type() == cty.Bool:
			m[name] = cty.False
		case v.Type().IsListType():
			m[name] = cty.ListVal([]cty.Value{cty.StringVal(id)})
		case v.Type().IsMapType():
			m[name] = cty.MapValEmpty(v.Type().ElementType())
		default:
			m[name] = cty.NullVal(v.Type())
		}
	}
	m["id"] = cty.StringVal(req.Address)
	v := cty.ObjectVal(m)
	r.f.mu.Lock()
	r.f.objects[id] = v
	r.f.kinds[id] = r.kind
	r.f.mu.Unlock()
	r.f.record("apply", req.Address, id)
	if fl != nil {
		return v, fl.err
	}
	return v, nil
}

func (r *fakeResource) Read(ctx context.Context, req providers.ReadRequest) (cty.Value, error) {
	fl, done := r.f.enter(ctx, "read", req.Address)
	defer done()
	id := r.idOf(req.Current)
	r.f.record("read", req.Address, id)
	if fl != nil {
		return cty.NilVal, fl.err
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	v, ok := r.f.objects[id]
	if !ok {
		ty, _ := fakeSchema(r.kind)
		return cty.NullVal(ty), nil
	}
	return v, nil
}

func (r *fakeResource) Delete(ctx context.Context, req providers.DeleteRequest) error {
	fl, done := r.f.enter(ctx, "delete", req.Address)
	defer done()
	id := r.idOf(req.Current)
	r.f.record("delete", req.Address, id)
	if fl != nil {
		return fl.err
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	// A delete of an object already gone succeeds, as a cloud's "not
	// found" does for a well-behaved provider.
	delete(r.f.objects, id)
	return nil
}

// The optional interfaces, each on its own type so that a test switches on
// exactly one.
type fakeCurrentReader struct{ *fakeResource }

func (fakeCurrentReader) ReadsCurrent() bool { return true }

type fakeArgsDetermined struct{ *fakeResource }

func (fakeArgsDetermined) DeterminedByArgs(cty.Value) bool { return true }

type fakeArgsCurrent struct{ *fakeResource }

func (fakeArgsCurrent) ReadsCurrent() bool              { return true }
func (fakeArgsCurrent) DeterminedByArgs(cty.Value) bool { return true }

type fakeOrphanFinder struct{ *fakeResource }

func (o fakeOrphanFinder) FindOrphans(ctx context.Context, req providers.OrphansRequest) ([]string, error) {
	o.f.mu.Lock()
	defer o.f.mu.Unlock()
	known := map[string]bool{}
	for _, v := range req.Instances {
		known[o.idOf(v)] = true
	}
	var out []string
	for id, v := range o.f.objects {
		if !known[id] && o.f.kinds[id] == o.kind {
			out = append(out, id+" ("+v.GetAttr("id").AsString()+")")
		}
	}
	sort.Strings(out)
	return out, nil
}
