package lang

import (
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/customdecode"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// objectDecoder decodes a body by an hcldec.ObjectSpec of AttrSpecs and
// BlockSpecs, giving the values and diagnostics hcldec.Decode gives (checked
// by TestDecoderMatchesHcldec and FuzzDecoder), with what hcldec recomputes
// on every call computed once: the body schema, and the null value of every
// absent nested block. hcldec rebuilds the nested block's object type for each
// absent block, which was most of decoding 10,000 dataset blocks. Diagnostics
// come in the order of the spec's sorted keys (hcldec's follow map order).
type objectDecoder struct {
	schema *hcl.BodySchema
	keys   []string
	attrs  map[string]*attrDecoder
	blocks map[string]*blockDecoder
}

type attrDecoder struct {
	spec *hcldec.AttrSpec
	null cty.Value
}

type blockDecoder struct {
	spec   *hcldec.BlockSpec
	nested *objectDecoder
	null   cty.Value
}

// newObjectDecoder compiles spec, or returns nil when it holds a kind of spec
// this decoder does not handle (the caller then uses hcldec.Decode).
func newObjectDecoder(spec hcldec.ObjectSpec) *objectDecoder {
	d := &objectDecoder{
		schema: hcldec.ImpliedSchema(spec),
		attrs:  map[string]*attrDecoder{},
		blocks: map[string]*blockDecoder{},
	}
	for k, s := range spec {
		switch s := s.(type) {
		case *hcldec.AttrSpec:
			d.attrs[k] = &attrDecoder{spec: s, null: cty.NullVal(s.Type.WithoutOptionalAttributesDeep())}
		case *hcldec.BlockSpec:
			nested, ok := s.Nested.(hcldec.ObjectSpec)
			if !ok {
				return nil
			}
			nd := newObjectDecoder(nested)
			if nd == nil {
				return nil
			}
			d.blocks[k] = &blockDecoder{spec: s, nested: nd, null: cty.NullVal(hcldec.ImpliedType(nested).WithoutOptionalAttributesDeep())}
		default:
			return nil
		}
		d.keys = append(d.keys, k)
	}
	sort.Strings(d.keys)
	return d
}

func (d *objectDecoder) decode(body hcl.Body, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	content, diags := body.Content(d.schema)
	vals := make(map[string]cty.Value, len(d.keys))
	for _, k := range d.keys {
		var v cty.Value
		var kd hcl.Diagnostics
		if a := d.attrs[k]; a != nil {
			v, kd = a.decode(content, ctx)
		} else {
			v, kd = d.blocks[k].decode(content, ctx)
		}
		vals[k] = v
		diags = append(diags, kd...)
	}
	return cty.ObjectVal(vals), diags
}

// decode is hcldec's AttrSpec.decode.
func (a *attrDecoder) decode(content *hcl.BodyContent, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	s := a.spec
	attr, exists := content.Attributes[s.Name]
	if !exists {
		return a.null, nil
	}
	if decodeFn := customdecode.CustomExpressionDecoderForType(s.Type); decodeFn != nil {
		v, diags := decodeFn(attr.Expr, ctx)
		if v == cty.NilVal {
			v = cty.UnknownVal(s.Type.WithoutOptionalAttributesDeep())
		}
		return v, diags
	}
	val, diags := attr.Expr.Value(ctx)
	conv, err := convert.Convert(val, s.Type)
	if err != nil {
		diags = append(diags, &hcl.Diagnostic{
			Severity:    hcl.DiagError,
			Summary:     "Incorrect attribute value type",
			Detail:      fmt.Sprintf("Inappropriate value for attribute %q: %s.", s.Name, err.Error()),
			Subject:     attr.Expr.Range().Ptr(),
			Context:     hcl.RangeBetween(attr.NameRange, attr.Expr.Range()).Ptr(),
			Expression:  attr.Expr,
			EvalContext: ctx,
		})
		return cty.UnknownVal(s.Type.WithoutOptionalAttributesDeep()), diags
	}
	return conv, diags
}

// decode is hcldec's BlockSpec.decode.
func (b *blockDecoder) decode(content *hcl.BodyContent, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var child *hcl.Block
	for _, candidate := range content.Blocks {
		if candidate.Type != b.spec.TypeName {
			continue
		}
		if child != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Duplicate %s block", b.spec.TypeName),
				Detail:   fmt.Sprintf("Only one block of type %q is allowed. Previous definition was at %s.", b.spec.TypeName, child.DefRange.String()),
				Subject:  &candidate.DefRange,
			})
			break
		}
		child = candidate
	}
	if child == nil {
		if b.spec.Required {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Missing %s block", b.spec.TypeName),
				Detail:   fmt.Sprintf("A block of type %q is required here.", b.spec.TypeName),
				Subject:  &content.MissingItemRange,
			})
		}
		return b.null, diags
	}
	v, cd := b.nested.decode(child.Body, ctx)
	return v, append(diags, cd...)
}

// variables is hcldec.Variables for the compiled spec, in the order of the
// spec's sorted keys (hcldec's follows map order).
func (d *objectDecoder) variables(body hcl.Body) []hcl.Traversal {
	content, _, _ := body.PartialContent(d.schema)
	var vars []hcl.Traversal
	for _, k := range d.keys {
		if a := d.attrs[k]; a != nil {
			if attr, ok := content.Attributes[a.spec.Name]; ok {
				vars = append(vars, attr.Expr.Variables()...)
			}
			continue
		}
		b := d.blocks[k]
		for _, c := range content.Blocks {
			if c.Type == b.spec.TypeName {
				vars = append(vars, b.nested.variables(c.Body)...)
				break
			}
		}
	}
	return vars
}
