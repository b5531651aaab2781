package planner_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
	"github.com/leptonml/lepton/providers"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

func ctyUnmarshal(b []byte, ty cty.Type) (cty.Value, error) { return ctyjson.Unmarshal(b, ty) }

// world is one project under test: a configuration written as HCL, the
// state as the last apply wrote it (through a state.Persister, parsed back
// from the bytes written), and a fake provider holding the real objects.
type world struct {
	t    *testing.T
	dir  string
	fake *fakeProvider
	st   *state.State // nil before the first apply
	vars map[string]cty.Value
	// progress is Env.Progress (not a terminal): nil for none.
	progress io.Writer
	// writes counts the state writes of the last apply.
	writes int
	// writer receives the state the apply in progress writes.
	mu     sync.Mutex
	writer *memWriter
}

// written is the state as the apply in progress last wrote it: what a kill
// at this instant would leave on disk.
func (w *world) written() *state.State {
	w.t.Helper()
	w.mu.Lock()
	mw := w.writer
	w.mu.Unlock()
	mw.mu.Lock()
	defer mw.mu.Unlock()
	st, err := state.Parse(mw.last)
	if err != nil {
		w.t.Fatalf("the state on disk does not parse: %v\n%s", err, mw.last)
	}
	return st
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return &world{t: t, dir: t.TempDir(), fake: newFakeProvider()}
}

// load parses src as the project's only file, main.lep.hcl.
func (w *world) load(src string) (*planner.Planner, hcl.Diagnostics) {
	w.t.Helper()
	cfg, d := lang.LoadSources(w.dir, []string{"main.lep.hcl"}, map[string][]byte{"main.lep.hcl": []byte(src)})
	if d.HasErrors() {
		return nil, d
	}
	vars, d2 := cfg.CheckVariables(w.vars)
	d = append(d, d2...)
	if d.HasErrors() {
		return nil, d
	}
	return &planner.Planner{
		Config:    cfg,
		Scope:     lang.NewScope(cfg, vars),
		Providers: providers.NewRegistry(w.fake),
		Env:       providers.Env{Dir: w.dir, DataDir: filepath.Join(w.dir, ".lepton"), Progress: w.progress},
	}, d
}

func (w *world) planner(src string) *planner.Planner {
	w.t.Helper()
	p, d := w.load(src)
	if d.HasErrors() {
		w.t.Fatalf("loading the configuration: %v", d)
	}
	return p
}

// planDiags plans src against the current state with opts as given (an
// ordinary plan sets Refresh: true, as the CLI does by default).
func (w *world) planDiags(src string, opts planner.Options) (*planner.Plan, hcl.Diagnostics) {
	w.t.Helper()
	p := w.planner(src)
	return p.Plan(context.Background(), w.st, opts)
}

// plan plans with refresh on, and fails the test on errors.
func (w *world) plan(src string, opts planner.Options) *planner.Plan {
	w.t.Helper()
	pl, d := w.planDiags(src, opts)
	if d.HasErrors() {
		w.t.Fatalf("plan: %v", d)
	}
	return pl
}

// memWriter keeps what a persister writes.
type memWriter struct {
	mu     sync.Mutex
	writes int
	last   []byte
}

func (m *memWriter) WriteBytes(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	m.last = append(m.last[:0], b...)
	return nil
}

// applyWith applies pl, made from src, and keeps the state written.
func (w *world) applyWith(ctx context.Context, src string, pl *planner.Plan, opts planner.ApplyOptions) (planner.ApplyResult, hcl.Diagnostics) {
	w.t.Helper()
	p := w.planner(src)
	st := w.st
	if st == nil {
		st = state.New("test")
	} else {
		st = st.Clone()
	}
	mw := &memWriter{}
	w.mu.Lock()
	w.writer = mw
	w.mu.Unlock()
	pers := state.NewPersister(mw, st)
	res, d := p.Apply(ctx, pl, pers, opts)
	if err := pers.Close(); err != nil {
		w.t.Fatalf("closing the persister: %v", err)
	}
	w.writes = mw.writes
	if mw.writes > 0 {
		got, err := state.Parse(mw.last)
		if err != nil {
			w.t.Fatalf("the state written does not parse: %v\n%s", err, mw.last)
		}
		w.st = got
	}
	return res, d
}

// up plans and applies src with refresh on and fails the test on errors.
func (w *world) up(src string) (*planner.Plan, planner.ApplyResult) {
	w.t.Helper()
	pl := w.plan(src, planner.Options{Refresh: true})
	res, d := w.applyWith(context.Background(), src, pl, planner.ApplyOptions{})
	if d.HasErrors() {
		w.t.Fatalf("apply: %v", d)
	}
	return pl, res
}

// actions summarises a plan as "address action" lines, no-ops left out;
// a deposed object's change is "address deposed action".
func actions(pl *planner.Plan) string {
	var out []string
	for _, c := range pl.Changes {
		switch {
		case c.Action == planner.NoOp:
		case c.DeposedKey != "":
			out = append(out, c.Address()+" deposed "+c.Action.String())
		default:
			out = append(out, c.Address()+" "+c.Action.String())
		}
	}
	return strings.Join(out, "\n")
}

func change(t *testing.T, pl *planner.Plan, addr string) *planner.ResourceChange {
	t.Helper()
	for _, c := range pl.Changes {
		if c.Address() == addr {
			return c
		}
	}
	t.Fatalf("the plan has no change for %s:\n%s", addr, actions(pl))
	return nil
}

// addresses lists the state's instances as "address status".
func (w *world) addresses() string {
	if w.st == nil {
		return ""
	}
	var out []string
	for _, r := range w.st.Resources {
		out = append(out, r.Address+" "+r.Status)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// attr reads a string or number attribute of an instance in state, as text.
func (w *world) attr(addr, name string) string {
	w.t.Helper()
	r := w.st.Find(addr)
	if r == nil {
		w.t.Fatalf("%s is not in state:\n%s", addr, w.addresses())
	}
	ty, _ := fakeSchema(r.Kind)
	v, err := ctyUnmarshal(r.Attributes, ty)
	if err != nil {
		w.t.Fatalf("%s: %v", addr, err)
	}
	return valueText(v.GetAttr(name))
}

func valueText(v cty.Value) string {
	v, _ = v.UnmarkDeep()
	switch {
	case v.IsNull():
		return "null"
	case !v.IsKnown():
		return "unknown"
	case v.Type() == cty.String:
		return v.AsString()
	case v.Type() == cty.Number:
		return v.AsBigFloat().Text('g', -1)
	case v.Type() == cty.Bool:
		return fmt.Sprint(v.True())
	}
	return v.GoString()
}

func diagText(d hcl.Diagnostics) string {
	var out []string
	for _, x := range d {
		s := x.Summary + ": " + x.Detail
		if x.Subject != nil {
			s = fmt.Sprintf("%s:%d: %s", x.Subject.Filename, x.Subject.Start.Line, s)
		}
		out = append(out, s)
	}
	return strings.Join(out, "\n")
}

// recHooks records apply progress.
type recHooks struct {
	mu     sync.Mutex
	events []string
}

func (h *recHooks) add(s string) {
	h.mu.Lock()
	h.events = append(h.events, s)
	h.mu.Unlock()
}

func (h *recHooks) Start(addr string, a planner.Action) { h.add("start " + addr + " " + a.String()) }
func (h *recHooks) Done(addr string, a planner.Action, _ time.Duration, summary string) {
	h.add(strings.TrimSpace("done " + addr + " " + a.String() + " " + summary))
}
func (h *recHooks) Failed(addr string, a planner.Action, err error) {
	h.add("failed " + addr + " " + a.String() + ": " + err.Error())
}
func (h *recHooks) Log(addr, line string) { h.add("log " + addr + ": " + line) }

func (h *recHooks) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}
