package catalog

import (
	"strings"
	"testing"
)

func TestParseGPU(t *testing.T) {
	tests := []struct {
		in   string
		want GPUSpec
	}{
		{"A100", GPUSpec{Model: "A100", Count: 1}},
		{"a100:8", GPUSpec{Model: "A100", Count: 8}},
		{" H100 : 8 ", GPUSpec{Model: "H100", Count: 8}},
		{"A100-80GB", GPUSpec{Model: "A100", MemoryGB: 80, Count: 1}},
		{"a100-80gb:4", GPUSpec{Model: "A100", MemoryGB: 80, Count: 4}},
		{"L4", GPUSpec{Model: "L4", Count: 1}},
		{"t4:4", GPUSpec{Model: "T4", Count: 4}},
		{"24GB+", GPUSpec{MinMemoryGB: 24, Count: 1}},
		{"24gb+:2", GPUSpec{MinMemoryGB: 24, Count: 2}},
		{"V100-32GB:8", GPUSpec{Model: "V100", MemoryGB: 32, Count: 8}},
		{"L40S", GPUSpec{Model: "L40S", Count: 1}},
		{"1.5GB+", GPUSpec{MinMemoryGB: 1.5, Count: 1}},
	}
	for _, tt := range tests {
		got, err := ParseGPU(tt.in)
		if err != nil {
			t.Errorf("ParseGPU(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseGPU(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseGPUErrors(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"", "empty"},
		{"   ", "empty"},
		{":8", "missing GPU name"},
		{"A100:", "count \"\" is not a whole number"},
		{"A100:x", "count \"x\" is not a whole number"},
		{"A100:0", "count 0 out of range"},
		{"A100:-1", "count -1 out of range"},
		{"A100:65", "count 65 out of range"},
		{"A100:8:2", "more than one ':'"},
		{"GB+", "memory bound"},
		{"xGB+", "memory bound"},
		{"0GB+", "not a positive number"},
		{"80GB", "missing GPU model"},
		{"A 100", "unexpected character"},
		{"A100+", "unexpected character"},
	}
	for _, tt := range tests {
		_, err := ParseGPU(tt.in)
		if err == nil {
			t.Errorf("ParseGPU(%q) succeeded, want error containing %q", tt.in, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "gpu ") {
			t.Errorf("ParseGPU(%q) error %q, want it to contain %q and name the gpu argument", tt.in, err, tt.wantErr)
		}
	}
}

func TestGPUSpecMatches(t *testing.T) {
	offer := func(gpu string, count int, mem float64) *Offer {
		return &Offer{GPU: gpu, GPUCount: count, GPUMemoryGB: mem, model: baseModel(gpu)}
	}
	a100 := offer("A100", 8, 40)
	a100x80 := offer("A100-80GB", 8, 80)
	a10g := offer("A10G", 1, 24)
	t4 := offer("T4", 1, 16)
	tests := []struct {
		spec  string
		offer *Offer
		want  bool
	}{
		{"A100:8", a100, true},
		{"A100:8", a100x80, true}, // A100 means any memory size
		{"A100-80GB:8", a100x80, true},
		{"A100-80GB:8", a100, false},
		{"A100-40GB:8", a100, true},
		{"A100", a100, false}, // count must be equal
		{"a10g", a10g, true},
		{"A10", a10g, false}, // A10 and A10G are different GPUs
		{"24GB+", a10g, true},
		{"24GB+", t4, false},
		{"16GB+", t4, true},
		{"48GB+:8", a100x80, true},
		{"48GB+:8", a100, false},
	}
	for _, tt := range tests {
		g, err := ParseGPU(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Matches(tt.offer); got != tt.want {
			t.Errorf("%q matches %s:%d (%vGB) = %v, want %v", tt.spec, tt.offer.GPU, tt.offer.GPUCount, tt.offer.GPUMemoryGB, got, tt.want)
		}
	}
}

func FuzzParseGPU(f *testing.F) {
	for _, s := range []string{"A100", "a100-80gb:8", "24GB+:2", ":", "GB+", "-80GB", "A100:8:8", "1e3GB+", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGPU(s)
		if err != nil {
			return
		}
		if g.Count < 1 || g.Count > maxGPUsPerNode {
			t.Fatalf("ParseGPU(%q) count %d out of range", s, g.Count)
		}
		if g.Model == "" && g.MinMemoryGB <= 0 {
			t.Fatalf("ParseGPU(%q) = %+v: neither model nor memory bound", s, g)
		}
		// The canonical form parses back to the same spec.
		again, err := ParseGPU(g.String())
		if err != nil || again != g {
			t.Fatalf("ParseGPU(%q) = %+v; its String %q parses to %+v, %v", s, g, g.String(), again, err)
		}
	})
}
