package gcp

import (
	"regexp"
	"strings"
	"testing"
)

func TestLabelValue(t *testing.T) {
	tests := []struct {
		in       string
		wantSame bool
	}{
		{"3f0c1c9e-8a51-4d0b-9c3e-2b7f1d0a9e11", true},
		{"cluster_gpu", true},
		{"cluster.gpu", false},
		{`cluster.gpu["Train-A"]`, false},
		{"UPPER", false},
		{strings.Repeat("a", 64), false},
		{"", true},
	}
	for _, tt := range tests {
		got := LabelValue(tt.in)
		if !validLabelValue.MatchString(got) {
			t.Errorf("LabelValue(%q) = %q breaks the label rules", tt.in, got)
		}
		if (got == tt.in) != tt.wantSame {
			t.Errorf("LabelValue(%q) = %q, kept as is: %v, want %v", tt.in, got, got == tt.in, tt.wantSame)
		}
	}
	if LabelValue("cluster.gpu") == LabelValue("cluster_gpu") || LabelValue("A") == LabelValue("a") {
		t.Error("distinct inputs share a label value")
	}
}

var gcpName = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

func TestInstanceName(t *testing.T) {
	for _, addr := range []string{"cluster.gpu", `cluster.gpu["Train-A"]`, strings.Repeat("x.", 60), "", "___"} {
		n := InstanceName(addr, 12, "tok")
		if !gcpName.MatchString(n) {
			t.Errorf("InstanceName(%q) = %q breaks the name rule", addr, n)
		}
		if n != InstanceName(addr, 12, "tok") {
			t.Errorf("InstanceName(%q) is not stable", addr)
		}
	}
	if InstanceName("c", 0, "a") == InstanceName("c", 0, "b") || InstanceName("c", 0, "a") == InstanceName("c", 1, "a") {
		t.Error("different tokens or indexes share a name")
	}
}

func TestAcceleratorType(t *testing.T) {
	tests := map[string]string{
		"A100": "nvidia-tesla-a100", "a100-80gb": "nvidia-a100-80gb", "H100": "nvidia-h100-80gb",
		"L4": "nvidia-l4", "T4": "nvidia-tesla-t4", "V100": "nvidia-tesla-v100",
	}
	for in, want := range tests {
		if got, err := AcceleratorType(in); err != nil || got != want {
			t.Errorf("AcceleratorType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := AcceleratorType("A10G"); err == nil {
		t.Error("A10G (an AWS-only GPU) has no GCP type")
	}
}

func FuzzLabelValue(f *testing.F) {
	for _, s := range []string{"cluster.gpu", "3f0c1c9e-8a51", `a["b"]`, "ÄÖ", strings.Repeat("z", 80)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := LabelValue(s); !validLabelValue.MatchString(got) {
			t.Fatalf("LabelValue(%q) = %q", s, got)
		}
		if n := InstanceName(s, 3, s); !gcpName.MatchString(n) {
			t.Fatalf("InstanceName(%q) = %q", s, n)
		}
	})
}
