package planner

import (
	"encoding/json"
	"math"
	"math/big"
	"sort"
	"strconv"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// marshalCty renders v as cty JSON of type ty, byte for byte what
// ctyjson.Marshal renders (checked by TestMarshalCtyMatchesCtyjson and
// FuzzMarshalCty), in one pass. ok is false when v holds marks or unknown
// values, which the caller handles the slow way.
//
// The speed is in numbers: ctyjson formats every number with big.Float's
// Text('f', -1), whose shortest-digits search is slow even for the float64
// values providers compute; those are formatted by strconv, which finds the
// same shortest digits.
func marshalCty(v cty.Value, ty cty.Type) (b []byte, ok bool, err error) {
	if errs := v.Type().TestConformance(ty); errs != nil {
		return nil, false, nil // ctyjson.Marshal reports it
	}
	e := ctyEncoder{buf: make([]byte, 0, 1024)}
	if !e.value(v, ty) {
		return nil, false, nil
	}
	return e.buf, true, nil
}

const minNormal = 2.2250738585072014e-308 // the smallest normal float64

type ctyEncoder struct {
	buf []byte
	// types remembers the JSON of the last few dynamic types seen: the
	// inline data of thousands of datasets has one or two types, and
	// ctyjson.MarshalType goes through encoding/json's reflection.
	types []typeJSON
}

type typeJSON struct {
	ty cty.Type
	b  []byte
}

func (e *ctyEncoder) typeJSON(ty cty.Type) ([]byte, error) {
	for _, t := range e.types {
		if t.ty.Equals(ty) {
			return t.b, nil
		}
	}
	b, err := ctyjson.MarshalType(ty)
	if err != nil {
		return nil, err
	}
	if len(e.types) == 8 {
		e.types = e.types[1:]
	}
	e.types = append(e.types, typeJSON{ty, b})
	return b, nil
}

// value appends v as type t; false on a mark or an unknown value (or
// anything else it leaves to ctyjson).
func (e *ctyEncoder) value(v cty.Value, t cty.Type) bool {
	if v.IsMarked() || !v.IsKnown() {
		return false
	}
	if t == cty.DynamicPseudoType && v.Type() != cty.DynamicPseudoType {
		typ, err := e.typeJSON(v.Type())
		if err != nil {
			return false
		}
		e.buf = append(e.buf, `{"value":`...)
		if !e.value(v, v.Type()) {
			return false
		}
		e.buf = append(e.buf, `,"type":`...)
		e.buf = append(e.buf, typ...)
		e.buf = append(e.buf, '}')
		return true
	}
	if v.IsNull() {
		e.buf = append(e.buf, "null"...)
		return true
	}
	switch {
	case t == cty.String:
		return e.str(v.AsString())
	case t == cty.Number:
		return e.number(v.AsBigFloat())
	case t == cty.Bool:
		if v.True() {
			e.buf = append(e.buf, "true"...)
		} else {
			e.buf = append(e.buf, "false"...)
		}
		return true
	case t.IsListType(), t.IsSetType():
		ety := t.ElementType()
		e.buf = append(e.buf, '[')
		first := true
		for it := v.ElementIterator(); it.Next(); {
			if !first {
				e.buf = append(e.buf, ',')
			}
			first = false
			_, ev := it.Element()
			if !e.value(ev, ety) {
				return false
			}
		}
		e.buf = append(e.buf, ']')
		return true
	case t.IsMapType():
		ety := t.ElementType()
		e.buf = append(e.buf, '{')
		first := true
		for it := v.ElementIterator(); it.Next(); {
			if !first {
				e.buf = append(e.buf, ',')
			}
			first = false
			ek, ev := it.Element()
			if ek.IsMarked() || !e.str(ek.AsString()) {
				return false
			}
			e.buf = append(e.buf, ':')
			if !e.value(ev, ety) {
				return false
			}
		}
		e.buf = append(e.buf, '}')
		return true
	case t.IsTupleType():
		etys := t.TupleElementTypes()
		e.buf = append(e.buf, '[')
		i := 0
		for it := v.ElementIterator(); it.Next(); i++ {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			_, ev := it.Element()
			if !e.value(ev, etys[i]) {
				return false
			}
		}
		e.buf = append(e.buf, ']')
		return true
	case t.IsObjectType():
		atys := t.AttributeTypes()
		names := make([]string, 0, len(atys))
		for k := range atys {
			names = append(names, k)
		}
		sort.Strings(names)
		e.buf = append(e.buf, '{')
		for i, k := range names {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if !e.str(k) {
				return false
			}
			e.buf = append(e.buf, ':')
			if !e.value(v.GetAttr(k), atys[k]) {
				return false
			}
		}
		e.buf = append(e.buf, '}')
		return true
	}
	return false
}

// str appends s as encoding/json does (HTML characters escaped).
func (e *ctyEncoder) str(s string) bool {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		e.buf = append(e.buf, '"')
		e.buf = append(e.buf, s...)
		e.buf = append(e.buf, '"')
		return true
	}
	q, err := json.Marshal(s)
	if err != nil {
		return false
	}
	e.buf = append(e.buf, q...)
	return true
}

func (e *ctyEncoder) number(f *big.Float) bool {
	if f.IsInf() {
		return false
	}
	switch {
	case f.IsInt() && !(f.Sign() == 0 && f.Signbit()) && f.MantExp(nil) <= int(f.Prec()):
		// An integer below 2^prec has no shorter digits than its own
		// (-0 is "-0" to ctyjson).
		if i, acc := f.Int64(); acc == big.Exact {
			e.buf = strconv.AppendInt(e.buf, i, 10)
			return true
		}
	case f.Prec() == 53:
		// A float64 made into a cty number: the shortest digits that
		// identify it at 53 bits are strconv's, for normal float64s below
		// 2^53 (a subnormal has fewer bits than its big.Float; above 2^53
		// the two pick different last digits among equally short ones).
		if x, acc := f.Float64(); acc == big.Exact && math.Abs(x) >= minNormal && math.Abs(x) < 1<<53 {
			e.buf = strconv.AppendFloat(e.buf, x, 'f', -1, 64)
			return true
		}
	}
	e.buf = f.Append(e.buf, 'f', -1)
	return true
}
