package lang

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// validateKind checks structure that a schema cannot say: a dataset's source
// names exactly one kind of source.
func validateKind(r *ResourceBlock) hcl.Diagnostics {
	if r.Addr.Kind != "dataset" {
		return nil
	}
	content, _, _ := r.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "source"}}})
	var diags hcl.Diagnostics
	for i, b := range content.Blocks {
		if i > 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate source block", Detail: "A dataset has exactly one source block.", Subject: b.DefRange.Ptr()})
			continue
		}
		sc, _, _ := b.Body.PartialContent(&hcl.BodySchema{
			Attributes: []hcl.AttributeSchema{{Name: "builtin"}, {Name: "file"}, {Name: "url"}, {Name: "object"}, {Name: "inline"}},
			Blocks:     []hcl.BlockHeaderSchema{{Type: "sql"}, {Type: "log"}},
		})
		var kinds []string
		for n := range sc.Attributes {
			kinds = append(kinds, n)
		}
		for _, bb := range sc.Blocks {
			kinds = append(kinds, bb.Type)
		}
		switch len(kinds) {
		case 1:
		case 0:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing data source", Detail: "The source block must set exactly one of builtin, file, url, object, inline, or a sql or log block.", Subject: b.DefRange.Ptr()})
		default:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Conflicting data sources", Detail: fmt.Sprintf("The source block sets %s; it must set exactly one.", strings.Join(sortedCopy(kinds), " and ")), Subject: b.DefRange.Ptr()})
		}
	}
	return diags
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// ProviderSchemas are the arguments each provider block takes.
var providerArgs = map[string][]string{
	"local": {"workdir"},
	"aws":   {"region", "endpoint", "profile"},
	"gcp":   {"project", "region", "zone", "endpoint"},
	"azure": {"subscription_id", "location", "resource_group", "endpoint"},
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
