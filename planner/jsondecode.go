package planner

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// unmarshalCty decodes cty JSON (the encoding of go-cty's cty/json package)
// of a value of type ty. It gives the same values as ctyjson.Unmarshal, which
// starts a new encoding/json Decoder for every nested value and re-reads each
// level's bytes once per level: decoding the state of 10,000 datasets that
// way was most of a no-op plan. On any error, or input this decoder does not
// handle (capsule types), it returns ctyjson.Unmarshal's result, so errors
// and odd inputs behave exactly as before.
func unmarshalCty(b []byte, ty cty.Type, types *typeCache) (cty.Value, error) {
	d := ctyDecoder{b: b, types: types}
	v, err := d.value(ty)
	if err == nil {
		d.space()
		if d.i != len(d.b) {
			err = errors.New("data after the value")
		}
	}
	if err != nil {
		return ctyjson.Unmarshal(b, ty)
	}
	return v, nil
}

// ctyDecoder reads one JSON document. types caches the type descriptors of
// dynamic values (the same few types recur across thousands of resources).
type ctyDecoder struct {
	b     []byte
	i     int
	types *typeCache
}

// typeCache holds the type descriptors of dynamic values already parsed,
// by their JSON text; safe for concurrent use, and a nil cache keeps nothing.
type typeCache struct {
	mu sync.RWMutex
	m  map[string]cty.Type
}

func newTypeCache() *typeCache { return &typeCache{m: map[string]cty.Type{}} }

func (c *typeCache) get(raw []byte) (cty.Type, bool) {
	if c == nil {
		return cty.NilType, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.m[string(raw)]
	return t, ok
}

func (c *typeCache) put(raw []byte, t cty.Type) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.m[string(raw)] = t
	c.mu.Unlock()
}

var errSyntax = errors.New("invalid JSON")

func (d *ctyDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (d *ctyDecoder) peek() byte {
	d.space()
	if d.i >= len(d.b) {
		return 0
	}
	return d.b[d.i]
}

func (d *ctyDecoder) literal(word string) bool {
	if len(d.b)-d.i >= len(word) && string(d.b[d.i:d.i+len(word)]) == word {
		d.i += len(word)
		return true
	}
	return false
}

func (d *ctyDecoder) value(ty cty.Type) (cty.Value, error) {
	if d.peek() == 'n' {
		if !d.literal("null") {
			return cty.NilVal, errSyntax
		}
		return cty.NullVal(ty), nil
	}
	switch {
	case ty == cty.DynamicPseudoType:
		return d.dynamic()
	case ty.IsPrimitiveType():
		return d.primitive(ty)
	case ty.IsListType(), ty.IsSetType():
		vals, err := d.array(func(int) (cty.Type, error) { return ty.ElementType(), nil })
		if err != nil {
			return cty.NilVal, err
		}
		switch {
		case ty.IsListType() && len(vals) == 0:
			return cty.ListValEmpty(ty.ElementType()), nil
		case ty.IsListType():
			return cty.ListVal(vals), nil
		case len(vals) == 0:
			return cty.SetValEmpty(ty.ElementType()), nil
		}
		return cty.SetVal(vals), nil
	case ty.IsTupleType():
		etys := ty.TupleElementTypes()
		vals, err := d.array(func(i int) (cty.Type, error) {
			if i >= len(etys) {
				return cty.NilType, errors.New("too many tuple elements")
			}
			return etys[i], nil
		})
		if err != nil {
			return cty.NilVal, err
		}
		if len(vals) != len(etys) {
			return cty.NilVal, errors.New("not enough tuple elements")
		}
		if len(vals) == 0 {
			return cty.EmptyTupleVal, nil
		}
		return cty.TupleVal(vals), nil
	case ty.IsMapType():
		vals, err := d.object(0, func(string) (cty.Type, bool) { return ty.ElementType(), true })
		if err != nil {
			return cty.NilVal, err
		}
		if len(vals) == 0 {
			return cty.MapValEmpty(ty.ElementType()), nil
		}
		return cty.MapVal(vals), nil
	case ty.IsObjectType():
		atys := ty.AttributeTypes()
		vals, err := d.object(len(atys), func(k string) (cty.Type, bool) { t, ok := atys[k]; return t, ok })
		if err != nil {
			return cty.NilVal, err
		}
		for k, aty := range atys {
			if _, ok := vals[k]; !ok {
				vals[k] = cty.NullVal(aty)
			}
		}
		if len(vals) == 0 {
			return cty.EmptyObjectVal, nil
		}
		return cty.ObjectVal(vals), nil
	}
	return cty.NilVal, fmt.Errorf("unsupported type %s", ty.FriendlyName())
}

func (d *ctyDecoder) array(elem func(i int) (cty.Type, error)) ([]cty.Value, error) {
	if d.peek() != '[' {
		return nil, errSyntax
	}
	d.i++
	var vals []cty.Value
	if d.peek() == ']' {
		d.i++
		return vals, nil
	}
	for {
		ety, err := elem(len(vals))
		if err != nil {
			return nil, err
		}
		v, err := d.value(ety)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return vals, nil
		default:
			return nil, errSyntax
		}
	}
}

// object reads an object whose member types attr gives (false: not allowed).
// size is the expected number of members (0: unknown).
func (d *ctyDecoder) object(size int, attr func(string) (cty.Type, bool)) (map[string]cty.Value, error) {
	if d.peek() != '{' {
		return nil, errSyntax
	}
	d.i++
	vals := make(map[string]cty.Value, size)
	if d.peek() == '}' {
		d.i++
		return vals, nil
	}
	for {
		if d.peek() != '"' {
			return nil, errSyntax
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		if d.peek() != ':' {
			return nil, errSyntax
		}
		d.i++
		aty, ok := attr(k)
		if !ok {
			return nil, fmt.Errorf("unsupported attribute %q", k)
		}
		v, err := d.value(aty)
		if err != nil {
			return nil, err
		}
		vals[k] = v
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return vals, nil
		default:
			return nil, errSyntax
		}
	}
}

// dynamic reads {"value": ..., "type": ...}; the value usually comes first,
// so its bytes are kept until the type is known.
func (d *ctyDecoder) dynamic() (cty.Value, error) {
	if d.peek() != '{' {
		return cty.NilVal, errSyntax
	}
	d.i++
	var ty cty.Type
	var raw []byte
	for first := true; ; first = false {
		c := d.peek()
		if c == '}' && first {
			break
		}
		if c != '"' {
			return cty.NilVal, errSyntax
		}
		k, err := d.str()
		if err != nil {
			return cty.NilVal, err
		}
		if d.peek() != ':' {
			return cty.NilVal, errSyntax
		}
		d.i++
		d.space()
		start := d.i
		if err := d.skip(); err != nil {
			return cty.NilVal, err
		}
		switch k {
		case "type":
			if ty, err = d.typ(d.b[start:d.i]); err != nil {
				return cty.NilVal, err
			}
		case "value":
			raw = d.b[start:d.i]
		default:
			return cty.NilVal, fmt.Errorf("invalid key %q in dynamically-typed value", k)
		}
		c = d.peek()
		if c == ',' {
			d.i++
			continue
		}
		if c != '}' {
			return cty.NilVal, errSyntax
		}
		break
	}
	d.i++
	if ty == cty.NilType || raw == nil {
		return cty.NilVal, errors.New("incomplete dynamically-typed value")
	}
	sub := ctyDecoder{b: raw, types: d.types}
	v, err := sub.value(ty)
	if err != nil {
		return cty.NilVal, err
	}
	if sub.space(); sub.i != len(sub.b) {
		return cty.NilVal, errSyntax
	}
	return v, nil
}

func (d *ctyDecoder) typ(raw []byte) (cty.Type, error) {
	if t, ok := d.types.get(raw); ok {
		return t, nil
	}
	var t cty.Type
	if err := json.Unmarshal(raw, &t); err != nil {
		return cty.NilType, err
	}
	d.types.put(raw, t)
	return t, nil
}

// skip moves past one value, checking its syntax.
func (d *ctyDecoder) skip() error {
	switch c := d.peek(); {
	case c == '{':
		d.i++
		if d.peek() == '}' {
			d.i++
			return nil
		}
		for {
			if d.peek() != '"' {
				return errSyntax
			}
			if _, err := d.str(); err != nil {
				return err
			}
			if d.peek() != ':' {
				return errSyntax
			}
			d.i++
			if err := d.skip(); err != nil {
				return err
			}
			switch d.peek() {
			case ',':
				d.i++
			case '}':
				d.i++
				return nil
			default:
				return errSyntax
			}
		}
	case c == '[':
		d.i++
		if d.peek() == ']' {
			d.i++
			return nil
		}
		for {
			if err := d.skip(); err != nil {
				return err
			}
			switch d.peek() {
			case ',':
				d.i++
			case ']':
				d.i++
				return nil
			default:
				return errSyntax
			}
		}
	case c == '"':
		_, err := d.str()
		return err
	case c == 't':
		return d.word("true")
	case c == 'f':
		return d.word("false")
	case c == 'n':
		return d.word("null")
	default:
		_, err := d.number()
		return err
	}
}

func (d *ctyDecoder) word(w string) error {
	if !d.literal(w) {
		return errSyntax
	}
	return nil
}

// primitive reads a string, number or bool, converting between them as
// ctyjson does (a number for a string attribute is its literal text, etc.).
func (d *ctyDecoder) primitive(ty cty.Type) (cty.Value, error) {
	var tok cty.Value // what the JSON holds, as a cty string, number-literal string or bool
	isNum := false
	switch c := d.peek(); {
	case c == '"':
		s, err := d.str()
		if err != nil {
			return cty.NilVal, err
		}
		tok = cty.StringVal(s)
	case c == 't' || c == 'f':
		if d.literal("true") {
			tok = cty.True
		} else if d.literal("false") {
			tok = cty.False
		} else {
			return cty.NilVal, errSyntax
		}
	default:
		lit, err := d.number()
		if err != nil {
			return cty.NilVal, err
		}
		if ty == cty.Number {
			// The common case, without making the literal a cty string
			// (which normalises its Unicode) first.
			if v, ok := smallInt(lit); ok {
				return v, nil
			}
			return cty.ParseNumberVal(lit)
		}
		isNum = true
		tok = cty.StringVal(lit)
	}
	switch ty {
	case cty.String:
		if tok.Type() == cty.Bool {
			return convert.Convert(tok, cty.String)
		}
		return tok, nil
	case cty.Number:
		if tok.Type() != cty.String {
			return cty.NilVal, errors.New("number is required")
		}
		if isNum {
			if v, ok := smallInt(tok.AsString()); ok {
				return v, nil
			}
		}
		return cty.ParseNumberVal(tok.AsString())
	case cty.Bool:
		if isNum {
			return cty.NilVal, errors.New("bool is required")
		}
		if tok.Type() == cty.Bool {
			return tok, nil
		}
		return convert.Convert(tok, cty.Bool)
	}
	return cty.NilVal, fmt.Errorf("unsupported type %s", ty.FriendlyName())
}

// smallInt is cty.ParseNumberVal for plain integers that fit an int64, without
// the decimal parser: the same value, precision and rounding mode.
func smallInt(s string) (cty.Value, bool) {
	if len(s) == 0 || len(s) > 18 || s == "-0" {
		return cty.NilVal, false
	}
	neg := s[0] == '-'
	digits := s
	if neg {
		digits = s[1:]
	}
	if len(digits) == 0 {
		return cty.NilVal, false
	}
	var n int64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return cty.NilVal, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return cty.NumberVal(new(big.Float).SetPrec(512).SetMode(big.ToNearestEven).SetInt64(n)), true
}

// number reads a JSON number and returns its literal text.
func (d *ctyDecoder) number() (string, error) {
	d.space()
	start := d.i
	b := d.b
	i := d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return "", errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return "", errSyntax
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return "", errSyntax
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	d.i = i
	return string(b[start:i]), nil
}

// str reads a JSON string. Plain ones (no escapes, valid UTF-8, no control
// characters) are taken as they are; others go through encoding/json, so
// escapes and invalid UTF-8 come out exactly as ctyjson's decoder gives them.
func (d *ctyDecoder) str() (string, error) {
	start := d.i // the opening quote
	i := start + 1
	plain := true
	for {
		if i >= len(d.b) {
			return "", errSyntax
		}
		c := d.b[i]
		if c == '"' {
			break
		}
		if c == '\\' {
			plain = false
			i += 2
			continue
		}
		if c < 0x20 || c >= utf8.RuneSelf {
			plain = false
		}
		i++
	}
	d.i = i + 1
	body := d.b[start+1 : i]
	if plain || utf8.Valid(body) && !hasControl(body) && !hasByte(body, '\\') {
		return string(body), nil
	}
	var s string
	if err := json.Unmarshal(d.b[start:d.i], &s); err != nil {
		return "", err
	}
	return s, nil
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

func hasByte(b []byte, x byte) bool {
	for _, c := range b {
		if c == x {
			return true
		}
	}
	return false
}
