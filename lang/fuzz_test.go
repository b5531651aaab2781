package lang_test

import (
	"context"
	"io"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/local"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

func ctyJSON(v cty.Value) (string, error) {
	b, err := ctyjson.Marshal(v, v.Type())
	return string(b), err
}

// outside matches configurations that would reach outside the process
// (files, URLs, cloud objects, databases, logs, builtin downloads): the
// fuzzer sticks to inline data.
var outside = regexp.MustCompile(`file|url|object|sql|log|builtin|path|cluster|provider|backend`)

// FuzzLoad loads arbitrary configuration text and, when it loads, plans it
// with the local provider on an empty state and renders the plan every way:
// nothing may panic, whatever the input.
func FuzzLoad(f *testing.F) {
	seeds := []string{
		"",
		`dataset "a" {
  source {
    inline = { x = [1, 2, 3], y = [0, 1, 0] }
  }
  label = "y"
}`,
		`variable "n" {
  type    = number
  default = 2
}
locals {
  ks = toset([for i in range(var.n) : "k${i}"])
}
dataset "d" {
  for_each = local.ks
  source {
    inline = { v = [each.key, "b"], w = [1, 2] }
  }
}
dataset "e" {
  count      = var.n
  depends_on = [dataset.d]
  source {
    inline = { x = [count.index, 2] }
  }
}
output "o" {
  value = [for k, d in dataset.d : d.digest]
}`,
		`variable "s" {
  type      = string
  default   = "hidden"
  sensitive = true
}
dataset "a" {
  source {
    inline = { t = [var.s, "x"], u = [1, 2] }
  }
  lifecycle {
    create_before_destroy = true
    ignore_changes        = [label]
  }
}
training "t" {
  dataset = dataset.a
  epochs  = 1
  model {
    kind   = "mlp"
    hidden = [4]
  }
}
batch_inference "b" {
  model   = training.t.model
  dataset = dataset.a
  output  = "o.csv"
}
endpoint "e" {
  model = training.t.model
}
output "s" {
  value     = var.s
  sensitive = true
}`,
		`dataset "a" {
  source {
    inline = { x = [1] }
  }
  label = dataset.b.digest
}
dataset "b" {
  source {
    inline = { x = [1] }
  }
  label = dataset.a.digest
}`,
		`dataset "x" {
  for_each = 5
  source {
    inline = { x = [1, 2 }
  }
}`,
		`variable "v" {
  type = object({ a = list(number), b = optional(string, "z") })
  default = { a = [1] }
  validation {
    condition     = length(var.v.a) > 0
    error_message = "a must not be empty."
  }
}
dataset "d" {
  count = length(var.v.a)
  source {
    inline = { a = var.v.a, b = [var.v.b] }
  }
}`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if outside.MatchString(src) || len(src) > 1<<14 {
			return
		}
		dir := t.TempDir()
		cfg, d := lang.LoadSources(dir, []string{"main.lep.hcl"}, map[string][]byte{"main.lep.hcl": []byte(src)})
		if cfg == nil || d.HasErrors() {
			return
		}
		vals, missing, _, d := cfg.VariableValues(lang.VarInputs{})
		if d.HasErrors() {
			return
		}
		for _, name := range missing {
			raw := "1"
			v, d := cfg.ConvertVariable(cfg.Variables[name], cty.NilVal, &raw, "the fuzzer", cfg.Variables[name].DeclRange)
			if d.HasErrors() {
				return
			}
			vals[name] = v
		}
		vals, d = cfg.CheckVariables(vals)
		if d.HasErrors() {
			return
		}
		p := &planner.Planner{
			Config:    cfg,
			Scope:     lang.NewScope(cfg, vals),
			Providers: providers.NewRegistry(local.New()),
			Env:       providers.Env{Dir: dir, DataDir: filepath.Join(dir, ".lepton")},
		}
		p.Graph()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		plan, _ := p.Plan(ctx, nil, planner.Options{Refresh: true, Parallelism: 2})
		if plan == nil {
			return
		}
		planner.RenderHuman(io.Discard, plan, planner.Colors{})
		planner.RenderMarkdown(io.Discard, plan)
		if err := planner.RenderJSON(io.Discard, plan, cfg, "fuzz"); err != nil {
			t.Errorf("RenderJSON: %v", err)
		}
		if _, err := plan.Encode("fuzz"); err != nil && !plan.Errored {
			t.Errorf("Encode: %v", err)
		}
	})
}
