package local

import (
	"github.com/leptonml/lepton/providers/ctyval"
	"math/big"
	"sort"
	"strings"

	"github.com/leptonml/lepton/lang"
	"github.com/zclconf/go-cty/cty"
)

// withComputed returns cfg extended to the kind's state type, with computed
// attributes taken from comp, or unknown when comp lacks them.
func withComputed(kind string, cfg cty.Value, comp map[string]cty.Value) cty.Value {
	return withSchema(lang.Schemas()[kind], cfg, comp)
}

// withSchema is withComputed with the kind's schema at hand.
func withSchema(schema *lang.KindSchema, cfg cty.Value, comp map[string]cty.Value) cty.Value {
	ty := schema.StateType()
	m := map[string]cty.Value{}
	for name, aty := range ty.AttributeTypes() {
		if v, ok := comp[name]; ok {
			m[name] = v
			continue
		}
		if cfg.Type().HasAttribute(name) {
			if v := cfg.GetAttr(name); !v.IsNull() {
				m[name] = v
				continue
			}
		}
		if _, computed := schema.Computed[name]; computed {
			m[name] = cty.UnknownVal(aty)
			continue
		}
		m[name] = cty.NullVal(aty)
	}
	return cty.ObjectVal(m)
}

// sameArgs reports whether prior's arguments equal cfg's.
func sameArgs(prior, cfg cty.Value) bool {
	return len(changedArgs(prior, cfg)) == 0
}

// changedArgs lists the arguments that differ between prior and cfg, sorted.
// An argument that is also computed (endpoint.port) and left unset keeps
// whatever value was computed for it.
func changedArgs(prior, cfg cty.Value) []string {
	if prior.IsNull() {
		return nil
	}
	names := make([]string, 0, len(cfg.Type().AttributeTypes()))
	for name := range cfg.Type().AttributeTypes() {
		names = append(names, name)
	}
	sort.Strings(names)
	// The kind's computed attributes, looked up only when an argument is
	// unset (lang.Schemas builds every kind's schema: this runs per instance).
	var computed map[string]cty.Type
	return ctyval.ChangedArgs(prior, cfg, names, func(name string) bool {
		if computed == nil {
			kind := ""
			if id := str(attr(prior, "id")); id != "" {
				kind, _, _ = strings.Cut(id, ".")
			}
			computed = map[string]cty.Type{}
			if s := lang.Schemas()[kind]; s != nil {
				computed = s.Computed
			}
		}
		_, ok := computed[name]
		return ok
	})
}

func numVal(f float64) cty.Value { return cty.NumberVal(big.NewFloat(f)) }

func strListVal(ss []string) cty.Value {
	if len(ss) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	vs := make([]cty.Value, len(ss))
	for i, s := range ss {
		vs[i] = cty.StringVal(s)
	}
	return cty.ListVal(vs)
}

// Argument readers shared with the other providers.
var (
	str     = ctyval.Str
	num     = ctyval.Num
	attr    = ctyval.Attr
	strList = ctyval.StrList
)
