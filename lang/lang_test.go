package lang_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/leptonml/lepton/lang"
	"github.com/zclconf/go-cty/cty"
)

func load(t *testing.T, src string) (*lang.Config, hcl.Diagnostics) {
	t.Helper()
	return lang.LoadSources(t.TempDir(), []string{"main.lep.hcl"}, map[string][]byte{"main.lep.hcl": []byte(src)})
}

// eval evaluates an expression with the language's functions.
func eval(t *testing.T, expr string) (cty.Value, hcl.Diagnostics) {
	t.Helper()
	e, d := hclsyntax.ParseExpression([]byte(expr), "expr", hcl.InitialPos)
	if d.HasErrors() {
		t.Fatalf("%s: %v", expr, d)
	}
	return e.Value(&hcl.EvalContext{Functions: lang.Functions(t.TempDir())})
}

func TestFunctions(t *testing.T) {
	cases := []struct{ expr, want string }{
		{`abs(-3)`, `3`},
		{`ceil(1.2) + floor(1.8) + signum(-4)`, `2`},
		{`max(1, 5, 3) - min(4, 2)`, `3`},
		{`pow(2, 10)`, `1024`},
		{`floor(log(1000, 10) + 0.5)`, `3`},
		{`concat([1], [2, 3])`, `[1,2,3]`},
		{`contains(["a", "b"], "b")`, `true`},
		{`distinct([1, 1, 2])`, `[1,2]`},
		{`element(["a", "b"], 3)`, `"b"`},
		{`flatten([[1], [2, [3]]])`, `[1,2,3]`},
		{`index(["a", "b"], "b")`, `1`},
		{`keys({b = 1, a = 2})`, `["a","b"]`},
		{`values({b = 1, a = 2})`, `[2,1]`},
		{`length("héllo") + length([1, 2])`, `7`},
		{`lookup({a = 1}, "b", 9)`, `9`},
		{`merge({a = 1}, {b = 2})`, `{"a":1,"b":2}`},
		{`range(3)`, `[0,1,2]`},
		{`reverse([1, 2])`, `[2,1]`},
		{`slice([1, 2, 3], 1, 3)`, `[2,3]`},
		{`sort(["b", "a"])`, `["a","b"]`},
		{`zipmap(["a"], [1])`, `{"a":1}`},
		{`coalesce("", "x")`, `"x"`},
		{`coalesce(null, 2)`, `2`},
		{`length({a = 1, b = 2})`, `2`},
		{`coalescelist([], [1])`, `[1]`},
		{`compact(["a", "", "b"])`, `["a","b"]`},
		{`format("%s-%03d", "n", 7)`, `"n-007"`},
		{`formatlist("%s!", ["a", "b"])`, `["a!","b!"]`},
		{`join(",", split("-", "a-b"))`, `"a,b"`},
		{`"${lower("AB")}${upper("c")}${title("dd")}"`, `"abCDd"`},
		{`replace("a.b.c", ".", "/")`, `"a/b/c"`},
		{`replace("abc", "/[ac]/", "x")`, `"xbx"`},
		{`regex("[0-9]+", "ab123")`, `"123"`},
		{`regexall("[0-9]", "a1b2")`, `["1","2"]`},
		{`substr("hello", 1, 3)`, `"ell"`},
		{`trim("xxhixx", "x")`, `"hi"`},
		{`trimspace("  a ")`, `"a"`},
		{`trimprefix("v1.2", "v")`, `"1.2"`},
		{`trimsuffix("a.csv", ".csv")`, `"a"`},
		{`strrev("abc")`, `"cba"`},
		{`chomp("a\n")`, `"a"`},
		{`indent(2, "a\nb")`, `"a\n  b"`},
		{`jsondecode(jsonencode({a = [1, true]}))`, `{"a":[1,true]}`},
		{`csvdecode("a,b\n1,2\n")[0].b`, `"2"`},
		{`yamlencode({a = 1})`, `"\"a\": 1\n"`},
		{`tostring(1)`, `"1"`},
		{`tonumber("2") + 1`, `3`},
		{`tobool("true")`, `true`},
		{`tolist(["a"])`, `["a"]`},
		{`length(toset(["a", "a"]))`, `1`},
		{`tomap({a = "b"})`, `{"a":"b"}`},
		{`try(tonumber("x"), 5)`, `5`},
		{`can(tonumber("x"))`, `false`},
		{`basename("/a/b.csv")`, `"b.csv"`},
		{`dirname("/a/b.csv")`, `"/a"`},
		{`sha256("a")`, `"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"`},
		{`md5("a")`, `"0cc175b9c0f1b6a831c399e269772661"`},
		{`base64decode(base64encode("hi"))`, `"hi"`},
		{`uuidv5("dns", "example.com")`, `"cfbff0d1-9375-5685-968c-48ce8b15ae17"`},
		{`sum([1, 2, 3.5])`, `6.5`},
		{`fileexists("nope.txt")`, `false`},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			v, d := eval(t, c.expr)
			if d.HasErrors() {
				t.Fatalf("%s: %v", c.expr, d)
			}
			got := jsonOf(t, v)
			if got != c.want {
				t.Errorf("%s = %s, want %s", c.expr, got, c.want)
			}
		})
	}
	// Values known only after apply flow through as unknown, without error.
	fs0 := lang.Functions("")
	for name, args := range map[string][]cty.Value{
		"sum":    {cty.TupleVal([]cty.Value{cty.NumberIntVal(1), cty.UnknownVal(cty.Number)})},
		"length": {cty.UnknownVal(cty.List(cty.String))},
		"max":    {cty.NumberIntVal(1), cty.UnknownVal(cty.Number)},
		"join":   {cty.StringVal(","), cty.ListVal([]cty.Value{cty.UnknownVal(cty.String)})},
	} {
		v, err := fs0[name].Call(args)
		if err != nil || v.IsKnown() {
			t.Errorf("%s with an unknown argument = %#v, %v; want an unknown value", name, v, err)
		}
	}
	// Functions whose result differs per run are absent: plans must be stable.
	fs := lang.Functions("")
	for _, name := range []string{"timestamp", "uuid", "bcrypt"} {
		if _, ok := fs[name]; ok {
			t.Errorf("function %s should not exist", name)
		}
	}
	// abspath resolves and file reads relative to the configuration.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.txt"), []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, _ := hclsyntax.ParseExpression([]byte(`"${file("x.txt")}:${filesha256("x.txt")}"`), "e", hcl.InitialPos)
	v, d := e.Value(&hcl.EvalContext{Functions: lang.Functions(dir)})
	if d.HasErrors() || !strings.HasPrefix(v.AsString(), "content:ed7002b439e9ac845f22357d822bac1444730fbdb6016d3ec9432297b9ec9f73") {
		t.Errorf("file/filesha256: %v %v", v, d)
	}
	_, d = e.Value(&hcl.EvalContext{Functions: lang.Functions(t.TempDir())})
	if !d.HasErrors() || !strings.Contains(d.Error(), "x.txt") {
		t.Errorf("file of a missing file: %v", d)
	}
}

func jsonOf(t *testing.T, v cty.Value) string {
	t.Helper()
	b, err := ctyJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseTarget(t *testing.T) {
	cases := []struct {
		in, want string
		all      bool
		err      bool
	}{
		{in: "dataset.a", want: "dataset.a", all: true},
		{in: "dataset.a[3]", want: "dataset.a[3]"},
		{in: `dataset.a["k"]`, want: `dataset.a["k"]`},
		{in: "training.t", want: "training.t", all: true},
		{in: "nosuchkind.a", err: true},
		{in: "dataset", err: true},
		{in: "dataset.a.b", err: true},
		{in: "dataset.a[", err: true},
		{in: "var.x", err: true},
		{in: "", err: true},
	}
	for _, c := range cases {
		tg, err := lang.ParseTarget(c.in)
		if c.err {
			if err == nil {
				t.Errorf("ParseTarget(%q) = %v, want an error", c.in, tg)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", c.in, err)
			continue
		}
		if tg.String() != c.want || tg.AllKeys != c.all {
			t.Errorf("ParseTarget(%q) = %s (all %v), want %s (all %v)", c.in, tg, tg.AllKeys, c.want, c.all)
		}
	}
	tg, _ := lang.ParseTarget("dataset.a[1]")
	a0, _ := lang.ParseInstance("dataset.a[0]")
	a1, _ := lang.ParseInstance("dataset.a[1]")
	if tg.Matches(a0) || !tg.Matches(a1) {
		t.Error("dataset.a[1] should match only dataset.a[1]")
	}
}

// TestVariablePrecedence checks the order of SPEC section 1: auto files,
// then -var-file, then the environment, then -var (the last one wins).
func TestVariablePrecedence(t *testing.T) {
	dir := t.TempDir()
	src := `
variable "a" {
  type = string
}
variable "b" {
  type = number
}
variable "c" {
  type = list(string)
}
variable "d" {
  type    = string
  default = "default"
}
variable "e" {
  type = string
}
`
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.lep.hcl", src)
	write("1.auto.lepvars.hcl", "a = \"auto1\"\nb = 1\nc = [\"auto\"]\n")
	write("2.auto.lepvars.hcl", "a = \"auto2\"\n")
	write("x.lepvars.hcl", "b = 2\nc = [\"file\"]\n")
	write("y.json", `{"c": ["json"]}`)
	cfg, d := lang.Load(dir)
	if d.HasErrors() {
		t.Fatal(d)
	}
	vals, missing, _, d := cfg.VariableValues(lang.VarInputs{
		VarFiles: []string{filepath.Join(dir, "x.lepvars.hcl"), filepath.Join(dir, "y.json")},
		Env:      []string{"LEPTON_VAR_b=3", "LEPTON_VAR_a=env", "PATH=/bin"},
		Vars:     []string{"a=var1", "a=var2"},
	})
	if d.HasErrors() {
		t.Fatal(d)
	}
	if len(missing) != 1 || missing[0] != "e" {
		t.Errorf("missing = %v, want [e]", missing)
	}
	vals["e"] = cty.StringVal("given")
	checked, d := cfg.CheckVariables(vals)
	if d.HasErrors() {
		t.Fatal(d)
	}
	want := map[string]string{"a": `"var2"`, "b": `3`, "c": `["json"]`, "d": `"default"`, "e": `"given"`}
	for k, w := range want {
		if got := jsonOf(t, checked[k]); got != w {
			t.Errorf("var.%s = %s, want %s", k, got, w)
		}
	}
	// A -var of the wrong type is an error naming the variable.
	_, _, _, d = cfg.VariableValues(lang.VarInputs{Vars: []string{"b=many"}})
	if !d.HasErrors() || !strings.Contains(d.Error(), "b") {
		t.Errorf("b=many: %v", d)
	}
	_, _, _, d = cfg.VariableValues(lang.VarInputs{Vars: []string{"nosuch=1"}})
	if !d.HasErrors() || !strings.Contains(d.Error(), "nosuch") {
		t.Errorf("nosuch=1: %v", d)
	}
}

func TestLoadDiagnostics(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string // substrings of the diagnostics, in any order
	}{
		{"one-line block with two arguments", `variable "x" { type = string, default = "a" }`, []string{"main.lep.hcl:1"}},
		{"unknown kind", "clusterr \"c\" {\n}\n", []string{"clusterr", "main.lep.hcl:1,1"}},
		{"duplicate variable", "variable \"v\" {\n}\nvariable \"v\" {\n}\n", []string{"Duplicate", "main.lep.hcl:3,1"}},
		{"bad name", "dataset \"1bad\" {\n  source {\n    inline = { x = [1] }\n  }\n}\n", []string{"1bad"}},
		{"count and for_each", "dataset \"d\" {\n  count    = 1\n  for_each = toset([\"a\"])\n  source {\n    inline = { x = [1] }\n  }\n}\n", []string{"count", "for_each"}},
		{"missing source", "dataset \"d\" {\n}\n", []string{"source"}},
		{"self reference", "dataset \"d\" {\n  source {\n    inline = { x = [1] }\n  }\n  label = dataset.d.digest\n}\n", []string{"dataset.d"}},
		{"lifecycle unknown argument", "dataset \"d\" {\n  source {\n    inline = { x = [1] }\n  }\n  lifecycle {\n    prevent = true\n  }\n}\n", []string{"prevent", "main.lep.hcl:6"}},
		{"depends_on not a reference", "dataset \"d\" {\n  source {\n    inline = { x = [1] }\n  }\n  depends_on = [\"dataset.x\"]\n}\n", []string{"main.lep.hcl:5,17"}},
		{"validation without message", "variable \"v\" {\n  validation {\n    condition = true\n  }\n}\n", []string{"error_message"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, d := load(t, c.src)
			if !d.HasErrors() {
				t.Fatalf("no error for:\n%s", c.src)
			}
			all := d.Error()
			for _, dd := range d {
				if dd.Subject != nil {
					all += " " + dd.Subject.String()
				}
			}
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("diagnostics lack %q: %s", w, all)
				}
			}
		})
	}
}

func TestLoadValid(t *testing.T) {
	cfg, d := load(t, `
lepton {
  required_version = ">= 0.1"
  backend "local" {
    path = "s.json"
  }
}
variable "n" {
  type    = number
  default = 2
}
locals {
  names = [for i in range(var.n) : "shard-${i}"]
}
dataset "d" {
  for_each = toset(local.names)
  source {
    inline = { x = [1, 2], y = [each.key, "b"] }
  }
  lifecycle {
    create_before_destroy = true
    ignore_changes        = [label]
  }
}
dataset "e" {
  count      = var.n
  depends_on = [dataset.d]
  source {
    inline = { x = [count.index] }
  }
}
output "digests" {
  value = { for k, v in dataset.d : k => v.digest }
}
`)
	if d.HasErrors() {
		t.Fatal(d)
	}
	if len(cfg.Resources) != 2 || cfg.Lepton == nil || cfg.Lepton.Backend == nil || cfg.Lepton.Backend.Type != "local" {
		t.Errorf("config: %+v", cfg)
	}
	vals, _, _, d := cfg.VariableValues(lang.VarInputs{})
	if d.HasErrors() {
		t.Fatal(d)
	}
	s := lang.NewScope(cfg, vals)
	for _, r := range cfg.Resources {
		refs, _ := cfg.ResourceRefs(r)
		lookup := func(ref lang.Reference) cty.Value {
			if ref.Kind == lang.RefLocal {
				return cty.TupleVal([]cty.Value{cty.StringVal("shard-0"), cty.StringVal("shard-1")})
			}
			return cty.DynamicVal
		}
		keys, _, d := s.Expand(r, s.EvalContext(refs, lookup, nil))
		if d.HasErrors() {
			t.Fatalf("%s: %v", r.Addr, d)
		}
		var ks []string
		for _, k := range keys {
			ks = append(ks, r.Addr.Instance(k).String())
		}
		want := map[string]string{"d": `dataset.d["shard-0"] dataset.d["shard-1"]`, "e": "dataset.e[0] dataset.e[1]"}[r.Addr.Name]
		if strings.Join(ks, " ") != want {
			t.Errorf("%s expands to %v, want %s", r.Addr, ks, want)
		}
	}
}
