package lang

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// validateKind runs the kind's own checks, those its spec cannot say.
func validateKind(r *ResourceBlock) hcl.Diagnostics {
	if r.Schema == nil || r.Schema.Validate == nil {
		return nil
	}
	return r.Schema.Validate(r.Body)
}

// ProviderSchemas are the arguments each provider block takes.
var providerArgs = map[string][]string{
	"local":      {"workdir"},
	"aws":        {"region", "endpoint", "profile", "storage"},
	"gcp":        {"project", "region", "zone", "endpoint", "storage"},
	"azure":      {"subscription_id", "location", "resource_group", "endpoint", "storage", "storage_account"},
	"kubernetes": {"kubeconfig", "context", "namespace", "registry"},
}

// ProviderSchema returns the body schema of a provider block.
func ProviderSchema(name string) *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, a := range providerArgs[name] {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: a})
	}
	return s
}

func validateProvider(p *Provider) hcl.Diagnostics {
	_, diags := p.Body.Content(ProviderSchema(p.Name))
	return diags
}

// DecodeProvider evaluates a provider block into a map of strings.
func (s *Scope) DecodeProvider(p *Provider, ctx *hcl.EvalContext) (map[string]string, hcl.Diagnostics) {
	content, diags := p.Body.Content(ProviderSchema(p.Name))
	out := map[string]string{}
	for name, a := range content.Attributes {
		v, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() || v.IsNull() {
			continue
		}
		v, _ = v.Unmark()
		if !v.IsKnown() || v.Type() != cty.String {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid provider argument", Detail: fmt.Sprintf("%s must be a known string.", name), Subject: a.Expr.Range().Ptr()})
			continue
		}
		out[name] = v.AsString()
	}
	return out, diags
}
