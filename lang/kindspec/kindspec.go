// Package kindspec is how a resource kind describes itself to the language:
// its arguments as an hcldec spec, the attributes its provider computes, the
// arguments that take a whole resource, the checks a spec cannot express,
// and the version of its state. Each kind declares one Spec in its own
// package under lang/kinds; lang builds its schemas from them and never
// names a kind itself.
package kindspec

import (
	"encoding/json"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

// Spec describes one resource kind.
type Spec struct {
	// Name is the block type: `training "x" { ... }`.
	Name string
	// Config is what a user writes.
	Config hcldec.ObjectSpec
	// Computed attributes, known after apply (or at plan time when the
	// provider can compute them then). An attribute may be both an argument
	// and computed (cluster.instance_type): the argument wins when set.
	Computed map[string]cty.Type
	// Refs are arguments that take a whole resource (dataset = dataset.x),
	// with the kind each one takes; the value stored is the referenced
	// resource's id, and a change to it is a reason to replace this one.
	Refs map[string]string
	// Placement are the Refs that say where the resource runs, not what it
	// reads (a training's cluster): an in-place update of the referenced
	// resource (a resized cluster) does not replace this one; a replacement
	// does.
	Placement []string
	// Sensitive computed attributes, never shown.
	Sensitive []string
	// DerivedFromData are computed attributes that carry values of the data
	// the resource reads (column names, class labels, statistics): they are
	// sensitive whenever one of the arguments is.
	DerivedFromData []string
	// Defaults are the values the provider uses for arguments left unset,
	// shown in plans as Terraform shows a provider's defaults.
	Defaults map[string]cty.Value
	// Priced kinds carry price_per_hour: plans show their cost.
	Priced bool
	// Version is the version of the kind's state attributes; Upgrade turns
	// attributes of an older version (from) into the current one.
	Version int
	Upgrade func(from int, attrs json.RawMessage) (json.RawMessage, error)
	// Validate checks what the spec cannot say, on the resource's body
	// (meta-arguments removed); nil when there is nothing more to check.
	Validate func(body hcl.Body) hcl.Diagnostics
}

// Attr is an optional argument.
func Attr(name string, t cty.Type) *hcldec.AttrSpec {
	return &hcldec.AttrSpec{Name: name, Type: t}
}

// Required is a required argument.
func Required(name string, t cty.Type) *hcldec.AttrSpec {
	return &hcldec.AttrSpec{Name: name, Type: t, Required: true}
}

// Block is an optional nested block, decoded as an object (null when absent).
func Block(name string, nested hcldec.ObjectSpec) *hcldec.BlockSpec {
	return &hcldec.BlockSpec{TypeName: name, Nested: nested}
}

// Types the kinds' specs use.
var (
	Str    = cty.String
	Num    = cty.Number
	Bool   = cty.Bool
	Dyn    = cty.DynamicPseudoType
	Strs   = cty.List(cty.String)
	Nums   = cty.List(cty.Number)
	StrMap = cty.Map(cty.String)
)
