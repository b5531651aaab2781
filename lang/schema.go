package lang

import (
	"encoding/json"
	"sort"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/leptonml/lepton/lang/kinds"
	"github.com/leptonml/lepton/lang/kindspec"
	"github.com/zclconf/go-cty/cty"
)

// KindSchema describes one resource kind: the arguments a user writes (as an
// hcldec spec, so decoding, unknown-attribute and type errors come from hcl), the
// attributes the provider computes, and which arguments name other resources.
type KindSchema struct {
	Name   string
	Config hcldec.ObjectSpec
	// Computed attributes, known after apply (or at plan time when the provider
	// can compute them then). An attribute may be both an argument and computed
	// (cluster.instance_type): the argument wins when set.
	Computed map[string]cty.Type
	// Refs are arguments that take a whole resource (dataset = dataset.digits);
	// the value stored is the referenced resource's id, and a change to the
	// referenced resource is a reason to replace this one.
	Refs []string
	// RefKinds gives the kind each of Refs takes.
	RefKinds map[string]string
	// Placement are the Refs whose referenced resource's in-place updates
	// do not replace this one (where it runs, not what it reads).
	Placement []string
	// Sensitive computed attributes, never shown.
	Sensitive []string
	// DerivedFromData are computed attributes that carry values of the data
	// the resource reads: sensitive whenever one of the arguments is.
	DerivedFromData []string
	// Priced kinds carry price_per_hour: plans show their cost.
	Priced bool
	// Validate checks what the spec cannot say (nil: nothing more).
	Validate func(body hcl.Body) hcl.Diagnostics
	// Defaults are the values the provider uses for arguments left unset.
	// Plans show them as Terraform shows a provider's defaults (auth = true
	// in a planned endpoint), so a reviewer or a policy sees what will run;
	// the stored arguments stay as written.
	Defaults map[string]cty.Value
	// Version is the version of the kind's state attributes, recorded with
	// each instance in state; Upgrade turns attributes of an older version
	// (from) into the current one, as Terraform's UpgradeResourceState.
	Version int
	Upgrade func(from int, attrs json.RawMessage) (json.RawMessage, error)
	// types caches ConfigType and StateType: the planner asks for them for
	// every instance, and hcldec.ImpliedType walks the whole spec.
	types *kindTypes
}

type kindTypes struct {
	once              sync.Once
	config, stateType cty.Type
	decoder           *objectDecoder // nil: the spec needs hcldec.Decode
}

func (s *KindSchema) cachedTypes() *kindTypes {
	s.types.once.Do(func() {
		s.types.config = s.impliedConfigType()
		s.types.stateType = s.stateTypeFrom(s.types.config)
		s.types.decoder = newObjectDecoder(s.Config)
	})
	return s.types
}

// decode evaluates a resource body by the kind's spec.
func (s *KindSchema) decode(body hcl.Body, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	if s.types != nil {
		if d := s.cachedTypes().decoder; d != nil {
			return d.decode(body, ctx)
		}
	}
	return hcldec.Decode(body, s.Config, ctx)
}

// variables are the traversals a resource body refers to.
func (s *KindSchema) variables(body hcl.Body) []hcl.Traversal {
	if s.types != nil {
		if d := s.cachedTypes().decoder; d != nil {
			return d.variables(body)
		}
	}
	return hcldec.Variables(body, s.Config)
}

// Schemas returns the schema of every resource kind, built from the kinds'
// specs (lang/kinds). It builds new values on each call so callers cannot
// share mutable state by accident; callers on a hot path keep the result.
func Schemas() map[string]*KindSchema {
	specs := kinds.All()
	m := make(map[string]*KindSchema, len(specs))
	for _, sp := range specs {
		m[sp.Name] = newKindSchema(sp)
	}
	return m
}

func newKindSchema(sp *kindspec.Spec) *KindSchema {
	s := &KindSchema{
		Name: sp.Name, Config: sp.Config, Computed: sp.Computed, Sensitive: sp.Sensitive,
		DerivedFromData: sp.DerivedFromData, Defaults: sp.Defaults, Priced: sp.Priced,
		Version: sp.Version, Upgrade: sp.Upgrade, Validate: sp.Validate, RefKinds: sp.Refs, Placement: sp.Placement,
		types: &kindTypes{},
	}
	for a := range sp.Refs {
		s.Refs = append(s.Refs, a)
	}
	sort.Strings(s.Refs)
	return s
}

// WithDefaults returns v, an instance's value (arguments or full state),
// with its unset arguments that have a default set to it. Unknown, null and
// non-object values are returned as they are, and so are marks.
func (s *KindSchema) WithDefaults(v cty.Value) cty.Value {
	if len(s.Defaults) == 0 || v == cty.NilVal || !v.IsKnown() || v.IsNull() {
		return v
	}
	uv, marks := v.Unmark()
	ty := uv.Type()
	if !ty.IsObjectType() {
		return v
	}
	var attrs map[string]cty.Value
	for name, def := range s.Defaults {
		if !ty.HasAttribute(name) || !ty.AttributeType(name).Equals(def.Type()) {
			continue
		}
		if av := uv.GetAttr(name); av.IsKnown() && av.IsNull() && !av.IsMarked() {
			if attrs == nil {
				attrs = uv.AsValueMap()
			}
			attrs[name] = def
		}
	}
	if attrs == nil {
		return v
	}
	return cty.ObjectVal(attrs).WithMarks(marks)
}

// ConfigType is the cty type of a kind's decoded arguments, with reference
// arguments as strings (the referenced resource's id).
func (s *KindSchema) ConfigType() cty.Type {
	if s.types != nil {
		return s.cachedTypes().config
	}
	return s.impliedConfigType()
}

func (s *KindSchema) impliedConfigType() cty.Type {
	t := hcldec.ImpliedType(s.Config)
	if len(s.Refs) == 0 {
		return t
	}
	atys := t.AttributeTypes()
	out := make(map[string]cty.Type, len(atys))
	for k, v := range atys {
		out[k] = v
	}
	for _, r := range s.Refs {
		out[r] = cty.String
	}
	return cty.Object(out)
}

// StateType is the full type of a resource instance's attributes: arguments,
// computed attributes and the id every resource has.
func (s *KindSchema) StateType() cty.Type {
	if s.types != nil {
		return s.cachedTypes().stateType
	}
	return s.stateTypeFrom(s.impliedConfigType())
}

func (s *KindSchema) stateTypeFrom(config cty.Type) cty.Type {
	atys := config.AttributeTypes()
	out := make(map[string]cty.Type, len(atys)+len(s.Computed)+1)
	for k, v := range atys {
		out[k] = v
	}
	for k, v := range s.Computed {
		out[k] = v
	}
	out["id"] = cty.String
	return cty.Object(out)
}
