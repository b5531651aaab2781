package catalog

import (
	"strings"
	"testing"
)

func TestCheckGPU(t *testing.T) {
	c := Default()
	for _, tc := range []struct {
		spec string
		want []string // in the error; none: valid
	}{
		{spec: "A100:8"},
		{spec: "a100-80gb:8"},
		{spec: "24GB+"},
		{spec: "L4"},
		{spec: "A100:-2", want: []string{`gpu "A100:-2"`, "count -2"}},
		{spec: "A100:x", want: []string{"not a whole number"}},
		{spec: "Z9000:8", want: []string{`unknown GPU "Z9000"`, "A100", "H100", "L4"}},
		{spec: "H1000:8", want: []string{`unknown GPU "H1000"`, `did you mean "H100"?`}},
		{spec: "A1000", want: []string{`did you mean "A100"?`}},
	} {
		_, err := c.CheckGPU(tc.spec)
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("CheckGPU(%q) = %v, want valid", tc.spec, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("CheckGPU(%q) succeeded", tc.spec)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("CheckGPU(%q) = %v, want %q in it", tc.spec, err, w)
			}
		}
	}
}

func TestCheckInstanceType(t *testing.T) {
	c := Default()
	known := c.Offers()[0]
	if err := c.CheckInstanceType(known.InstanceType, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckInstanceType(strings.ToUpper(known.InstanceType), []string{known.Cloud}); err != nil {
		t.Fatalf("case-insensitive match: %v", err)
	}
	err := c.CheckInstanceType("p4d.24xlarg", nil)
	if err == nil || !strings.Contains(err.Error(), `"p4d.24xlarge"`) || !strings.Contains(err.Error(), "did you mean") {
		t.Fatalf("CheckInstanceType(typo) = %v", err)
	}
	if err := c.CheckInstanceType("m9.huge", []string{"aws"}); err == nil || !strings.Contains(err.Error(), "aws offers") {
		t.Fatalf("CheckInstanceType(unknown) = %v", err)
	}
}
