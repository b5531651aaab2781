package planner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/planner"
	"github.com/zclconf/go-cty/cty"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const secret = "s3cr3t-TOKEN-4242"

// richV1 and richV2 make a plan with every action: no-op (keep), update
// (grow, fe["y"], drifted back), replace (swap), create_before_destroy
// (cbd), a replacement because a consumed resource is replaced (t), a
// tainted replacement, deletes (gone, n[2]), creates (fresh), a sensitive
// variable flowing into an argument, and outputs created, updated, deleted
// and sensitive.
const richV1 = `
variable "token" {
  type      = string
  sensitive = true
}

cluster "keep" {
  gpu   = "t4"
  nodes = 1
}

cluster "grow" {
  gpu   = "t4"
  nodes = 1
}

cluster "swap" {
  gpu = "t4"
}

cluster "cbd" {
  gpu = "t4"
  lifecycle {
    create_before_destroy = true
  }
}

cluster "gone" {
  gpu = "t4"
}

cluster "n" {
  count = 3
  nodes = count.index
}

cluster "fe" {
  for_each = { x = 1, y = 2 }
  nodes    = each.value
}

cluster "secret" {
  image = var.token
}

cluster "drifted" {
  nodes = 1
}

cluster "tainted" {
  nodes = 1
}

training "t" {
  cluster = cluster.swap
  epochs  = 3
}

output "zone" {
  value = cluster.keep.zone
}

output "nodes" {
  value = cluster.grow.nodes
}

output "token" {
  value     = var.token
  sensitive = true
}

output "bye" {
  value = "x"
}
`

func richV2() string {
	r := strings.NewReplacer(
		"cluster \"grow\" {\n  gpu   = \"t4\"\n  nodes = 1", "cluster \"grow\" {\n  gpu   = \"t4\"\n  nodes = 2",
		"cluster \"swap\" {\n  gpu = \"t4\"", "cluster \"swap\" {\n  gpu = \"a100\"",
		"cluster \"cbd\" {\n  gpu = \"t4\"", "cluster \"cbd\" {\n  gpu = \"a100\"",
		"cluster \"gone\" {\n  gpu = \"t4\"\n}\n", "cluster \"fresh\" {\n  gpu = \"l4\"\n}\n",
		"count = 3", "count = 2",
		"y = 2", "y = 5",
		"image = var.token", "image = \"${var.token}-2\"",
		"output \"bye\" {\n  value = \"x\"\n}\n", "",
	)
	return r.Replace(richV1)
}

// richPlan applies richV1 (with cluster.tainted failing), changes
// cluster.drifted outside lepton, and plans richV2.
func richPlan(t *testing.T) (*world, *planner.Plan) {
	t.Helper()
	w := newWorld(t)
	w.vars = map[string]cty.Value{"token": cty.StringVal(secret)}
	pl := w.plan(richV1, planner.Options{Refresh: true})
	w.fake.fail("apply", "cluster.tainted", 1, errors.New("did not become ready")).partial = true
	if _, d := w.applyWith(context.Background(), richV1, pl, planner.ApplyOptions{}); len(d) != 1 {
		t.Fatalf("applying v1: want the one failure of cluster.tainted, got %s", diagText(d))
	}
	w.fake.drift("cluster.drifted", map[string]cty.Value{"nodes": cty.NumberIntVal(9)})
	return w, w.plan(richV2(), planner.Options{Refresh: true})
}

func TestRichPlan(t *testing.T) {
	w, pl := richPlan(t)
	want := strings.Join([]string{
		"cluster.cbd replace (create before destroy)",
		"cluster.drifted update",
		`cluster.fe["y"] update`,
		"cluster.fresh create",
		"cluster.gone delete",
		"cluster.grow update",
		"cluster.n[2] delete",
		"cluster.secret update",
		"cluster.swap replace",
		"cluster.tainted replace",
		"training.t replace",
	}, "\n")
	if got := actions(pl); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
	if tr := change(t, pl, "training.t"); tr.Reason != "(cluster.swap changed)" || tr.ActionReason != planner.ReasonCannotUpdate {
		t.Errorf("training.t: reason %q %q", tr.Reason, tr.ActionReason)
	}
	if add, chg, del := pl.Counts(); add != 5 || chg != 4 || del != 6 {
		t.Errorf("counts %d/%d/%d", add, chg, del)
	}
	if add, remove, now, ok := pl.Cost(); !ok || add != 6 || remove != 7.5 || now != 18 {
		t.Errorf("cost +%v -%v now %v (%v)", add, remove, now, ok)
	}

	// The plan applies, and the next plan is empty.
	if _, d := w.applyWith(context.Background(), richV2(), pl, planner.ApplyOptions{Parallelism: 4}); d.HasErrors() {
		t.Fatalf("apply: %v", d)
	}
	if again := actions(w.plan(richV2(), planner.Options{Refresh: true})); again != "" {
		t.Errorf("plan after apply:\n%s", again)
	}
	for _, r := range w.st.Resources {
		if n := len(w.fake.objectsAt(r.Address)); n != 1 || r.Status != state.StatusReady {
			t.Errorf("%s: %s with %d real objects", r.Address, r.Status, n)
		}
	}
}

// renders returns the three renderings of a plan.
func renders(t *testing.T, w *world, pl *planner.Plan, src string) (human, js, md string) {
	t.Helper()
	var h, j, m bytes.Buffer
	planner.RenderHuman(&h, pl, planner.Colors{})
	if err := planner.RenderJSON(&j, pl, w.planner(src).Config, "0.0.0-test"); err != nil {
		t.Fatal(err)
	}
	planner.RenderMarkdown(&m, pl)
	return h.String(), normalize(t, w, j.String()), m.String()
}

var lineageRe = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func normalize(t *testing.T, w *world, js string) string {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, js)
	}
	return strings.ReplaceAll(lineageRe.ReplaceAllString(js, "LINEAGE"), w.dir, "DIR")
}

// TestRender pins the human, JSON and Markdown renderings of the rich plan
// (go test ./planner -run TestRender -update rewrites them), checks what
// each must say, and that the secret shows nowhere.
func TestRender(t *testing.T) {
	w, pl := richPlan(t)
	human, js, md := renders(t, w, pl, richV2())
	for _, s := range []string{
		"Note: Objects have changed outside of lepton",
		"# cluster.drifted has changed",
		"# cluster.cbd must be replaced",
		"+/- cluster \"cbd\"",
		"-/+ cluster \"swap\"",
		"# cluster.tainted is tainted, so must be replaced",
		"# (cluster.swap changed)",
		"# cluster.gone will be destroyed",
		"(because cluster.gone is not in configuration)",
		"(because index [2] is out of range for count)",
		"# cluster.fresh will be created",
		"# cluster.grow will be updated in-place",
		"(sensitive value)",
		"# forces replacement",
		"Plan: 5 to add, 4 to change, 6 to destroy.",
		"Cost: +$6.00/hr, -$7.50/hr (now $18.00/hr)",
		"Changes to Outputs:",
		"offer: fake/cluster.fresh",
	} {
		if !strings.Contains(human, s) {
			t.Errorf("the human plan does not say %q", s)
		}
	}
	var doc struct {
		ResourceChanges []struct {
			Address      string `json:"address"`
			ActionReason string `json:"action_reason"`
			Change       struct {
				Actions      []string `json:"actions"`
				ReplacePaths [][]any  `json:"replace_paths"`
			} `json:"change"`
		} `json:"resource_changes"`
		ResourceDrift []struct {
			Address string `json:"address"`
		} `json:"resource_drift"`
		Errored bool `json:"errored"`
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatal(err)
	}
	acts := map[string]string{}
	for _, c := range doc.ResourceChanges {
		acts[c.Address] = strings.Join(c.Change.Actions, ",")
		if c.Address == "cluster.swap" && (len(c.Change.ReplacePaths) != 1 || c.Change.ReplacePaths[0][0] != "gpu") {
			t.Errorf("cluster.swap replace_paths %v", c.Change.ReplacePaths)
		}
	}
	for addr, want := range map[string]string{"cluster.cbd": "create,delete", "cluster.swap": "delete,create", "cluster.keep": "no-op", "cluster.gone": "delete", "cluster.fresh": "create"} {
		if acts[addr] != want {
			t.Errorf("JSON actions of %s: %q, want %q", addr, acts[addr], want)
		}
	}
	if len(doc.ResourceDrift) != 1 || doc.ResourceDrift[0].Address != "cluster.drifted" || doc.Errored {
		t.Errorf("JSON drift %v, errored %v", doc.ResourceDrift, doc.Errored)
	}
	for _, s := range []string{"| +/- replace (create before destroy) | `cluster.cbd` |", "<details>", "```diff", "1 object(s) changed outside of lepton"} {
		if !strings.Contains(md, s) {
			t.Errorf("the Markdown plan does not say %q", s)
		}
	}
	for name, out := range map[string]string{"plan.txt": human, "plan.json": js, "plan.md": md} {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the secret", name)
		}
		golden(t, name, out)
	}
	var col bytes.Buffer
	planner.RenderHuman(&col, pl, planner.ANSI())
	if !strings.Contains(col.String(), "\x1b[") {
		t.Errorf("the ANSI rendering has no colours")
	}
}

// golden compares got with testdata/golden/NAME; -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test ./planner -run %s -update creates it)", err, t.Name())
	}
	if string(want) == got {
		return
	}
	wl, gl := strings.Split(string(want), "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var a, b string
		if i < len(wl) {
			a = wl[i]
		}
		if i < len(gl) {
			b = gl[i]
		}
		if a != b {
			t.Errorf("%s differs from the golden file at line %d (go test ./planner -run %s -update accepts the change):\nwant: %q\ngot:  %q", name, i+1, t.Name(), a, b)
			return
		}
	}
}

// TestNoChangesRender: what each renderer says when there is nothing to do.
func TestNoChangesRender(t *testing.T) {
	w := newWorld(t)
	w.up(clusterT4)
	for _, c := range []struct {
		mode planner.Mode
		want string
	}{
		{planner.NormalMode, "No changes. Your infrastructure matches the configuration."},
		{planner.RefreshOnlyMode, "No changes. Your infrastructure still matches the configuration."},
	} {
		pl := w.plan(clusterT4, planner.Options{Refresh: true, Mode: c.mode})
		human, js, md := renders(t, w, pl, clusterT4)
		if !strings.Contains(human, c.want) || !strings.Contains(md, "**No changes.**") || !strings.Contains(js, `"applyable": false`) {
			t.Errorf("%s:\n%s\n%s\n%s", c.mode, human, md, js)
		}
	}
	w.fake.drift("cluster.a", map[string]cty.Value{"nodes": cty.NumberIntVal(4)})
	pl := w.plan(clusterT4, planner.Options{Refresh: true, Mode: planner.RefreshOnlyMode})
	if human, _, _ := renders(t, w, pl, clusterT4); !strings.Contains(human, "This is a refresh-only plan") {
		t.Errorf("refresh-only:\n%s", human)
	}
}

// TestSavedPlan: a plan survives its file (every rendering is the same, and
// it applies), and Stale says when it no longer fits the state or the
// configuration.
func TestSavedPlan(t *testing.T) {
	w, pl := richPlan(t)
	p := w.planner(richV2())
	pl.ConfigHash = planner.ConfigHash(p.Config, p.Scope.Vars)
	h1, j1, m1 := renders(t, w, pl, richV2())
	b, err := pl.Encode("0.0.0-test")
	if err != nil {
		t.Fatal(err)
	}
	got, err := planner.DecodePlan(b)
	if err != nil {
		t.Fatal(err)
	}
	h2, j2, m2 := renders(t, w, got, richV2())
	if h1 != h2 || j1 != j2 || m1 != m2 {
		t.Errorf("renderings differ after a round trip:\n%s\n---\n%s", h1, h2)
	}
	if actions(got) != actions(pl) || got.Mode != pl.Mode || got.Refresh != pl.Refresh || got.Lineage != pl.Lineage || got.Serial != pl.Serial {
		t.Errorf("decoded plan differs")
	}
	if v := got.Variables["token"]; !v.HasMark("sensitive") {
		t.Errorf("the sensitive variable is not marked after a round trip: %#v", v)
	}

	other := w.planner(clusterT4)
	newer := w.st.Clone()
	newer.Serial++
	foreign := w.st.Clone()
	foreign.Lineage = "00000000-0000-0000-0000-000000000000"
	for _, c := range []struct {
		name string
		st   *state.State
		hash string
		want string
	}{
		{"fresh", w.st, pl.ConfigHash, ""},
		{"configuration changed", w.st, planner.ConfigHash(other.Config, nil), "configuration"},
		{"variables changed", w.st, planner.ConfigHash(p.Config, map[string]cty.Value{"token": cty.StringVal("other")}), "variable"},
		{"state changed", newer, pl.ConfigHash, "serial"},
		{"another state", foreign, pl.ConfigHash, "lineage"},
		{"state removed", nil, pl.ConfigHash, "removed"},
	} {
		if s := got.Stale(c.st, c.hash); (c.want == "") != (s == "") || !strings.Contains(s, c.want) {
			t.Errorf("%s: Stale = %q, want %q", c.name, s, c.want)
		}
	}

	if _, err := planner.DecodePlan([]byte(`{"format":"other"}`)); err == nil {
		t.Error("a file of another format decodes")
	}
	if _, err := planner.DecodePlan([]byte(`not json`)); err == nil {
		t.Error("a file that is not JSON decodes")
	}

	// The decoded plan applies as the original would.
	if _, d := w.applyWith(context.Background(), richV2(), got, planner.ApplyOptions{}); d.HasErrors() {
		t.Fatalf("applying the saved plan: %v", d)
	}
	if again := actions(w.plan(richV2(), planner.Options{Refresh: true})); again != "" {
		t.Errorf("plan after applying the saved plan:\n%s", again)
	}
}

// TestStalePlanAtApply: a value the plan knew that differs at apply time
// fails that instance instead of applying something else.
func TestStalePlanAtApply(t *testing.T) {
	w := newWorld(t)
	pl := w.plan(clusterT4, planner.Options{Refresh: true})
	_, d := w.applyWith(context.Background(), clusterT4Two, pl, planner.ApplyOptions{})
	if !d.HasErrors() || !strings.Contains(diagText(d), "nodes changed between plan and apply") {
		t.Errorf("diagnostics: %s", diagText(d))
	}
	if w.fake.count("apply") != 0 {
		t.Errorf("the provider applied a stale plan")
	}
}
