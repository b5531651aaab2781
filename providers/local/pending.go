package local

import (
	"context"
	"fmt"

	"github.com/leptonml/lepton/providers"
	"github.com/zclconf/go-cty/cty"
)

// pending plans a kind whose runtime has not landed yet, so that plans are
// complete and reviewable, and refuses to apply it with an error naming what
// is missing: never a silent success.
type pending struct {
	kind       string
	missing    string
	replaceAll bool     // any argument change replaces
	inPlace    []string // arguments that change in place (others replace)
}

func (p *pending) Plan(_ context.Context, req providers.PlanRequest) (providers.PlanResponse, error) {
	if !req.Prior.IsNull() && sameArgs(req.Prior, req.Config) {
		return providers.PlanResponse{Planned: req.Prior}, nil
	}
	planned := withComputed(p.kind, req.Config, nil)
	resp := providers.PlanResponse{Planned: planned}
	if req.Prior.IsNull() {
		return resp, nil
	}
	for _, name := range changedArgs(req.Prior, req.Config) {
		if p.replaceAll || !contains(p.inPlace, name) {
			resp.RequiresReplace = append(resp.RequiresReplace, cty.GetAttrPath(name))
		}
	}
	return resp, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (p *pending) Apply(context.Context, providers.ApplyRequest) (cty.Value, error) {
	return cty.NilVal, fmt.Errorf("the local provider cannot apply %s resources yet: %s has not landed in this version of lepton", p.kind, p.missing)
}

func (p *pending) Read(_ context.Context, req providers.ReadRequest) (cty.Value, error) {
	return req.Current, nil
}

func (p *pending) Delete(context.Context, providers.DeleteRequest) error { return nil }
