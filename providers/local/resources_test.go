package local

import (
	"strings"
	"testing"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/clusters"
	"github.com/zclconf/go-cty/cty"
)

// planCompute checks max_restarts and a resources block at their places,
// and shows the chosen offer and its price.
func TestPlanCompute(t *testing.T) {
	cl := clusters.New(clusters.Options{})
	aws := map[string]map[string]string{"aws": {"region": "us-east-1"}}
	res := cty.ObjectVal(map[string]cty.Value{"gpu": cty.StringVal("A100:8"), "spot": cty.True})
	for _, tc := range []struct {
		name      string
		cfg       map[string]cty.Value
		providers map[string]map[string]string
		wantErr   string
		wantArg   string
	}{
		{"offer", map[string]cty.Value{"resources": res}, aws, "", ""},
		// A batch inference's model is unknown until its training ran.
		{"offer, model unknown", map[string]cty.Value{"resources": res, "model": cty.UnknownVal(cty.String)}, aws, "", ""},
		{"bad max_restarts", map[string]cty.Value{"resources": res, "max_restarts": cty.NumberFloatVal(1.5)}, aws, "whole number", "max_restarts"},
		{"negative max_restarts", map[string]cty.Value{"max_restarts": cty.NumberIntVal(-1)}, aws, "whole number", "max_restarts"},
		{"no cloud", map[string]cty.Value{"resources": res}, nil, `no provider "aws", "gcp" or "azure" block`, "resources"},
		{"and a cluster", map[string]cty.Value{"resources": res, "cluster": cty.StringVal("cluster.gpu")}, aws, "not both", "resources"},
		{"no offer", map[string]cty.Value{"resources": cty.ObjectVal(map[string]cty.Value{"gpu": cty.StringVal("A100:8"), "max_price_per_hour": cty.NumberFloatVal(0.01)})}, aws, "max_price_per_hour", "resources"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp providers.PlanResponse
			err := planCompute(cl, cty.ObjectVal(tc.cfg), providers.Env{Providers: tc.providers}, &resp)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if resp.Compute == nil || resp.Compute.Cloud != "aws" || !resp.Compute.Spot || resp.Compute.PricePerHour <= 0 || resp.Compute.Nodes != 1 {
					t.Fatalf("compute %+v", resp.Compute)
				}
				if len(resp.Detail) != 3 || !strings.HasPrefix(resp.Detail[0], "offer: aws ") || !strings.Contains(resp.Detail[1], "while the run goes") {
					t.Fatalf("detail %q", resp.Detail)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if got := strings.Join(providers.ArgPath(err), "."); got != tc.wantArg {
				t.Errorf("error at %q, want %q", got, tc.wantArg)
			}
		})
	}
}

// A placement known only after apply is chosen then: no offer, no error.
func TestPlanComputeUnknown(t *testing.T) {
	cl := clusters.New(clusters.Options{})
	aws := map[string]map[string]string{"aws": {"region": "us-east-1"}}
	for name, cfg := range map[string]map[string]cty.Value{
		"resources": {"resources": cty.ObjectVal(map[string]cty.Value{"gpu": cty.UnknownVal(cty.String)})},
		"cluster":   {"resources": cty.ObjectVal(map[string]cty.Value{"gpu": cty.StringVal("A100:8")}), "cluster": cty.UnknownVal(cty.String)},
	} {
		t.Run(name, func(t *testing.T) {
			var resp providers.PlanResponse
			if err := planCompute(cl, cty.ObjectVal(cfg), providers.Env{Providers: aws}, &resp); err != nil || resp.Compute != nil {
				t.Fatalf("compute %+v, err %v; want neither", resp.Compute, err)
			}
		})
	}
}
