package planner

import (
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers/ctyval"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// decodeInstance turns a state resource into a cty value of its kind's state
// type, with its sensitive paths marked.
func decodeInstance(r *state.Resource, ty cty.Type) (cty.Value, error) {
	return decodeInstanceWith(r, ty, nil)
}

// upgradeResource returns r with attributes of the kind's current schema
// version: r itself when they are, else a copy upgraded by the kind. State
// written by a newer lepton (a newer schema version) is refused.
func upgradeResource(r *state.Resource, schema *lang.KindSchema) (*state.Resource, error) {
	if r.SchemaVersion == schema.Version {
		return r, nil
	}
	if r.SchemaVersion > schema.Version {
		return nil, fmt.Errorf("%s was written with version %d of the %s schema, newer than this lepton knows (%d): upgrade lepton", r.Address, r.SchemaVersion, r.Kind, schema.Version)
	}
	if schema.Upgrade == nil {
		return nil, fmt.Errorf("%s: the %s schema has no upgrade from version %d", r.Address, r.Kind, r.SchemaVersion)
	}
	attrs, err := schema.Upgrade(r.SchemaVersion, r.Attributes)
	if err != nil {
		return nil, fmt.Errorf("%s: upgrading its state from version %d of the %s schema: %w", r.Address, r.SchemaVersion, r.Kind, err)
	}
	c := *r
	c.Attributes, c.SchemaVersion = attrs, schema.Version
	return &c, nil
}

// decodeInstanceWith is decodeInstance with a cache of the dynamic values'
// type descriptors, for callers that decode a whole state.
func decodeInstanceWith(r *state.Resource, ty cty.Type, types *typeCache) (cty.Value, error) {
	v, err := unmarshalCty(r.Attributes, ty, types)
	if err != nil {
		return cty.NilVal, fmt.Errorf("state of %s: %w", r.Address, err)
	}
	if len(r.SensitiveAttributes) > 0 {
		pvm := make([]cty.PathValueMarks, 0, len(r.SensitiveAttributes))
		for _, p := range r.SensitiveAttributes {
			pvm = append(pvm, cty.PathValueMarks{Path: pathFromJSON(p, v.Type()), Marks: cty.NewValueMarks(lang.Sensitive)})
		}
		v = v.MarkWithPaths(pvm)
	}
	return v, nil
}

// encodeInstance is the reverse: JSON attributes and the sensitive paths.
// Unknown values (a failed create) are stored as null.
func encodeInstance(v cty.Value, ty cty.Type) (json.RawMessage, [][]any, error) {
	if b, ok, _ := marshalCty(v, ty); ok {
		return b, nil, nil // no marks, nothing unknown
	}
	unmarked, pvm := v.UnmarkDeepWithPaths()
	unmarked = unknownAsNull(unmarked)
	b, err := ctyjson.Marshal(unmarked, ty)
	if err != nil {
		return nil, nil, err
	}
	var paths [][]any
	for _, pm := range pvm {
		if _, ok := pm.Marks[lang.Sensitive]; ok {
			paths = append(paths, pathToJSON(pm.Path))
		}
	}
	return b, paths, nil
}

func unknownAsNull(v cty.Value) cty.Value {
	if v.IsWhollyKnown() {
		return v
	}
	out, _ := cty.Transform(v, func(_ cty.Path, v cty.Value) (cty.Value, error) {
		if !v.IsKnown() {
			return cty.NullVal(v.Type()), nil
		}
		return v, nil
	})
	return out
}

func pathToJSON(p cty.Path) []any {
	out := make([]any, 0, len(p))
	for _, s := range p {
		switch s := s.(type) {
		case cty.GetAttrStep:
			out = append(out, s.Name)
		case cty.IndexStep:
			if s.Key.Type() == cty.Number {
				f, _ := s.Key.AsBigFloat().Float64()
				out = append(out, f)
			} else if s.Key.Type() == cty.String {
				out = append(out, s.Key.AsString())
			}
		}
	}
	return out
}

// pathFromJSON rebuilds a path, using the type (the value's own, so that
// dynamic attributes such as inline data resolve) to tell object attributes
// (GetAttr) from map keys (Index), so marks land where they were.
func pathFromJSON(p []any, ty cty.Type) cty.Path {
	var out cty.Path
	for _, s := range p {
		switch s := s.(type) {
		case string:
			if ty.IsObjectType() {
				out = out.GetAttr(s)
				if ty.HasAttribute(s) {
					ty = ty.AttributeType(s)
				} else {
					ty = cty.DynamicPseudoType
				}
			} else {
				out = out.Index(cty.StringVal(s))
				if ty.IsMapType() {
					ty = ty.ElementType()
				} else {
					ty = cty.DynamicPseudoType
				}
			}
		case float64:
			out = out.Index(cty.NumberVal(big.NewFloat(s)))
			switch {
			case ty.IsListType() || ty.IsSetType():
				ty = ty.ElementType()
			case ty.IsTupleType() && int(s) < len(ty.TupleElementTypes()):
				ty = ty.TupleElementType(int(s))
			default:
				ty = cty.DynamicPseudoType
			}
		}
	}
	return out
}

// encodeValue encodes any value with its type, for saved plans and outputs.
func encodeValue(v cty.Value) (val, typ json.RawMessage, err error) {
	v, _ = v.UnmarkDeep()
	ty := v.Type()
	b, err := ctyjson.Marshal(v, ty)
	if err != nil {
		return nil, nil, err
	}
	t, err := ctyjson.MarshalType(ty)
	if err != nil {
		return nil, nil, err
	}
	return b, t, nil
}

func decodeValue(val, typ json.RawMessage) (cty.Value, error) {
	ty, err := ctyjson.UnmarshalType(typ)
	if err != nil {
		return cty.NilVal, err
	}
	return ctyjson.Unmarshal(val, ty)
}

// valuesEqual reports whether two values are known to be equal, marks ignored.
func valuesEqual(a, b cty.Value) bool { return ctyval.Equal(a, b) }

// conforms reports whether v fits ty (dynamic attributes, like a dataset's
// inline source, take any type).
func conforms(v cty.Value, ty cty.Type) bool {
	return len(v.Type().TestConformance(ty)) == 0
}
