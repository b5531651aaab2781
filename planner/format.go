package planner

import (
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/leptonml/lepton/lang"
	"github.com/zclconf/go-cty/cty"
)

const (
	knownAfterApply = "(known after apply)"
	sensitiveValue  = "(sensitive value)"
)

// formatValue renders a value in HCL syntax for plans; indent is the column
// at which nested lines start.
func formatValue(v cty.Value, indent int) string {
	if v.HasMark(lang.Sensitive) {
		return sensitiveValue
	}
	if !v.IsKnown() {
		return knownAfterApply
	}
	if v.IsNull() {
		return "null"
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		s := v.AsString()
		if strings.Contains(s, "\n") && len(s) > 1 {
			pad := strings.Repeat(" ", indent+4)
			var b strings.Builder
			b.WriteString("<<-EOT\n")
			for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
				b.WriteString(pad + line + "\n")
			}
			b.WriteString(strings.Repeat(" ", indent) + "EOT")
			return b.String()
		}
		return strconv.Quote(s)
	case ty == cty.Number:
		return formatNumber(v.AsBigFloat())
	case ty == cty.Bool:
		if v.True() {
			return "true"
		}
		return "false"
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		if v.LengthInt() == 0 {
			return "[]"
		}
		var parts []string
		simple := true
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			s := formatValue(e, indent+4)
			if strings.Contains(s, "\n") {
				simple = false
			}
			parts = append(parts, s)
		}
		line := "[" + strings.Join(parts, ", ") + "]"
		if simple && len(line)+indent < 100 {
			return line
		}
		pad := strings.Repeat(" ", indent+4)
		return "[\n" + pad + strings.Join(parts, ",\n"+pad) + ",\n" + strings.Repeat(" ", indent) + "]"
	case ty.IsMapType() || ty.IsObjectType():
		if v.LengthInt() == 0 {
			return "{}"
		}
		m := v.AsValueMap()
		keys := make([]string, 0, len(m))
		width := 0
		for k := range m {
			keys = append(keys, k)
			if n := len(formatKey(k)); n > width {
				width = n
			}
		}
		sort.Strings(keys)
		pad := strings.Repeat(" ", indent+4)
		var b strings.Builder
		b.WriteString("{\n")
		for _, k := range keys {
			fk := formatKey(k)
			fmt.Fprintf(&b, "%s%-*s = %s\n", pad, width, fk, formatValue(m[k], indent+4))
		}
		b.WriteString(strings.Repeat(" ", indent) + "}")
		return b.String()
	}
	return fmt.Sprintf("%#v", v)
}

func formatKey(k string) string {
	if hclsyntax.ValidIdentifier(k) {
		return k
	}
	return strconv.Quote(k)
}

func formatNumber(f *big.Float) string {
	if f.IsInt() {
		i, acc := f.Int64()
		if acc == big.Exact {
			return strconv.FormatInt(i, 10)
		}
	}
	x, _ := f.Float64()
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// plainJSON converts a value for the JSON plan: unknown and sensitive parts
// become null (they are flagged in after_unknown and *_sensitive instead).
func plainJSON(v cty.Value) any {
	if v.HasMark(lang.Sensitive) || !v.IsKnown() || v.IsNull() {
		return nil
	}
	v, _ = v.Unmark()
	ty := v.Type()
	switch {
	case ty == cty.String:
		return v.AsString()
	case ty == cty.Number:
		f := v.AsBigFloat()
		if f.IsInt() {
			if i, acc := f.Int64(); acc == big.Exact {
				return i
			}
		}
		x, _ := f.Float64()
		return x
	case ty == cty.Bool:
		return v.True()
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		out := []any{}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, plainJSON(e))
		}
		return out
	case ty.IsMapType() || ty.IsObjectType():
		out := map[string]any{}
		for k, e := range v.AsValueMap() {
			out[k] = plainJSON(e)
		}
		return out
	}
	return nil
}

// markTree mirrors v with true where pred holds (unknown, or sensitive), in
// the shape of Terraform's after_unknown and *_sensitive: false when nothing.
func markTree(v cty.Value, pred func(cty.Value) bool) any {
	if pred(v) {
		return true
	}
	if v.IsNull() || !v.IsKnown() {
		return false
	}
	v, marks := v.Unmark()
	_ = marks
	ty := v.Type()
	switch {
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		out := []any{}
		anyTrue := false
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			m := markTree(e, pred)
			if m != false {
				anyTrue = true
			}
			out = append(out, m)
		}
		if !anyTrue {
			return []any{}
		}
		return out
	case ty.IsMapType() || ty.IsObjectType():
		out := map[string]any{}
		for k, e := range v.AsValueMap() {
			if m := markTree(e, pred); m != false && !isEmptyMark(m) {
				out[k] = m
			}
		}
		return out
	}
	return false
}

func isEmptyMark(m any) bool {
	switch m := m.(type) {
	case map[string]any:
		return len(m) == 0
	case []any:
		return len(m) == 0
	}
	return false
}

func isUnknown(v cty.Value) bool   { return !v.IsKnown() }
func isSensitive(v cty.Value) bool { return v.HasMark(lang.Sensitive) }

// FormatValue renders a value in HCL syntax (sensitive parts hidden).
func FormatValue(v cty.Value) string { return formatValue(v, 0) }
