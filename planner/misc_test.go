package planner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/planner"
	"github.com/zclconf/go-cty/cty"
)

// TestHooks: apply reports each step to the hooks, with the provider's log
// and progress lines prefixed by nothing but the address, and Done only once
// the state holding the change is written.
func TestHooks(t *testing.T) {
	w := newWorld(t)
	var progress bytes.Buffer
	w.progress = &progress
	w.up(clusterT4)
	pl := w.plan(clusterA100, planner.Options{Refresh: true})
	hooks := &recHooks{}
	if _, d := w.applyWith(context.Background(), clusterA100, pl, planner.ApplyOptions{Hooks: hooks}); d.HasErrors() {
		t.Fatal(d)
	}
	want := []string{
		"start cluster.a delete",
		"done cluster.a delete",
		"start cluster.a create",
		"log cluster.a: applying cluster.a",
		"log cluster.a: progress of cluster.a",
		"log cluster.a: half",
		"done cluster.a create instance_type=fake-instance_type",
	}
	// Done waits for the state write, so the delete's Done may come after
	// the create starts: compare the order of the create's own events and
	// that each event came once.
	got := hooks.list()
	pos := map[string]int{}
	for i, e := range got {
		pos[e] = i + 1
	}
	for i, e := range want {
		if pos[e] == 0 {
			t.Errorf("no hook event %q", e)
		} else if i > 0 && e != "done cluster.a delete" && want[i-1] != "done cluster.a delete" && pos[e] < pos[want[i-1]] {
			t.Errorf("hook event %q came before %q", e, want[i-1])
		}
	}
	if len(got) != len(want) || pos["done cluster.a delete"] < pos["start cluster.a delete"] {
		t.Errorf("hooks:\n%s\nwant (in about this order):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if progress.Len() != 0 {
		t.Errorf("plain progress went to the terminal writer: %q", progress.String())
	}
}

// TestLocalsAndReferences: locals are evaluated in the plan and again at
// apply, where values known only after apply (a zone) flow through them.
func TestLocalsAndReferences(t *testing.T) {
	const src = `
locals {
  prefix = "img-"
  image  = "${local.prefix}${cluster.a.zone}"
}

cluster "a" {
  nodes = 1
}

cluster "b" {
  image = local.image
}

cluster "c" {
  for_each = { one = 1, two = 2 }
  nodes    = each.value
  image    = cluster.a.zone
}

cluster "d" {
  count = length(cluster.c)
  image = cluster.c["one"].zone
}

output "images" {
  value = [for k, c in cluster.c : c.image]
}
`
	w := newWorld(t)
	pl := w.plan(src, planner.Options{Refresh: true})
	if b := change(t, pl, "cluster.b"); b.After.GetAttr("image").IsKnown() {
		t.Errorf("cluster.b.image is known at plan time: %#v", b.After.GetAttr("image"))
	}
	if _, d := w.applyWith(context.Background(), src, pl, planner.ApplyOptions{}); d.HasErrors() {
		t.Fatal(d)
	}
	for addr, want := range map[string]string{
		"cluster.b":        "img-cluster.a#1",
		`cluster.c["two"]`: "cluster.a#1",
		"cluster.d[1]":     `cluster.c["one"]#1`,
	} {
		if got := w.attr(addr, "image"); got != want {
			t.Errorf("%s.image = %s, want %s", addr, got, want)
		}
	}
	var images bytes.Buffer
	if err := json.Compact(&images, w.st.Outputs["images"].Value); err != nil || images.String() != `["cluster.a#1","cluster.a#1"]` {
		t.Errorf("output images = %s (%v)", w.st.Outputs["images"].Value, err)
	}
	if again := actions(w.plan(src, planner.Options{Refresh: true})); again != "" {
		t.Errorf("second plan:\n%s", again)
	}
	// The dependencies recorded in state are the resources referred to,
	// directly or through locals.
	for addr, want := range map[string]string{"cluster.d[0]": "cluster.c", "cluster.b": "cluster.a", `cluster.c["one"]`: "cluster.a", "cluster.a": ""} {
		if deps := w.st.Find(addr).Dependencies; strings.Join(deps, ",") != want {
			t.Errorf("%s depends on %v, want %s", addr, deps, want)
		}
	}
	// So a destroy deletes cluster.b, which reads cluster.a through a
	// local, before cluster.a.
	dpl := w.plan(src, planner.Options{Refresh: true, Mode: planner.DestroyMode})
	w.fake.reset()
	if _, d := w.applyWith(context.Background(), src, dpl, planner.ApplyOptions{Parallelism: 10}); d.HasErrors() {
		t.Fatal(d)
	}
	order := strings.Join(w.fake.callsOf("delete"), ",")
	if strings.Index(order, "delete cluster.b#1") > strings.Index(order, "delete cluster.a#1") {
		t.Errorf("destroy order %s: cluster.b must go before cluster.a", order)
	}

	dot, d := w.planner(src).Graph()
	if d.HasErrors() {
		t.Fatal(d)
	}
	for _, edge := range []string{`"cluster.b" -> "local.image"`, `"local.image" -> "cluster.a"`, `"local.image" -> "local.prefix"`, `"cluster.d" -> "cluster.c"`, `"output.images" -> "cluster.c"`} {
		if !strings.Contains(dot, edge) {
			t.Errorf("graph has no edge %s:\n%s", edge, dot)
		}
	}

	t.Run("an invalid local is an error at its line", func(t *testing.T) {
		w := newWorld(t)
		_, d := w.planDiags("locals {\n  x = 1\n  y = local.x + \"a\"\n}\n\ncluster \"a\" {\n  nodes = local.y\n}\n", planner.Options{Refresh: true})
		if !d.HasErrors() || !strings.Contains(diagText(d), "main.lep.hcl:3:") {
			t.Errorf("diagnostics: %s", diagText(d))
		}
	})
}

// TestProviderShortcuts: the optional provider interfaces change which
// calls the planner makes, not what it plans. (training: none of its
// arguments is also computed, so its arguments alone can match its state.)
func TestProviderShortcuts(t *testing.T) {
	const v1 = "training \"t\" {\n  epochs = 3\n}\n"
	const v2 = "training \"t\" {\n  epochs = 4\n}\n"
	cases := []struct {
		name    string
		set     func(f *fakeProvider)
		refresh bool
		reads   int // on a no-op plan
		plans   int
		drift   bool // sees a change made outside lepton
	}{
		{"plain", func(*fakeProvider) {}, true, 1, 1, true},
		{"reads current", func(f *fakeProvider) { f.readsCurrent["training"] = true }, true, 0, 1, false},
		{"determined by arguments", func(f *fakeProvider) { f.argsDetermined["training"] = true }, true, 1, 1, true},
		{"determined by arguments, not refreshed", func(f *fakeProvider) { f.argsDetermined["training"] = true }, false, 0, 0, false},
		{"determined by arguments, reads current", func(f *fakeProvider) { f.argsDetermined["training"], f.readsCurrent["training"] = true, true }, true, 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			c.set(w.fake)
			w.up(v1)
			w.fake.reset()
			pl := w.plan(v1, planner.Options{Refresh: c.refresh})
			if got := actions(pl); got != "" {
				t.Errorf("plan: %s", got)
			}
			if r, p := w.fake.count("read"), w.fake.count("plan"); r != c.reads || p != c.plans {
				t.Errorf("%d reads and %d plans, want %d and %d", r, p, c.reads, c.plans)
			}
			// The values of an instance left as it is are there for the
			// saved plan and the JSON rendering.
			pl.LoadValues()
			if ch := change(t, pl, "training.t"); ch.Before.IsNull() || valueText(ch.After.GetAttr("epochs")) != "3" {
				t.Errorf("the no-op change has no values: %#v", ch.After)
			}
			// A change of arguments is planned either way.
			if got := actions(w.plan(v2, planner.Options{Refresh: c.refresh})); got != "training.t update" {
				t.Errorf("plan of a change: %q", got)
			}
			w.fake.drift("training.t", map[string]cty.Value{"status": cty.StringVal("lost")})
			if got := len(w.plan(v1, planner.Options{Refresh: c.refresh}).Drift) > 0; got != c.drift {
				t.Errorf("drift seen: %v", got)
			}
		})
	}
}

func TestOrphans(t *testing.T) {
	w := newWorld(t)
	w.fake.orphans = true
	w.up(chain)
	// The state forgets cluster.c (a lost write): its object remains.
	w.st.Remove("cluster.c")
	_, d := w.planDiags(chain, planner.Options{Refresh: true})
	if d.HasErrors() || !strings.Contains(diagText(d), "1 cluster instance(s) tagged with this state's lineage are not in state") || !strings.Contains(diagText(d), "cluster.c#1 (cluster.c)") {
		t.Errorf("diagnostics: %s", diagText(d))
	}
	// Without refresh nothing is looked for.
	if _, d := w.planDiags(chain, planner.Options{}); len(d) != 0 {
		t.Errorf("diagnostics without refresh: %s", diagText(d))
	}
}

// TestBadState: a state the planner cannot use is an error, not a panic.
func TestBadState(t *testing.T) {
	cases := []struct {
		name string
		edit func(st *state.State)
		want string
	}{
		{"unknown kind", func(st *state.State) { st.Resources[0].Kind = "spaceship" }, "spaceship"},
		{"bad address", func(st *state.State) { st.Resources[0].Address = "cluster." }, "Invalid address in state"},
		{"unknown provider", func(st *state.State) { st.Resources[0].Provider = "nowhere" }, `provider "nowhere" is not available`},
		{"bad attributes", func(st *state.State) { st.Resources[0].Attributes = json.RawMessage(`{"gpu": 5, "nodes": "x"}`) }, "cluster.a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.up(clusterT4)
			c.edit(w.st)
			for _, mode := range []planner.Mode{planner.NormalMode, planner.DestroyMode} {
				_, d := w.planDiags(clusterT4, planner.Options{Refresh: true, Mode: mode})
				if !d.HasErrors() || !strings.Contains(diagText(d), c.want) {
					t.Errorf("%s: diagnostics %q do not say %q", mode, diagText(d), c.want)
				}
			}
		})
	}
}

func TestDescribeAndStateJSON(t *testing.T) {
	w := newWorld(t)
	w.vars = map[string]cty.Value{"token": cty.StringVal(secret)}
	const src = `
variable "token" {
  type      = string
  sensitive = true
}

cluster "a" {
  gpu   = "t4"
  image = var.token
}
`
	w.up(src)
	r := w.st.Find("cluster.a")
	text, err := planner.DescribeInstance(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"# cluster.a:\ncluster \"a\" {", `gpu            = "t4"`, "image          = (sensitive value)", `zone           = "cluster.a#1"`} {
		if !strings.Contains(text, s) {
			t.Errorf("state show does not say %q:\n%s", s, text)
		}
	}
	r.Status = state.StatusTainted
	if text, _ := planner.DescribeInstance(r); !strings.Contains(text, "# cluster.a: (tainted)") {
		t.Errorf("a tainted instance is not shown as such:\n%s", text)
	}
	if _, err := planner.DescribeInstance(&state.Resource{Address: "x.y", Kind: "x"}); err == nil {
		t.Error("an unknown kind is described")
	}
	var b bytes.Buffer
	if err := planner.RenderStateJSON(&b, w.st, "0.0.0-test"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), secret) || !strings.Contains(b.String(), `"tainted": true`) || !strings.Contains(b.String(), `"address": "cluster.a"`) {
		t.Errorf("show -json:\n%s", b.String())
	}
	if got := planner.FormatValue(cty.ObjectVal(map[string]cty.Value{"a b": cty.NumberFloatVal(1.5), "s": cty.StringVal(secret).Mark("sensitive")})); strings.Contains(got, secret) || !strings.Contains(got, `"a b" = 1.5`) {
		t.Errorf("FormatValue: %s", got)
	}
}

// TestDeleteOrder: in a destroy, dependents go before what they use; in an
// apply, a resource removed from the configuration goes before a changed
// one that used to depend on it is updated.
func TestDeleteOrder(t *testing.T) {
	w := newWorld(t)
	w.up(chain)
	pl := w.plan(chain, planner.Options{Refresh: true, Mode: planner.DestroyMode})
	w.fake.reset()
	if _, d := w.applyWith(context.Background(), chain, pl, planner.ApplyOptions{Parallelism: 10}); d.HasErrors() {
		t.Fatal(d)
	}
	calls := w.fake.callsOf("delete")
	pos := map[string]int{}
	for i, c := range calls {
		pos[strings.Fields(c)[1]] = i
	}
	if len(calls) != 3 || pos["cluster.b#1"] > pos["cluster.a#1"] {
		t.Errorf("destroy order %v: cluster.b must go before cluster.a", calls)
	}
	if w.addresses() != "" {
		t.Errorf("state after destroy:\n%s", w.addresses())
	}
}
