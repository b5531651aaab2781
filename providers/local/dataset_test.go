package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/local"
	"github.com/zclconf/go-cty/cty"
)

// datasetConfig decodes the arguments of the one dataset in src.
func datasetConfig(t *testing.T, dir, src string) cty.Value {
	t.Helper()
	cfg, d := lang.LoadSources(dir, []string{"main.lep.hcl"}, map[string][]byte{"main.lep.hcl": []byte(src)})
	if d.HasErrors() {
		t.Fatal(d)
	}
	s := lang.NewScope(cfg, nil)
	rb := cfg.Resources[0]
	refs, _ := cfg.ResourceRefs(rb)
	v, d := s.DecodeResource(rb, s.EvalContext(refs, func(lang.Reference) cty.Value { return cty.DynamicVal }, nil))
	if d.HasErrors() {
		t.Fatal(d)
	}
	return v
}

func TestDatasetPlanApply(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := providers.Env{Dir: dir, DataDir: filepath.Join(dir, ".lepton")}
	res, ok := local.New().Resource("dataset")
	if !ok {
		t.Fatal("no dataset kind")
	}
	cases := []struct {
		name    string
		files   map[string]string
		src     string
		rows    int64
		columns []string
		schema  map[string]string
	}{
		{
			name:    "inline",
			src:     "dataset \"a\" {\n  source {\n    inline = { x = [1, 2, 3], label = [0, 1, 0] }\n  }\n  label = \"label\"\n}\n",
			rows:    3,
			columns: []string{"x"},
			schema:  map[string]string{"x": "number", "label": "number"},
		},
		{
			name:    "csv file",
			files:   map[string]string{"t.csv": "x,y\n1,2\n3,4\n"},
			src:     "dataset \"a\" {\n  source {\n    file = \"t.csv\"\n  }\n}\n",
			rows:    2,
			columns: []string{"x", "y"},
			schema:  map[string]string{"x": "number", "y": "number"},
		},
		{
			name:    "jsonl file",
			files:   map[string]string{"t.jsonl": "{\"a\": 1, \"b\": \"p\"}\n{\"a\": 2, \"b\": \"q\"}\n{\"a\": 3, \"b\": \"p\"}\n"},
			src:     "dataset \"a\" {\n  source {\n    file = \"t.jsonl\"\n  }\n  label = \"b\"\n}\n",
			rows:    3,
			columns: []string{"a"},
			schema:  map[string]string{"a": "number", "b": "string"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for name, content := range c.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := datasetConfig(t, dir, c.src)
			ty := lang.Schemas()["dataset"].StateType()
			plan, err := res.Plan(ctx, providers.PlanRequest{Address: "dataset.a", Prior: cty.NullVal(ty), Config: cfg, Env: env})
			if err != nil {
				t.Fatal(err)
			}
			dg := plan.Planned.GetAttr("digest")
			if !dg.IsKnown() || !strings.HasPrefix(dg.AsString(), "sha256:") {
				t.Fatalf("digest at plan: %#v", dg)
			}
			if plan.Planned.GetAttr("rows").IsKnown() {
				t.Errorf("rows known at plan; it is computed by apply")
			}
			got, err := res.Apply(ctx, providers.ApplyRequest{Address: "dataset.a", Prior: cty.NullVal(ty), Planned: plan.Planned, Env: env})
			if err != nil {
				t.Fatal(err)
			}
			if got.GetAttr("digest").AsString() != dg.AsString() {
				t.Errorf("apply digest %s, planned %s", got.GetAttr("digest").AsString(), dg.AsString())
			}
			if n, _ := got.GetAttr("rows").AsBigFloat().Int64(); n != c.rows {
				t.Errorf("rows = %d, want %d", n, c.rows)
			}
			var cols []string
			for _, v := range got.GetAttr("columns").AsValueSlice() {
				cols = append(cols, v.AsString())
			}
			if strings.Join(cols, ",") != strings.Join(c.columns, ",") {
				t.Errorf("columns = %v, want %v", cols, c.columns)
			}
			for k, v := range c.schema {
				if s := got.GetAttr("schema").Index(cty.StringVal(k)); s.AsString() != v {
					t.Errorf("schema[%s] = %s, want %s", k, s.AsString(), v)
				}
			}

			// The profile: from its file for a file source, rebuilt for an inline one.
			_, statErr := os.Stat(local.ProfilePath(env.DataDir, dg.AsString()))
			if (statErr == nil) != (c.files != nil) {
				t.Errorf("profile file present: %v; want it only for a file source", statErr == nil)
			}
			prof, ok, err := local.Profile(ctx, dir, env.DataDir, got)
			if err != nil || !ok {
				t.Fatalf("Profile: %v, ok %v", err, ok)
			}
			if len(prof.Histograms) != len(c.columns) || len(prof.Steps) == 0 {
				t.Errorf("profile has %d histograms (want %d) and %d steps", len(prof.Histograms), len(c.columns), len(prof.Steps))
			}
			n := 0
			for _, k := range prof.Histograms[0].Counts {
				n += k
			}
			if int64(n) != c.rows {
				t.Errorf("histogram of %s counts %d rows, want %d", prof.Histograms[0].Column, n, c.rows)
			}

			// Planned again against what was applied: nothing to do.
			again, err := res.Plan(ctx, providers.PlanRequest{Address: "dataset.a", Prior: got, Config: cfg, Env: env})
			if err != nil {
				t.Fatal(err)
			}
			if !again.Planned.RawEquals(got) || again.Reason != "" {
				t.Errorf("a second plan changes the dataset: %#v (%s)", again.Planned, again.Reason)
			}

			// A changed file is an update with its reason; the apply of a
			// plan made before a change refuses the new content.
			for name, content := range c.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content+strings.SplitAfterN(content, "\n", 3)[1]), 0o644); err != nil {
					t.Fatal(err)
				}
				changed, err := res.Plan(ctx, providers.PlanRequest{Address: "dataset.a", Prior: got, Config: cfg, Env: env})
				if err != nil {
					t.Fatal(err)
				}
				if changed.Planned.GetAttr("digest").RawEquals(dg) || changed.Reason != "the source content changed" {
					t.Errorf("after a file change: digest %#v, reason %q", changed.Planned.GetAttr("digest"), changed.Reason)
				}
				if _, err := res.Apply(ctx, providers.ApplyRequest{Address: "dataset.a", Prior: got, Planned: plan.Planned, Env: env}); err == nil || !strings.Contains(err.Error(), "changed between plan and apply") {
					t.Errorf("apply of a stale plan: %v", err)
				}
			}
			if err := res.Delete(ctx, providers.DeleteRequest{Address: "dataset.a", Current: got, Env: env}); err != nil {
				t.Errorf("Delete: %v", err)
			}
		})
	}
}

func TestDatasetErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := providers.Env{Dir: dir, DataDir: filepath.Join(dir, ".lepton")}
	res, _ := local.New().Resource("dataset")
	ty := lang.Schemas()["dataset"].StateType()
	cases := []struct{ name, src, want string }{
		{"missing file", "dataset \"a\" {\n  source {\n    file = \"nope.csv\"\n  }\n}\n", "nope.csv"},
		{"inline not columns", "dataset \"a\" {\n  source {\n    inline = [1, 2]\n  }\n}\n", "inline"},
	}
	for _, c := range cases {
		cfg := datasetConfig(t, dir, c.src)
		_, err := res.Plan(ctx, providers.PlanRequest{Address: "dataset.a", Prior: cty.NullVal(ty), Config: cfg, Env: env})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Plan error %v, want one naming %q", c.name, err, c.want)
		}
	}
}
