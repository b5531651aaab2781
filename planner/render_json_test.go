package planner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
)

// The JSON plan is checked with terraform-json, the library Terraform's own
// tooling reads plans with: it must unmarshal and validate, and carry what
// policies written for Terraform plans look at.

const jsonSecret = "tok-Zq81-never-shown"

// trainedModel is a small dataset and a linear model trained on it.
const trainedModel = `
dataset "d" {
  source {
    inline = { x = [1, 2, 3, 4], y = [0, 1, 0, 1] }
  }
  label = "y"
}

training "t" {
  dataset   = dataset.d
  objective = "classification"
  model {
    kind = "linear"
  }
  epochs     = 1
  batch_size = 2
  seed       = 1
}
`

const jsonPlanConfig = trainedModel + `
variable "token" {
  type      = string
  sensitive = true
}

variable "names" {
  type    = list(string)
  default = ["a", "b"]
}


dataset "shard" {
  count = 2
  source {
    inline = { i = [count.index] }
  }
}

dataset "each" {
  for_each = toset(var.names)
  source {
    inline = { k = [each.key] }
  }
}

dataset "secret" {
  source {
    inline = { t = [var.token, "public"] }
  }
}


endpoint "open" {
  model = training.t.model
  auth  = false
}

endpoint "guarded" {
  model = training.t.model
}

output "url" {
  value = endpoint.guarded.url
}

output "first_shard" {
  value = dataset.shard[0].digest
}

output "each_a_rows" {
  value = dataset.each["a"].stats.k["count"]
}
`

func planJSON(t *testing.T, p *planner.Planner, prior *state.State) (*tfjson.Plan, string) {
	t.Helper()
	plan, d := p.Plan(context.Background(), prior, planner.Options{Refresh: true, Parallelism: 4})
	if d.HasErrors() {
		t.Fatalf("plan: %v", d)
	}
	return renderJSON(t, plan, p.Config)
}

func renderJSON(t *testing.T, plan *planner.Plan, cfg *lang.Config) (*tfjson.Plan, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := planner.RenderJSON(&buf, plan, cfg, "test"); err != nil {
		t.Fatalf("RenderJSON: %v", err)
	}
	var tp tfjson.Plan
	if err := json.Unmarshal(buf.Bytes(), &tp); err != nil {
		t.Fatalf("terraform-json cannot read the plan: %v", err)
	}
	if err := tp.Validate(); err != nil {
		t.Fatalf("terraform-json rejects the plan: %v", err)
	}
	return &tp, buf.String()
}

// loadPlanner loads src with variables set as LEPTON_VAR_ environment
// entries (env), as the CLI does.
func loadPlanner(t *testing.T, dir, src string, env ...string) *planner.Planner {
	t.Helper()
	cfg, d := lang.LoadSources(dir, []string{"main.lep.hcl"}, map[string][]byte{"main.lep.hcl": []byte(src)})
	if d.HasErrors() {
		t.Fatalf("load: %v", d)
	}
	p := benchPlanner(cfg, dir)
	vals, missing, _, d := cfg.VariableValues(lang.VarInputs{Env: env})
	if d.HasErrors() || len(missing) > 0 {
		t.Fatalf("variables: %v (missing %v)", d, missing)
	}
	vals, d = cfg.CheckVariables(vals)
	if d.HasErrors() {
		t.Fatalf("variables: %v", d)
	}
	p.Scope = lang.NewScope(cfg, vals)
	return p
}

func TestJSONPlanConfigurationAndValues(t *testing.T) {
	dir := t.TempDir()
	p := loadPlanner(t, dir, jsonPlanConfig, "LEPTON_VAR_token="+jsonSecret)
	plan, d := p.Plan(context.Background(), nil, planner.Options{Refresh: true, Parallelism: 4})
	if d.HasErrors() {
		t.Fatalf("plan: %v", d)
	}
	tp, raw := renderJSON(t, plan, p.Config)
	if strings.Contains(raw, jsonSecret) {
		t.Fatalf("the sensitive value appears in the JSON plan")
	}
	// The human plan shows the defaults of a new endpoint, as Terraform
	// shows a provider's, and the configured value where one is set.
	var human strings.Builder
	planner.RenderHuman(&human, plan, planner.Colors{})
	guarded := human.String()[strings.Index(human.String(), "# endpoint.guarded"):]
	guarded = guarded[:strings.Index(guarded, "\n    }\n")]
	open := human.String()[strings.Index(human.String(), "# endpoint.open"):]
	open = open[:strings.Index(open, "\n    }\n")]
	for _, c := range []struct{ block, re string }{
		{guarded, `\+ auth +\= true\n`}, {guarded, `\+ replicas +\= 1\n`}, {guarded, `\+ max_batch_size +\= 256\n`},
		{open, `\+ auth +\= false\n`}, {open, `\+ replicas +\= 1\n`},
	} {
		if !regexp.MustCompile(c.re).MatchString(c.block) {
			t.Errorf("human plan lacks %s in:\n%s", c.re, c.block)
		}
	}

	cfg := map[string]*tfjson.ConfigResource{}
	for _, r := range tp.Config.RootModule.Resources {
		cfg[r.Address] = r
	}
	refs := func(addr, arg string) []string {
		r := cfg[addr]
		if r == nil || r.Expressions[arg] == nil {
			t.Fatalf("configuration has no expression for %s.%s", addr, arg)
		}
		return r.Expressions[arg].References
	}
	constant := func(addr, arg string) any {
		r := cfg[addr]
		if r == nil || r.Expressions[arg] == nil {
			t.Fatalf("configuration has no expression for %s.%s", addr, arg)
		}
		return r.Expressions[arg].ConstantValue
	}
	exprCases := []struct {
		addr, arg string
		refs      []string
		constant  any
	}{
		{"endpoint.guarded", "model", []string{"training.t.model", "training.t"}, tfjson.UnknownConstantValue},
		{"endpoint.open", "auth", nil, false},
		{"training.t", "dataset", []string{"dataset.d"}, tfjson.UnknownConstantValue},
		{"training.t", "objective", nil, "classification"},
		{"training.t", "epochs", nil, float64(1)},
		{"dataset.d", "label", nil, "y"},
	}
	for _, c := range exprCases {
		if got := refs(c.addr, c.arg); !reflect.DeepEqual(got, c.refs) {
			t.Errorf("%s.%s references %q, want %q", c.addr, c.arg, got, c.refs)
		}
		if got := constant(c.addr, c.arg); !reflect.DeepEqual(got, c.constant) {
			t.Errorf("%s.%s constant_value %#v, want %#v", c.addr, c.arg, got, c.constant)
		}
	}
	if _, ok := cfg["endpoint.guarded"].Expressions["auth"]; ok {
		t.Errorf("an unset argument has an expression")
	}
	// Nested blocks are lists of expression objects.
	src := cfg["dataset.d"].Expressions["source"]
	if src == nil || len(src.NestedBlocks) != 1 {
		t.Fatalf("dataset.d source block: %+v", src)
	}
	inline := src.NestedBlocks[0]["inline"]
	if inline == nil || !reflect.DeepEqual(inline.ConstantValue, map[string]any{"x": []any{1.0, 2.0, 3.0, 4.0}, "y": []any{0.0, 1.0, 0.0, 1.0}}) {
		t.Errorf("dataset.d source.inline: %+v", inline)
	}
	if model := cfg["training.t"].Expressions["model"]; model == nil || len(model.NestedBlocks) != 1 || model.NestedBlocks[0]["kind"].ConstantValue != "linear" {
		t.Errorf("training.t model block: %+v", model)
	}
	secretInline := cfg["dataset.secret"].Expressions["source"].NestedBlocks[0]["inline"]
	if secretInline.ConstantValue != tfjson.UnknownConstantValue || !reflect.DeepEqual(secretInline.References, []string{"var.token"}) {
		t.Errorf("dataset.secret inline: constant %v, references %v", secretInline.ConstantValue, secretInline.References)
	}
	// count and for_each.
	if c := cfg["dataset.shard"].CountExpression; c == nil || c.ConstantValue != float64(2) {
		t.Errorf("dataset.shard count_expression: %+v", c)
	}
	if fe := cfg["dataset.each"].ForEachExpression; fe == nil || !reflect.DeepEqual(fe.References, []string{"var.names"}) {
		t.Errorf("dataset.each for_each_expression: %+v", fe)
	}
	if each := cfg["dataset.each"].Expressions["source"].NestedBlocks[0]["inline"]; !reflect.DeepEqual(each.References, []string{"each.key"}) {
		t.Errorf("dataset.each inline references %v", each.References)
	}
	// Outputs.
	outs := tp.Config.RootModule.Outputs
	if o := outs["url"]; o == nil || !reflect.DeepEqual(o.Expression.References, []string{"endpoint.guarded.url", "endpoint.guarded"}) {
		t.Errorf("output url expression: %+v", o)
	}
	if o := outs["first_shard"]; o == nil || !reflect.DeepEqual(o.Expression.References, []string{"dataset.shard[0].digest", "dataset.shard[0]", "dataset.shard"}) {
		t.Errorf("output first_shard expression: %+v", o)
	}
	if o := outs["each_a_rows"]; o == nil || !reflect.DeepEqual(o.Expression.References, []string{
		`dataset.each["a"].stats.k["count"]`, `dataset.each["a"].stats.k`, `dataset.each["a"].stats`, `dataset.each["a"]`, "dataset.each",
	}) {
		t.Errorf("output each_a_rows expression: %+v", o.Expression.References)
	}

	changes := map[string]*tfjson.ResourceChange{}
	for _, rc := range tp.ResourceChanges {
		changes[rc.Address] = rc
	}
	// Unknown values are left out of after and listed in after_unknown.
	g := changes["endpoint.guarded"]
	if g == nil {
		t.Fatal("no change for endpoint.guarded")
	}
	after := g.Change.After.(map[string]any)
	unknown := g.Change.AfterUnknown.(map[string]any)
	for _, k := range []string{"model", "url", "token"} {
		if _, ok := after[k]; ok {
			t.Errorf("endpoint.guarded after holds the unknown %s: %v", k, after[k])
		}
		if unknown[k] != true {
			t.Errorf("endpoint.guarded after_unknown lacks %s: %v", k, unknown)
		}
	}
	// Defaults appear in after and in planned values.
	if after["auth"] != true || after["replicas"] != float64(1) || after["max_batch_size"] != float64(256) {
		t.Errorf("endpoint.guarded after lacks its defaults: %v", after)
	}
	if a := changes["endpoint.open"].Change.After.(map[string]any); a["auth"] != false {
		t.Errorf("endpoint.open auth = %v, want the configured false", a["auth"])
	}
	// The token is sensitive: left out, marked.
	if _, ok := after["token"]; ok {
		t.Errorf("endpoint.guarded after holds the token")
	}
	// Sensitive values are left out (a list keeps the place) and marked.
	s := changes["dataset.secret"]
	sAfter, _ := json.Marshal(s.Change.After)
	if !strings.Contains(string(sAfter), `"public"`) || !strings.Contains(string(sAfter), `[null,"public"]`) {
		t.Errorf("dataset.secret after %s: want the public value and null in the secret's place", sAfter)
	}
	// (What is computed from the secret is sensitive too.)
	sens, _ := json.Marshal(s.Change.AfterSensitive)
	if !strings.Contains(string(sens), `"source":{"inline":{"t":[true,false]}}`) {
		t.Errorf("dataset.secret after_sensitive %s", sens)
	}
	var planned *tfjson.StateResource
	for _, r := range tp.PlannedValues.RootModule.Resources {
		if r.Address == "endpoint.guarded" {
			planned = r
		}
		if r.Address == "dataset.secret" {
			sv, _ := json.Marshal(r.SensitiveValues)
			if !strings.Contains(string(sv), `"source":{"inline":{"t":[true,false]}}`) {
				t.Errorf("dataset.secret sensitive_values %s", sv)
			}
		}
	}
	if planned == nil || planned.AttributeValues["auth"] != true {
		t.Errorf("planned_values endpoint.guarded lacks auth = true: %+v", planned)
	}
	if _, ok := planned.AttributeValues["url"]; ok {
		t.Errorf("planned_values holds an unknown url")
	}
	// A wholly unknown output: no after, after_unknown true.
	if oc := tp.OutputChanges["url"]; oc == nil || oc.After != nil || oc.AfterUnknown != true {
		t.Errorf("output_changes url: %+v", oc)
	}
}

// prior_state is the state after refresh: a batch inference whose output
// was removed is gone from it (and resource_drift says so), as Terraform
// shows a resource deleted outside of it.
func TestJSONPlanPriorStateIsRefreshed(t *testing.T) {
	dir := t.TempDir()
	src := trainedModel + `
batch_inference "b" {
  model   = training.t.model
  dataset = dataset.d
  output  = "scores.csv"
}
`
	p := loadPlanner(t, dir, src)
	ctx := context.Background()
	plan, d := p.Plan(ctx, nil, planner.Options{Refresh: true, Parallelism: 4})
	if d.HasErrors() {
		t.Fatalf("plan: %v", d)
	}
	local := state.NewLocal(filepath.Join(dir, "lepton.state"))
	pers := state.NewPersister(state.Sink(ctx, local), state.New("test"))
	if _, d := p.Apply(ctx, plan, pers, planner.ApplyOptions{Parallelism: 4}); d.HasErrors() {
		t.Fatalf("apply: %v", d)
	}
	if err := pers.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := local.Read(ctx)
	if err != nil || st.Find("batch_inference.b") == nil {
		t.Fatalf("state after apply: %v (%v)", st, err)
	}
	if err := os.Remove(filepath.Join(dir, "scores.csv")); err != nil {
		t.Fatal(err)
	}

	tp, _ := planJSON(t, loadPlanner(t, dir, src), st)
	if len(tp.ResourceDrift) != 1 || tp.ResourceDrift[0].Address != "batch_inference.b" || !tp.ResourceDrift[0].Change.Actions.Delete() {
		t.Fatalf("resource_drift %+v, want batch_inference.b deleted", tp.ResourceDrift)
	}
	var inPrior []string
	for _, r := range tp.PriorState.Values.RootModule.Resources {
		inPrior = append(inPrior, r.Address)
	}
	if want := []string{"dataset.d", "training.t"}; !reflect.DeepEqual(inPrior, want) {
		t.Errorf("prior_state holds %v, want the refreshed %v", inPrior, want)
	}
	for _, rc := range tp.ResourceChanges {
		if rc.Address == "batch_inference.b" && !rc.Change.Actions.Create() {
			t.Errorf("batch_inference.b: %v, want create", rc.Change.Actions)
		}
	}
}
