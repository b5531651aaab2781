package planner_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
	"github.com/leptonml/lepton/providers"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// protoProvider is a provider whose datasets exist only in its memory: it
// checks the protocol (private data, Record, deposed objects, configure and
// close) without doing any work.
type protoProvider struct {
	mu          sync.Mutex
	objects     map[string]string // object id -> address
	next        int
	failDelete  map[string]bool // object ids whose delete fails
	configured  map[string]map[string]string
	closed      bool
	deleted     []string
	recordedIDs []string
	envs        []map[string]string // Env.Providers["aws"] seen by Plan
}

func newProto() *protoProvider {
	return &protoProvider{objects: map[string]string{}, failDelete: map[string]bool{}}
}

func (p *protoProvider) Name() string { return "local" }
func (p *protoProvider) Resource(kind string) (providers.Resource, bool) {
	return &protoResource{p: p, ty: lang.Schemas()[kind].StateType()}, kind == "dataset"
}
func (p *protoProvider) Configure(_ context.Context, req providers.ConfigureRequest) error {
	p.configured = req.Blocks
	return nil
}
func (p *protoProvider) Close() error { p.closed = true; return nil }

type protoResource struct {
	p  *protoProvider
	ty cty.Type
}

// fill builds a value of the kind's state type from the arguments; other
// attributes are unknown when planning, null once applied.
func fill(ty cty.Type, cfg cty.Value, unknown bool) cty.Value {
	attrs := map[string]cty.Value{}
	for name, at := range ty.AttributeTypes() {
		if cfg.Type().IsObjectType() && cfg.Type().HasAttribute(name) {
			if v, err := convert.Convert(cfg.GetAttr(name), at); err == nil {
				attrs[name] = v
				continue
			}
		}
		if unknown && name != "id" {
			attrs[name] = cty.UnknownVal(at)
		} else {
			attrs[name] = cty.NullVal(at)
		}
	}
	return cty.ObjectVal(attrs)
}

func (r *protoResource) Plan(_ context.Context, req providers.PlanRequest) (providers.PlanResponse, error) {
	r.p.mu.Lock()
	r.p.envs = append(r.p.envs, req.Env.Providers["aws"])
	r.p.mu.Unlock()
	if !req.Prior.IsNull() {
		return providers.PlanResponse{Planned: req.Prior, Unchanged: true}, nil
	}
	return providers.PlanResponse{Planned: fill(r.ty, req.Config, true), Private: []byte("planned")}, nil
}

func (r *protoResource) Apply(ctx context.Context, req providers.ApplyRequest) (cty.Value, error) {
	if string(req.Private) != "planned" {
		return cty.NilVal, fmt.Errorf("apply got private %q, want the plan's", req.Private)
	}
	r.p.mu.Lock()
	r.p.next++
	id := fmt.Sprintf("obj-%d", r.p.next)
	r.p.objects[id] = req.Address
	r.p.recordedIDs = append(r.p.recordedIDs, id)
	r.p.mu.Unlock()
	if err := req.Record(ctx, []byte(id)); err != nil {
		return cty.NilVal, err
	}
	return fill(r.ty, req.Planned, false), nil
}

func (r *protoResource) Read(_ context.Context, req providers.ReadRequest) (cty.Value, error) {
	return req.Current, nil
}

func (r *protoResource) Delete(_ context.Context, req providers.DeleteRequest) error {
	id := string(req.Private)
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	if r.p.failDelete[id] {
		return fmt.Errorf("delete of %s refused", id)
	}
	if _, ok := r.p.objects[id]; !ok {
		return fmt.Errorf("no object %q", id)
	}
	delete(r.p.objects, id)
	r.p.deleted = append(r.p.deleted, id)
	return nil
}

const protoConfig = `
provider "aws" {
  region = "us-east-1"
}
provider "aws" {
  alias  = "west"
  region = "us-west-2"
}
dataset "d" {
  provider = aws.west
  source {
    inline = { x = [1, 2, 3], y = [0, 1, 0] }
  }
  lifecycle {
    create_before_destroy = true
  }
}
`

type protoWriter struct {
	mu   sync.Mutex
	last []byte
}

func (w *protoWriter) WriteBytes(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = append(w.last[:0], b...)
	return nil
}

type protoHarness struct {
	t    *testing.T
	prov *protoProvider
	st   *state.State
	p    *planner.Planner
}

func newProtoHarness(t *testing.T) *protoHarness {
	dir := t.TempDir()
	cfg, d := lang.LoadSources(dir, []string{"main.lep.hcl"}, map[string][]byte{"main.lep.hcl": []byte(protoConfig)})
	if d.HasErrors() {
		t.Fatalf("load: %v", d)
	}
	prov := newProto()
	reg := providers.NewRegistry(prov)
	blocks := map[string]map[string]string{"aws": {"region": "us-east-1"}, "aws.west": {"region": "us-west-2"}}
	if err := reg.Configure(context.Background(), providers.ConfigureRequest{Blocks: blocks}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	p := &planner.Planner{Config: cfg, Scope: lang.NewScope(cfg, nil), Providers: reg,
		Env: providers.Env{Dir: dir, DataDir: filepath.Join(dir, ".lepton"), Providers: blocks}}
	return &protoHarness{t: t, prov: prov, st: state.New("test"), p: p}
}

func (h *protoHarness) plan(opts planner.Options) *planner.Plan {
	h.t.Helper()
	opts.Refresh = true
	plan, d := h.p.Plan(context.Background(), h.st, opts)
	if d.HasErrors() {
		h.t.Fatalf("plan: %v", d)
	}
	return plan
}

// apply applies the plan, round-tripped through a saved plan file, and
// reloads state from what was written.
func (h *protoHarness) apply(plan *planner.Plan) (planner.ApplyResult, error) {
	h.t.Helper()
	b, err := plan.Encode("test")
	if err != nil {
		h.t.Fatal(err)
	}
	if plan, err = planner.DecodePlan(b); err != nil {
		h.t.Fatal(err)
	}
	w := &protoWriter{}
	pers := state.NewPersister(w, h.st.Clone())
	res, d := h.p.Apply(context.Background(), plan, pers, planner.ApplyOptions{})
	if err := pers.Close(); err != nil {
		h.t.Fatal(err)
	}
	if len(w.last) > 0 {
		if h.st, err = state.Parse(w.last); err != nil {
			h.t.Fatalf("state written is not valid: %v", err)
		}
	}
	if d.HasErrors() {
		return res, errors.New(d.Error())
	}
	return res, nil
}

func TestProtocolPrivateAndDeposed(t *testing.T) {
	h := newProtoHarness(t)
	if h.prov.configured["aws.west"]["region"] != "us-west-2" {
		t.Fatalf("Configure got %v", h.prov.configured)
	}
	plan := h.plan(planner.Options{})
	if len(plan.Changes) != 1 || plan.Changes[0].Action != planner.Create {
		t.Fatalf("first plan: %+v", plan.Changes)
	}
	if got := h.prov.envs[0]["region"]; got != "us-west-2" {
		t.Errorf("provider = aws.west: Plan saw aws region %q, want us-west-2", got)
	}
	if _, err := h.apply(plan); err != nil {
		t.Fatal(err)
	}
	r := h.st.Find("dataset.d")
	if r == nil || string(r.Private) != "obj-1" || r.ProviderConfig != "aws.west" || r.Status != state.StatusReady {
		t.Fatalf("state after create: %+v", r)
	}

	// Replace under create_before_destroy, with the old object's delete failing:
	// the new object holds the address and the old one stays, deposed.
	h.prov.failDelete["obj-1"] = true
	addr, _ := lang.ParseInstance("dataset.d")
	plan = h.plan(planner.Options{Replace: []lang.Target{{Resource: addr.Resource}}})
	if plan.Changes[0].Action != planner.CreateThenDelete {
		t.Fatalf("replace plan: %v", plan.Changes[0].Action)
	}
	if _, err := h.apply(plan); err == nil || !strings.Contains(err.Error(), "dataset.d (deposed object") {
		t.Fatalf("apply with a failing delete: err = %v, want the deposed object named", err)
	}
	if r := h.st.Find("dataset.d"); r == nil || string(r.Private) != "obj-2" {
		t.Fatalf("current object after the failed delete: %+v", r)
	}
	if len(h.st.Deposed) != 1 || string(h.st.Deposed[0].Private) != "obj-1" || h.st.Deposed[0].ProviderConfig != "aws.west" {
		t.Fatalf("deposed after the failed delete: %+v", h.st.Deposed)
	}

	// The next plan shows the deposed object's delete, in every rendering.
	h.prov.failDelete["obj-1"] = false
	plan = h.plan(planner.Options{})
	var dep *planner.ResourceChange
	for _, c := range plan.Changes {
		if c.DeposedKey != "" {
			dep = c
		}
	}
	if dep == nil || dep.Action != planner.Delete || dep.DeposedKey != h.st.Deposed[0].Key {
		t.Fatalf("plan after the failed delete: %+v", plan.Changes)
	}
	var human strings.Builder
	planner.RenderHuman(&human, plan, planner.Colors{})
	want := "# dataset.d (deposed object " + dep.DeposedKey + ") will be destroyed"
	if !strings.Contains(human.String(), want) || !strings.Contains(human.String(), "0 to add, 0 to change, 1 to destroy") {
		t.Errorf("human plan lacks %q or the count:\n%s", want, human.String())
	}
	if add, change, destroy := plan.Counts(); add != 0 || change != 0 || destroy != 1 {
		t.Errorf("counts %d/%d/%d, want 0/0/1", add, change, destroy)
	}
	res, err := h.apply(plan)
	if err != nil {
		t.Fatal(err)
	}
	if res.Destroyed != 1 || len(h.st.Deposed) != 0 || h.st.Find("dataset.d") == nil {
		t.Fatalf("after deleting the deposed object: %+v, deposed %v", res, h.st.Deposed)
	}
	if strings.Join(h.prov.deleted, ",") != "obj-1" || len(h.prov.objects) != 1 {
		t.Errorf("deleted %v, left %v", h.prov.deleted, h.prov.objects)
	}
	if plan := h.plan(planner.Options{}); plan.HasChanges() {
		t.Errorf("plan after cleanup has changes: %+v", plan.Changes)
	}

	// Destroy deletes the current object with the private data recorded.
	plan = h.plan(planner.Options{Mode: planner.DestroyMode})
	if _, err := h.apply(plan); err != nil {
		t.Fatal(err)
	}
	if len(h.prov.objects) != 0 || len(h.st.Resources) != 0 {
		t.Errorf("after destroy: objects %v, state %v", h.prov.objects, h.st.Resources)
	}
}

func TestSchemaUpgrade(t *testing.T) {
	h := newProtoHarness(t)
	if _, err := h.apply(h.plan(planner.Options{})); err != nil {
		t.Fatal(err)
	}
	h.st.Resources[0].SchemaVersion = lang.Schemas()["dataset"].Version + 1
	if _, d := h.p.Plan(context.Background(), h.st, planner.Options{Refresh: true}); !d.HasErrors() || !strings.Contains(d.Error(), "newer than this lepton knows") {
		t.Errorf("state from a newer schema: %v", d)
	}
}
