// Package ctyval reads provider arguments out of cty values at the edge of a
// provider, where absent, null and unknown all mean "not set".
package ctyval

import "github.com/zclconf/go-cty/cty"

// Str returns a known string, or "".
func Str(v cty.Value) string {
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return ""
	}
	return v.AsString()
}

// Num returns a known number and true, or 0 and false.
func Num(v cty.Value) (float64, bool) {
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.Number {
		return 0, false
	}
	f, _ := v.AsBigFloat().Float64()
	return f, true
}

// Attr returns an object's attribute, or a null value when obj is not a
// known object holding it.
func Attr(obj cty.Value, name string) cty.Value {
	if obj.IsNull() || !obj.IsKnown() || !obj.Type().IsObjectType() || !obj.Type().HasAttribute(name) {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	return obj.GetAttr(name)
}

// StrList returns a known list, set or tuple of strings.
func StrList(v cty.Value) []string {
	if v.IsNull() || !v.IsKnown() || !(v.Type().IsListType() || v.Type().IsSetType() || v.Type().IsTupleType()) {
		return nil
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, Str(e))
	}
	return out
}
