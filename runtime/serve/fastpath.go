package serve

import (
	"math"
	"unsafe"

	"github.com/valyala/fastjson/fastfloat"
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

// number reads one strict JSON number.
func (s *scanner) number() (float64, bool) {
	s.ws()
	b, start := s.b, s.i
	i := s.i
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
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false
		}
	}
	s.i = i
	// The bytes are not retained, so viewing them as a string is safe.
	f, err := fastfloat.Parse(unsafe.String(&b[start], i-start))
	return f, err == nil
}

// float32s reads a flat array of numbers, appending at most limit values.
func (s *scanner) float32s(x []float32, limit int) ([]float32, bool) {
	if !s.lit('[') {
		return x, false
	}
	if s.lit(']') {
		return x, true
	}
	for {
		f, ok := s.number()
		if !ok || len(x) >= limit || math.IsInf(f, 0) || math.IsNaN(f) || f > math.MaxFloat32 || f < -math.MaxFloat32 {
			return x, false
		}
		x = append(x, float32(f))
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
	s := scanner{b: b}
	if !s.lit('{') {
		return nil, 0, false
	}
	if k, ok := s.str(); !ok || k != "instances" || !s.lit(':') || !s.lit('[') {
		return nil, 0, false
	}
	x := make([]float32, 0, inputSize)
	n := 0
	for {
		start := len(x)
		var ok bool
		if x, ok = s.float32s(x, start+inputSize); !ok || len(x)-start != inputSize {
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
					if _, ok := s.str(); !ok {
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
						f, ok := s.number()
						if !ok || f < 0 || f > 1<<31 || f != math.Trunc(f) || len(shape) > 8 {
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
					if x, ok = s.float32s(make([]float32, 0, inputSize), len(b)); !ok {
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
	switch {
	case len(shape) == 1 && shape[0] == inputSize:
		req.n = 1
	case len(shape) >= 2 && shape[0] > 0:
		feat := 1
		for _, d := range shape[1:] {
			if feat *= d; feat > inputSize {
				return nil, false
			}
		}
		if feat != inputSize {
			return nil, false
		}
		req.n = shape[0]
	default:
		return nil, false
	}
	if len(x) != req.n*inputSize {
		return nil, false
	}
	req.x = x
	return req, true
}
