package ctyval

import "github.com/zclconf/go-cty/cty"

// Equal reports whether a and b are known and equal, marks ignored.
//
// It walks both values itself and asks cty's Equals only where it cannot be
// sure (unknowns, sets, leaves whose types differ, numbers that differ only in
// precision): Equals formats every non-integer number as decimal text to
// compare it, which is very slow on the 512-bit numbers read from state, and
// a no-op plan compares every attribute of every instance.
func Equal(a, b cty.Value) bool {
	if eq, sure := fastEqual(a, b); sure {
		return eq
	}
	a, _ = a.UnmarkDeep()
	b, _ = b.UnmarkDeep()
	if a.IsNull() || b.IsNull() {
		return a.IsNull() && b.IsNull()
	}
	eq := a.Equals(b)
	return eq.IsKnown() && eq.True()
}

// fastEqual compares a and b; sure is false where Equal must ask cty.
func fastEqual(a, b cty.Value) (equal, sure bool) {
	a, _ = a.Unmark()
	b, _ = b.Unmark()
	if !a.IsKnown() || !b.IsKnown() {
		return false, false
	}
	if a.IsNull() || b.IsNull() {
		return a.IsNull() && b.IsNull(), true
	}
	ta, tb := a.Type(), b.Type()
	switch {
	case ta == cty.String && tb == cty.String:
		return a.AsString() == b.AsString(), true
	case ta == cty.Bool && tb == cty.Bool:
		return a.True() == b.True(), true
	case ta == cty.Number && tb == cty.Number:
		if a.AsBigFloat().Cmp(b.AsBigFloat()) == 0 {
			return true, true
		}
		// 0.1 as a float64 and 0.1 read at 512 bits are equal to cty.
		return false, false
	case ta.IsObjectType() && tb.IsObjectType():
		as, bs := ta.AttributeTypes(), tb.AttributeTypes()
		if len(as) != len(bs) {
			return false, false
		}
		for name := range as {
			if _, ok := bs[name]; !ok {
				return false, false
			}
			if eq, sure := fastEqual(a.GetAttr(name), b.GetAttr(name)); !eq || !sure {
				return eq, sure
			}
		}
		return true, true
	case ta.IsListType() && tb.IsListType(), ta.IsTupleType() && tb.IsTupleType(), ta.IsMapType() && tb.IsMapType():
		if a.LengthInt() != b.LengthInt() {
			return false, true
		}
		if a.LengthInt() == 0 {
			// Empty collections are equal when their element types are.
			return ta.Equals(tb), ta.Equals(tb)
		}
		// Maps iterate in key order, so equal maps pair up key by key.
		ia, ib := a.ElementIterator(), b.ElementIterator()
		for ia.Next() && ib.Next() {
			ka, va := ia.Element()
			kb, vb := ib.Element()
			if ta.IsMapType() && ka.AsString() != kb.AsString() {
				return false, true
			}
			if eq, sure := fastEqual(va, vb); !eq || !sure {
				return eq, sure
			}
		}
		return true, true
	}
	return false, false
}

// ChangedArgs lists, in the order of names, the arguments whose values
// differ between prior and cfg. An argument that is unset in cfg and for
// which keepsComputed is true (endpoint.port, cluster.instance_type: an
// argument the provider also computes) keeps the prior's value: no change.
func ChangedArgs(prior, cfg cty.Value, names []string, keepsComputed func(name string) bool) []string {
	var out []string
	for _, name := range names {
		a, b := Attr(prior, name), Attr(cfg, name)
		if b.IsNull() && (a.IsNull() || keepsComputed(name)) {
			continue
		}
		if !Equal(a, b) {
			out = append(out, name)
		}
	}
	return out
}
