package runcompute_test

import (
	"strings"
	"testing"

	"github.com/leptonml/lepton/lang"
)

// A training or batch_inference with both a cluster and resources is an
// error at its resources block (file:line:col); either alone is fine.
func TestClusterAndResourcesConflict(t *testing.T) {
	const both = `cluster "gpu" {
  clouds = ["local"]
}

dataset "d" {
  source {
    inline = [{ x = 1, y = 2 }]
  }
  label = "y"
}

training "t" {
  dataset = dataset.d
  cluster = cluster.gpu
  resources {
    gpu = "A100:8"
  }
}
`
	for _, tc := range []struct {
		name, src, want string
	}{
		{"training", both, "main.lep.hcl:15,3-12"},
		{"batch_inference", both + `
batch_inference "b" {
  model   = training.t.model
  dataset = dataset.d
  output  = "out.jsonl"
  resources {
    gpu = "A100:8"
  }
}
`, "Conflicting placement"},
		{"resources only", strings.Replace(both, "  cluster = cluster.gpu\n", "", 1), ""},
		{"cluster only", strings.Replace(both, "  resources {\n    gpu = \"A100:8\"\n  }\n", "", 1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := lang.LoadSources(t.TempDir(), []string{"main.lep.hcl"}, map[string][]byte{"main.lep.hcl": []byte(tc.src)})
			got := diags.Error()
			if tc.want == "" {
				if diags.HasErrors() {
					t.Fatalf("unexpected errors: %s", got)
				}
				return
			}
			if !diags.HasErrors() || !strings.Contains(got, tc.want) || !strings.Contains(got, "Conflicting placement") {
				t.Fatalf("diagnostics %q, want %q", got, tc.want)
			}
		})
	}
}
