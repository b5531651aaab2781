package planner

import (
	"github.com/leptonml/lepton/internal/state"
	"github.com/zclconf/go-cty/cty"
)

// argsMatchState reports whether every argument in cfg (an unmarked value of
// the kind's configuration type) is stored in the state resource r with the
// same value, comparing cfg's cty JSON with the stored JSON text, without
// decoding the state. false means "not shown": the caller takes the full path.
//
// Equal texts mean equal values: both are what marshalCty (or ctyjson, which
// renders the same bytes) made of values of the same type. Different texts
// may still be equal values (a number of another precision), which the full
// path then finds.
//
// e is scratch space, reused between calls.
func argsMatchState(e *ctyEncoder, cfg cty.Value, cfgType cty.Type, r *state.Resource) bool {
	if !cfgType.IsObjectType() || !cfg.Type().IsObjectType() {
		return false
	}
	stored, ok := topMembers(r.Attributes)
	if !ok {
		return false
	}
	for name, aty := range cfgType.AttributeTypes() {
		raw, ok := stored[name]
		if !ok || !cfg.Type().HasAttribute(name) {
			return false
		}
		e.buf = e.buf[:0]
		if !e.value(cfg.GetAttr(name), aty) || !equalIgnoringSpace(raw, e.buf) {
			return false
		}
	}
	return true
}

// topMembers splits a JSON object into its members' raw values.
func topMembers(b []byte) (map[string][]byte, bool) {
	d := ctyDecoder{b: b}
	if d.peek() != '{' {
		return nil, false
	}
	d.i++
	out := make(map[string][]byte, 32)
	if d.peek() == '}' {
		return out, true
	}
	for {
		if d.peek() != '"' {
			return nil, false
		}
		k, err := d.str()
		if err != nil || d.peek() != ':' {
			return nil, false
		}
		d.i++
		d.space()
		start := d.i
		if err := d.skip(); err != nil {
			return nil, false
		}
		out[k] = b[start:d.i]
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			return out, true
		default:
			return nil, false
		}
	}
}

// equalIgnoringSpace reports whether JSON text a, with whitespace between
// tokens, is the compact JSON text b.
func equalIgnoringSpace(a, b []byte) bool {
	j := 0
	inString, escaped := false, false
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !inString && (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
			continue
		}
		if j >= len(b) || b[j] != c {
			return false
		}
		j++
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		}
	}
	return j == len(b)
}
