package kubernetes

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestLabelValue(t *testing.T) {
	long := "training.x[\"" + strings.Repeat("k", 80) + "\"]"
	tests := []struct{ in, want string }{
		{"training.digits", "training.digits"},
		{`training.x["a"]`, "training.x_5B_22a_22_5D"},
		{"endpoint.e[0]", "endpoint.e_5B0_5D"},
		{"cluster.gpu_1", "cluster.gpu_5F1"},
		{"6f1c1c52-6c0e-4c43-9a3b-0d6b9b8f4a11", "6f1c1c52-6c0e-4c43-9a3b-0d6b9b8f4a11"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := LabelValue(tt.in); got != tt.want {
			t.Errorf("LabelValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	seen := map[string]string{}
	for _, in := range []string{long, long + "x", "_a", "a_", `training.x["a b"]`, `training.x["a_20b"]`, `training.x["a"]`, "training.x_5B_22a_22_5D"} {
		v := LabelValue(in)
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("LabelValue(%q) = %q: invalid: %v", in, v, errs)
		}
		if prev, ok := seen[v]; ok {
			t.Errorf("LabelValue(%q) = LabelValue(%q) = %q", in, prev, v)
		}
		seen[v] = in
	}
}

func TestObjectName(t *testing.T) {
	for in, want := range map[string]string{
		"training.digits":   "training-digits",
		"endpoint.my-model": "endpoint-my-model",
	} {
		if got := ObjectName(in); got != want {
			t.Errorf("ObjectName(%q) = %q, want %q", in, got, want)
		}
	}
	// Lossy or long addresses get a hash: still valid, still distinct.
	seen := map[string]string{}
	for _, in := range []string{
		"training.digits", "training.Digits", "training.digits_", `training.x["a"]`, `training.x["A"]`,
		`training.x[0]`, "training.x0", "endpoint." + strings.Repeat("m", 100), "endpoint." + strings.Repeat("m", 101),
		"1.x", "training.a--b", "training.a-b",
	} {
		n := ObjectName(in)
		if errs := validation.IsDNS1035Label(n); len(errs) > 0 {
			t.Errorf("ObjectName(%q) = %q: %v", in, n, errs)
		}
		if len(n) > MaxNameLength {
			t.Errorf("ObjectName(%q) = %q: longer than %d", in, n, MaxNameLength)
		}
		if prev, ok := seen[n]; ok {
			t.Errorf("ObjectName(%q) = ObjectName(%q) = %q", in, prev, n)
		}
		seen[n] = in
	}
}

func TestMetaSelector(t *testing.T) {
	m := Meta{Address: `training.x["a"]`, Lineage: "6f1c1c52-6c0e-4c43-9a3b-0d6b9b8f4a11"}
	want := "app.kubernetes.io/managed-by=lepton,lepton.dev/lineage=6f1c1c52-6c0e-4c43-9a3b-0d6b9b8f4a11,lepton.dev/address=training.x_5B_22a_22_5D"
	if got := m.Selector(); got != want {
		t.Errorf("Selector = %q, want %q", got, want)
	}
	if got := (Meta{Lineage: "l"}).Selector(); got != "app.kubernetes.io/managed-by=lepton,lepton.dev/lineage=l" {
		t.Errorf("lineage Selector = %q", got)
	}
}
