package serve

import (
	"math"
	"slices"
	"strconv"
	"unsafe"
)

// The fast paths below decode the common request shapes straight into
// float32s, without building a JSON tree: JSON decoding of the 784 features
// costs an order of magnitude more than the model's forward pass. They accept
// only a strict subset of JSON (no escapes, flat rows, known keys) and answer
// ok=false whenever anything is unusual; the caller then runs the full
// fastjson decoder, which also produces the error messages. FuzzFastPaths
// checks that whatever a fast path accepts, the full decoder decodes the
// same way.

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// lit consumes c after optional whitespace.
func (s *scanner) lit(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters.
func (s *scanner) str() (string, bool) {
	if !s.lit('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := string(s.b[start:s.i])
			s.i++
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		}
		s.i++
	}
	return "", false
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// number reads one strict JSON number in a single pass, starting at s.i. When the decimal
// mantissa fits in 53 bits and the power of ten is at most 22, one IEEE
// multiplication or division of two exact values gives the correctly
// rounded result (Clinger's fast path); otherwise strconv.ParseFloat, which
// is correctly rounded too, parses the text. The full decoder also uses
// strconv, so both paths agree to the bit.
func (s *scanner) number() (float64, bool) {
	b, start := s.b, s.i
	i := start
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	if i == len(b) {
		return 0, false
	}
	var mant uint64 // up to 19 significant digits
	exp, sig := 0, 0
	exact := true
	switch c := b[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		for ; i < len(b); i++ {
			c := b[i]
			if c < '0' || c > '9' {
				break
			}
			if sig < 19 {
				mant = mant*10 + uint64(c-'0')
				sig++
			} else {
				exact = false
			}
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for ; i < len(b); i++ {
			c := b[i]
			if c < '0' || c > '9' {
				break
			}
			if sig < 19 {
				mant = mant*10 + uint64(c-'0')
				exp--
				if mant != 0 { // leading zeros are not significant
					sig++
				}
			} else {
				exact = false
			}
		}
		if i == d {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		d := i
		e := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if e < 100000 {
				e = e*10 + int(b[i]-'0')
			}
		}
		if i == d {
			return 0, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	s.i = i
	if exact && mant < 1<<53 && exp >= -22 && exp <= 22 {
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
	// The bytes are not retained, so viewing them as a string is safe.
	f, err := strconv.ParseFloat(unsafe.String(&b[start], i-start), 64)
	return f, err == nil
}

// float32s reads an array of numbers, possibly nested (flattened in
// row-major order), appending at most limit values.
func (s *scanner) float32s(x []float32, limit, depth int) ([]float32, bool) {
	if !s.lit('[') {
		return x, false
	}
	if s.lit(']') {
		return x, true
	}
	for {
		if s.i == len(s.b) || s.b[s.i] <= ' ' { // rare: whitespace or the end
			if s.ws(); s.i == len(s.b) {
				return x, false
			}
		}
		if s.b[s.i] == '[' {
			var ok bool
			if depth >= 32 {
				return x, false
			}
			if x, ok = s.float32s(x, limit, depth+1); !ok {
				return x, false
			}
		} else if s.b[s.i] == '0' && s.i+1 < len(s.b) && (s.b[s.i+1] == ',' || s.b[s.i+1] == ']') {
			// A bare 0, most pixels of an image.
			if len(x) >= limit {
				return x, false
			}
			x = append(x, 0)
			s.i++
		} else {
			f, ok := s.number()
			// The range test also rejects NaN and infinities.
			if !ok || len(x) >= limit || !(f <= math.MaxFloat32 && f >= -math.MaxFloat32) {
				return x, false
			}
			x = append(x, float32(f))
		}
		if s.i < len(s.b) && s.b[s.i] == ',' { // the common, compact case
			s.i++
			continue
		}
		if s.lit(']') {
			return x, true
		}
		if !s.lit(',') {
			return x, false
		}
	}
}

func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// fastV1 decodes exactly {"instances": [[f, ...], ...]} with flat rows of
// inputSize numbers.
func fastV1(b []byte, inputSize int) ([]float32, int, bool) {
	return fastV1Into(nil, b, inputSize)
}

// fastV1Into is fastV1 appending to dst[:0].
func fastV1Into(dst []float32, b []byte, inputSize int) ([]float32, int, bool) {
	s := scanner{b: b}
	if !s.lit('{') {
		return nil, 0, false
	}
	if k, ok := s.str(); !ok || (k != "instances" && k != "inputs") || !s.lit(':') || !s.lit('[') {
		return nil, 0, false
	}
	x := dst[:0]
	if cap(x) < inputSize {
		x = make([]float32, 0, inputSize)
	}
	n := 0
	for {
		start := len(x)
		var ok bool
		if x, ok = s.float32s(x, start+inputSize, 0); !ok || len(x)-start != inputSize {
			return nil, 0, false
		}
		n++
		if s.lit(']') {
			break
		}
		if !s.lit(',') {
			return nil, 0, false
		}
	}
	if !s.lit('}') || !s.end() {
		return nil, 0, false
	}
	return x, n, true
}

// fastV2 decodes an infer request whose top-level keys are "id" and
// "inputs", with one input holding exactly "name", "shape", "datatype"
// (FP32 or FP64) and flat "data", in any order.
func fastV2(b []byte, inputSize int) (*v2Request, bool) {
	return fastV2Into(nil, b, inputSize)
}

// fastV2Into is fastV2 appending the data to dst[:0].
func fastV2Into(dst []float32, b []byte, inputSize int) (*v2Request, bool) {
	s := scanner{b: b}
	if !s.lit('{') {
		return nil, false
	}
	req := &v2Request{}
	var (
		seenInputs, seenName, seenShape, seenType, seenData bool
		shape                                               []int
		x                                                   []float32
	)
	for {
		k, ok := s.str()
		if !ok || !s.lit(':') {
			return nil, false
		}
		switch {
		case k == "id" && !req.hasID:
			if req.id, ok = s.str(); !ok {
				return nil, false
			}
			req.hasID = true
		case k == "inputs" && !seenInputs:
			seenInputs = true
			if !s.lit('[') || !s.lit('{') {
				return nil, false
			}
			for {
				ik, ok := s.str()
				if !ok || !s.lit(':') {
					return nil, false
				}
				switch {
				case ik == "name" && !seenName:
					seenName = true
					// Another name is an error the full decoder words.
					if name, ok := s.str(); !ok || name != inputName {
						return nil, false
					}
				case ik == "datatype" && !seenType:
					seenType = true
					if dt, ok := s.str(); !ok || (dt != "FP32" && dt != "FP64") {
						return nil, false
					}
				case ik == "shape" && !seenShape:
					seenShape = true
					if !s.lit('[') {
						return nil, false
					}
					for {
						s.ws()
						start := s.i
						f, ok := s.number()
						if !ok || !digitsOnly(b[start:s.i]) || f > 1<<31 || len(shape) > 8 {
							return nil, false
						}
						shape = append(shape, int(f))
						if s.lit(']') {
							break
						}
						if !s.lit(',') {
							return nil, false
						}
					}
				case ik == "data" && !seenData:
					seenData = true
					// The shape may come later; bound by the body size.
					if x, ok = s.float32s(slices.Grow(dst[:0], inputSize), len(b), 0); !ok {
						return nil, false
					}
				default:
					return nil, false
				}
				if s.lit('}') {
					break
				}
				if !s.lit(',') {
					return nil, false
				}
			}
			if !s.lit(']') {
				return nil, false
			}
		default:
			return nil, false
		}
		if s.lit('}') {
			break
		}
		if !s.lit(',') {
			return nil, false
		}
	}
	if !s.end() || !seenInputs || !seenName || !seenShape || !seenType || !seenData {
		return nil, false
	}
	if len(shape) != 2 || shape[0] < 1 || shape[1] != inputSize {
		return nil, false // the full decoder says what is wrong
	}
	req.n = shape[0]
	if len(x) != req.n*inputSize {
		return nil, false
	}
	req.x = x
	return req, true
}

// digitsOnly reports whether a number literal is a plain non-negative
// integer, the only form the full decoder accepts in a shape.
func digitsOnly(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
