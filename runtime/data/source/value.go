package source

import (
	"math"
	"strconv"
	"strings"
)

// Kind is the type a value arrived with.
type Kind uint8

const (
	Null   Kind = iota
	Number      // Num holds it
	String      // Str holds it (typed as a string by the source, e.g. JSON)
	Bool        // Num is 0 or 1
	Text        // Raw holds untyped text (CSV cell, log group, SQL text) to be inferred
)

// Value is one cell. Text values reference the reader's buffer through Raw and
// are only valid until the reader's next call: this keeps the CSV path free of
// per-cell allocations.
type Value struct {
	Kind Kind
	Num  float64
	Str  string
	Raw  []byte
}

// TextValue wraps raw text, turning the usual spellings of "missing" into Null.
func TextValue(b []byte) Value {
	if IsMissingText(b) {
		return Value{}
	}
	return Value{Kind: Text, Raw: b}
}

// IsMissingText reports whether a text cell means "no value".
func IsMissingText(b []byte) bool {
	switch len(b) {
	case 0:
		return true
	case 2:
		return string(b) == "NA"
	case 3:
		s := string(b)
		return s == "N/A" || s == "NaN" || s == "nan" || s == "n/a"
	case 4:
		s := string(b)
		return s == "null" || s == "NULL" || s == "None" || s == "none"
	}
	return false
}

// ParseBool recognises true/false in text (case-insensitive).
func ParseBool(b []byte) (bool, bool) {
	switch len(b) {
	case 4:
		if strings.EqualFold(string(b), "true") {
			return true, true
		}
	case 5:
		if strings.EqualFold(string(b), "false") {
			return false, true
		}
	}
	return false, false
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// ParseNumber parses a decimal number from text without allocating. Plain
// decimals whose digits fit in 2^53 and whose exponent is small are computed
// exactly (Clinger's fast path: one exact integer times or divided by an exact
// power of ten is correctly rounded); everything else goes to strconv. Leading
// and trailing spaces are ignored.
func ParseNumber(b []byte) (float64, bool) {
	if f, ok := parseSimple(b); ok {
		return f, true
	}
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return 0, false
	}
	i := 0
	neg := false
	if b[0] == '-' || b[0] == '+' {
		neg = b[0] == '-'
		i++
	}
	var mant uint64
	digits, exp := 0, 0
	sawDigit := false
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		sawDigit = true
		if mant == 0 && b[i] == '0' {
			continue
		}
		if digits >= 19 {
			return slowNumber(b)
		}
		mant = mant*10 + uint64(b[i]-'0')
		digits++
	}
	if i < len(b) && b[i] == '.' {
		i++
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			sawDigit = true
			if mant == 0 && b[i] == '0' {
				exp--
				continue
			}
			if digits >= 19 {
				return slowNumber(b)
			}
			mant = mant*10 + uint64(b[i]-'0')
			digits++
			exp--
		}
	}
	if !sawDigit {
		return slowNumber(b)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '-' || b[i] == '+') {
			eneg = b[i] == '-'
			i++
		}
		if i == len(b) {
			return 0, false
		}
		e := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if e > 10000 {
				return slowNumber(b)
			}
			e = e*10 + int(b[i]-'0')
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if i != len(b) {
		return slowNumber(b)
	}
	if mant>>53 != 0 || exp < -22 || exp > 22 {
		return slowNumber(b)
	}
	f := float64(mant)
	if exp < 0 {
		f /= pow10[-exp]
	} else {
		f *= pow10[exp]
	}
	if neg {
		f = -f
	}
	return f, true
}

// slowNumber is the exact fallback for long or unusual spellings.
func slowNumber(b []byte) (float64, bool) {
	// Only plain decimal spellings are data; strconv would also take hex
	// floats and digit separators.
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(string(b), 64) // b is trimmed by the caller
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	// Overflow (and literal Inf/NaN) is not usable data; underflow to 0 is fine.
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// parseSimple handles the most common spelling, [-]digits[.digits] with at
// most 15 significant digits, in one tight loop; anything else returns false
// and takes the general path.
func parseSimple(b []byte) (float64, bool) {
	i := 0
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		i = 1
	}
	var mant uint64
	n := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		mant = mant*10 + uint64(b[i]-'0')
		n++
	}
	frac := 0
	if i < len(b) && b[i] == '.' {
		i++
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			mant = mant*10 + uint64(b[i]-'0')
			frac++
		}
	}
	if i != len(b) || n+frac == 0 || n+frac > 15 {
		return 0, false
	}
	f := float64(mant) / pow10[frac] // exact integer / exact power of ten: correctly rounded
	if neg {
		f = -f
	}
	return f, true
}
