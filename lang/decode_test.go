package lang

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// decodeCases are resource bodies of every kind, good and bad.
var decodeCases = []string{
	`dataset "a" {
  source {
    inline = { x = [1, 2, 3], y = [0, 1, 0] }
  }
  label = "y"
}`,
	`dataset "a" {
  source { file = "x.csv" }
  source { file = "y.csv" }
  split { train = 0.8 validation = 0.1 test = 0.1 }
  nope = 1
}`,
	`dataset "a" {
  label = ["not", "a", "string"]
}`,
	`training "t" {
  dataset = "dataset.a"
  model { kind = "mlp" hidden = [64] }
  epochs = "many"
  unknown_block {}
}`,
	`endpoint "e" {
  model = "training.t"
  replicas = var.n
}`,
	`cluster "c" {
  gpu = "A100"
  count_gpus = 1
}`,
	`batch_inference "b" {}`,
	`training "t" {
  dataset = dataset.a
  model {
    kind   = var.kind
    hidden = [for i in range(local.n) : i * 2]
  }
  epochs = count.index + each.value
}`,
	`dataset "d" {
  source {
    inline = { x = [path.module, var.x] }
    sql { driver = "postgres" dsn = var.dsn query = "select 1" }
  }
  label = local.label
}`,
}

func TestDecoderMatchesHcldec(t *testing.T) {
	cases := append([]string{}, decodeCases...)
	examples, _ := filepath.Glob("../examples/*/*.lep.hcl")
	for _, e := range examples {
		b, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, string(b))
	}
	for i, src := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkDecoder(t, src) })
	}
}

func checkDecoder(t *testing.T, src string) {
	t.Helper()
	f, d := hclsyntax.ParseConfig([]byte(src), "f.lep.hcl", hcl.InitialPos)
	if d.HasErrors() {
		return
	}
	schemas := Schemas()
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
		"var": cty.ObjectVal(map[string]cty.Value{"n": cty.UnknownVal(cty.Number)}),
	}, Functions: Functions(".")}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		s := schemas[b.Type]
		if s == nil || len(b.Labels) != 1 {
			continue
		}
		_, body, _ := b.Body.PartialContent(resourceMetaSchema)
		want, wantDiags := hcldec.Decode(body, s.Config, ctx)
		got, gotDiags := s.decode(body, ctx)
		if !got.RawEquals(want) {
			t.Fatalf("%s %s: values differ:\n got %#v\nwant %#v", b.Type, b.Labels[0], got, want)
		}
		if g, w := diagStrings(gotDiags), diagStrings(wantDiags); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("%s %s: diagnostics differ:\n got %q\nwant %q", b.Type, b.Labels[0], g, w)
		}
		if g, w := traversalStrings(s.variables(body)), traversalStrings(hcldec.Variables(body, s.Config)); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("%s %s: variables differ:\n got %q\nwant %q", b.Type, b.Labels[0], g, w)
		}
	}
}

// traversalStrings are the traversals with their ranges, sorted.
func traversalStrings(ts []hcl.Traversal) []string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s %v", t.RootName(), t.SourceRange()))
	}
	sort.Strings(out)
	return out
}

// diagStrings are the diagnostics sorted (hcldec reports in map order).
func diagStrings(ds hcl.Diagnostics) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%v %s %s %v", d.Severity, d.Summary, d.Detail, d.Subject))
	}
	sort.Strings(out)
	return out
}

func TestEveryKindHasADecoder(t *testing.T) {
	for kind, s := range Schemas() {
		if s.types == nil || s.cachedTypes().decoder == nil {
			t.Errorf("%s is decoded by hcldec.Decode, not the compiled decoder", kind)
		}
	}
}

func FuzzDecoder(f *testing.F) {
	for _, c := range decodeCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, src string) { checkDecoder(t, src) })
}
