package lang

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// Sensitive is the cty mark carried by sensitive values through evaluation.
const Sensitive = "sensitive"

// Scope evaluates expressions of one configuration. Values of locals and
// resources come from the caller (the planner), which knows their order.
type Scope struct {
	Config *Config
	Vars   map[string]cty.Value
	funcs  map[string]function.Function
	path   cty.Value
}

// NewScope makes a scope for cfg with final variable values.
func NewScope(cfg *Config, vars map[string]cty.Value) *Scope {
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		abs = cfg.Dir
	}
	p := cty.StringVal(filepath.ToSlash(abs))
	return &Scope{
		Config: cfg,
		Vars:   vars,
		funcs:  Functions(cfg.Dir),
		path:   cty.ObjectVal(map[string]cty.Value{"module": p, "root": p, "cwd": p}),
	}
}

// KeyData is count.index or each.key/each.value for one instance.
type KeyData struct {
	CountIndex cty.Value
	EachKey    cty.Value
	EachValue  cty.Value
}

// Lookup gives the value of a local or a resource (an object for a single
// instance, a tuple under count, an object keyed by for_each keys).
type Lookup func(ref Reference) cty.Value

// EvalContext builds a context that holds only what refs name, so its size
// does not grow with the configuration.
func (s *Scope) EvalContext(refs []Reference, lookup Lookup, key *KeyData) *hcl.EvalContext {
	vars := map[string]cty.Value{}
	locals := map[string]cty.Value{}
	res := map[string]map[string]cty.Value{}
	for _, r := range refs {
		switch r.Kind {
		case RefVar:
			if v, ok := s.Vars[r.Name]; ok {
				vars[r.Name] = v
			} else if decl, ok := s.Config.Variables[r.Name]; ok {
				vars[r.Name] = cty.UnknownVal(decl.Type)
			}
		case RefLocal:
			locals[r.Name] = lookup(r)
		case RefResource:
			m := res[r.Resource.Kind]
			if m == nil {
				m = map[string]cty.Value{}
				res[r.Resource.Kind] = m
			}
			m[r.Resource.Name] = lookup(r)
		}
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
		"var":   cty.ObjectVal(vars),
		"local": cty.ObjectVal(locals),
		"path":  s.path,
	}, Functions: s.funcs}
	for k, m := range res {
		ctx.Variables[k] = cty.ObjectVal(m)
	}
	if key != nil {
		if key.CountIndex != cty.NilVal {
			ctx.Variables["count"] = cty.ObjectVal(map[string]cty.Value{"index": key.CountIndex})
		}
		if key.EachKey != cty.NilVal {
			ctx.Variables["each"] = cty.ObjectVal(map[string]cty.Value{"key": key.EachKey, "value": key.EachValue})
		}
	}
	return ctx
}

// Expand evaluates count or for_each and returns the instance keys with their
// key data. A resource with neither has one instance with NoKey.
func (s *Scope) Expand(r *ResourceBlock, ctx *hcl.EvalContext) ([]Key, []*KeyData, hcl.Diagnostics) {
	switch {
	case r.Count != nil:
		v, diags := r.Count.Value(ctx)
		if diags.HasErrors() {
			return nil, nil, diags
		}
		bad := func(detail string) hcl.Diagnostics {
			return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid count argument", Detail: detail, Subject: r.Count.Range().Ptr()})
		}
		if v.HasMark(Sensitive) {
			return nil, nil, bad("count cannot be derived from a sensitive value.")
		}
		if !v.IsKnown() {
			return nil, nil, bad("The count value depends on values known only after apply. Use -target to apply those first.")
		}
		n, err := convert.Convert(v, cty.Number)
		if err != nil || n.IsNull() {
			return nil, nil, bad("count must be a whole number.")
		}
		i, acc := n.AsBigFloat().Int64()
		if acc != 0 || i < 0 {
			return nil, nil, bad("count must be a non-negative whole number.")
		}
		keys := make([]Key, i)
		data := make([]*KeyData, i)
		for j := range keys {
			keys[j] = IntKey(j)
			data[j] = &KeyData{CountIndex: cty.NumberIntVal(int64(j))}
		}
		return keys, data, diags
	case r.ForEach != nil:
		v, diags := r.ForEach.Value(ctx)
		if diags.HasErrors() {
			return nil, nil, diags
		}
		bad := func(detail string) hcl.Diagnostics {
			return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid for_each argument", Detail: detail, Subject: r.ForEach.Range().Ptr()})
		}
		if v.HasMark(Sensitive) {
			return nil, nil, bad("for_each cannot be derived from a sensitive value: its keys would be shown as addresses.")
		}
		if v.IsNull() {
			return nil, nil, bad("for_each must be a map, or a set of strings; it is null.")
		}
		if !v.IsWhollyKnown() && !v.IsKnown() {
			return nil, nil, bad("The for_each value depends on values known only after apply. Use -target to apply those first.")
		}
		ty := v.Type()
		var keys []Key
		var data []*KeyData
		switch {
		case ty.IsMapType() || ty.IsObjectType():
			for it := v.ElementIterator(); it.Next(); {
				k, ev := it.Element()
				keys = append(keys, StringKey(k.AsString()))
				data = append(data, &KeyData{EachKey: k, EachValue: ev})
			}
		case ty.IsSetType():
			if !ty.ElementType().Equals(cty.String) {
				return nil, nil, bad(fmt.Sprintf("for_each over a set needs a set of strings, not %s; use toset() on a list of strings.", ty.FriendlyName()))
			}
			if !v.IsWhollyKnown() {
				return nil, nil, bad("The for_each set holds values known only after apply.")
			}
			for it := v.ElementIterator(); it.Next(); {
				_, ev := it.Element()
				if ev.IsNull() {
					return nil, nil, bad("for_each sets must not contain null.")
				}
				keys = append(keys, StringKey(ev.AsString()))
				data = append(data, &KeyData{EachKey: ev, EachValue: ev})
			}
		default:
			return nil, nil, bad(fmt.Sprintf("for_each must be a map, or a set of strings, not %s. A list can be converted with toset().", ty.FriendlyName()))
		}
		idx := make([]int, len(keys))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]].(StringKey) < keys[idx[b]].(StringKey) })
		sk := make([]Key, len(keys))
		sd := make([]*KeyData, len(keys))
		for i, j := range idx {
			sk[i], sd[i] = keys[j], data[j]
		}
		return sk, sd, diags
	}
	return []Key{NoKey}, []*KeyData{nil}, nil
}

// DecodeResource evaluates a resource instance's arguments into a value of the
// kind's ConfigType; reference arguments become the referenced resource's id.
func (s *Scope) DecodeResource(r *ResourceBlock, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	if c := r.refs; c != nil && c.static {
		c.once.Do(func() {
			c.decoded, c.ddiags = s.decodeResource(r, ctx)
			c.marked = !c.ddiags.HasErrors() && c.decoded.ContainsMarked()
		})
		return c.decoded, c.ddiags[:len(c.ddiags):len(c.ddiags)]
	}
	return s.decodeResource(r, ctx)
}

// MayBeMarked is false when DecodeResource's value for r is known to carry no
// marks (a body that refers to nothing, already decoded without sensitive
// values): the planner then need not take marks off it for every instance.
func (r *ResourceBlock) MayBeMarked() bool {
	c := r.refs
	if c == nil || !c.static {
		return true
	}
	c.once.Do(func() {}) // wait for a decode in progress; never decode here
	return c.ddiags.HasErrors() || c.marked
}

func (s *Scope) decodeResource(r *ResourceBlock, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	v, diags := r.Schema.decode(r.Body, ctx)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	if len(r.Schema.Refs) > 0 {
		attrs := v.AsValueMap()
		for _, name := range r.Schema.Refs {
			ref, d := refID(r, name, attrs[name])
			diags = append(diags, d...)
			attrs[name] = ref
		}
		v = cty.ObjectVal(attrs)
	}
	return v, diags
}

// refID turns `dataset = dataset.digits` into "dataset.digits".
func refID(r *ResourceBlock, name string, v cty.Value) (cty.Value, hcl.Diagnostics) {
	if v.IsNull() {
		return cty.NullVal(cty.String), nil
	}
	if !v.IsKnown() {
		return cty.UnknownVal(cty.String), nil
	}
	ty := v.Type()
	if ty == cty.String {
		return v, nil
	}
	if ty.IsObjectType() && ty.HasAttribute("id") {
		return v.GetAttr("id"), nil
	}
	var subj *hcl.Range
	if a, _ := r.Body.JustAttributes(); a != nil && a[name] != nil {
		subj = a[name].Expr.Range().Ptr()
	}
	return cty.NilVal, hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Invalid reference argument",
		Detail:   fmt.Sprintf("%s takes a whole resource, such as %s = %s.NAME, not %s.", name, name, r.Schema.RefKinds[name], ty.FriendlyName()),
		Subject:  subj,
	}}
}

func (s *Scope) validateResource(r *ResourceBlock) hcl.Diagnostics {
	unknown := func(Reference) cty.Value { return cty.DynamicVal }
	refs, _ := s.Config.ResourceRefs(r)
	key := &KeyData{}
	if r.Count != nil {
		key.CountIndex = cty.UnknownVal(cty.Number)
	}
	if r.ForEach != nil {
		key.EachKey, key.EachValue = cty.UnknownVal(cty.String), cty.DynamicVal
	}
	ctx := s.EvalContext(refs, unknown, key)
	_, diags := s.DecodeResource(r, ctx)
	// A count or for_each known without state or variables (a literal,
	// a local of literals) is checked now: validate catches `for_each = 5`.
	for _, e := range []hcl.Expression{r.Count, r.ForEach} {
		if e == nil {
			continue
		}
		if v, d := e.Value(ctx); !d.HasErrors() && v.IsWhollyKnown() && !v.IsMarked() {
			_, _, d := s.Expand(r, ctx)
			diags = append(diags, d...)
		}
	}
	return append(diags, validateKind(r)...)
}

// parallelFor calls f(0) ... f(n-1) on GOMAXPROCS goroutines.
func parallelFor(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// validateBodies decodes every resource, local and output with every reference
// unknown, so structure and literal type errors show before any work starts.
func (c *Config) validateBodies() hcl.Diagnostics {
	s := NewScope(c, nil)
	// Resources are independent here; decoding 10,000 of them is most of a
	// large configuration's load, so it is spread over the cores. Each
	// resource's diagnostics keep their place in the order.
	perResource := make([]hcl.Diagnostics, len(c.Resources))
	parallelFor(len(c.Resources), func(i int) {
		perResource[i] = s.validateResource(c.Resources[i])
	})
	var diags hcl.Diagnostics
	for _, d := range perResource {
		diags = append(diags, d...)
	}
	for _, p := range c.SortedProviders() {
		diags = append(diags, validateProvider(p)...)
	}
	return diags
}
