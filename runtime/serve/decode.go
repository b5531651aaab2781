package serve

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/valyala/fastjson"
)

// requestError is a client error with the HTTP status it maps to. Decoders
// return only these, so bad input can never turn into a 5xx.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, a ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

// v2Request is a decoded Open Inference Protocol infer request.
type v2Request struct {
	id      string
	hasID   bool
	x       []float32
	n       int
	outputs []string // requested output names; nil means all
}

// decodeV1 decodes {"instances": [[f, ...], ...]} into n rows of inputSize
// features. An instance may be nested (e.g. 28x28) as long as it holds
// exactly inputSize numbers; a bare number is an instance only when
// inputSize is 1.
func decodeV1(p *fastjson.Parser, body []byte, inputSize int) ([]float32, int, error) {
	v, err := p.ParseBytes(body)
	if err != nil {
		return nil, 0, badRequest("malformed JSON: %v", err)
	}
	if v.Type() != fastjson.TypeObject {
		return nil, 0, badRequest(`request body must be a JSON object with "instances", got %s`, v.Type())
	}
	// KServe's v1 takes the rows as "instances" or, in TF Serving's
	// columnar form, "inputs".
	field := "instances"
	inst := v.Get("instances")
	if in := v.Get("inputs"); in != nil {
		if inst != nil {
			return nil, 0, badRequest(`request has both "instances" and "inputs"; send one`)
		}
		field, inst = "inputs", in
	}
	if inst == nil {
		return nil, 0, badRequest(`request has no "instances" (or "inputs") field`)
	}
	rows, err := inst.Array()
	if err != nil {
		return nil, 0, badRequest(`%q must be an array of rows, got %s`, field, inst.Type())
	}
	if len(rows) == 0 {
		return nil, 0, badRequest(`%q is empty`, field)
	}
	x := make([]float32, 0, len(rows)*inputSize)
	fp32 := conv{datatype: "FP32"}
	for i, r := range rows {
		start := len(x)
		if r.Type() == fastjson.TypeNumber && inputSize != 1 {
			return nil, 0, badRequest("instance %d: expected an array of %d numbers, got a number", i, inputSize)
		}
		x, err = appendLeaves(x, r, &fp32, start+inputSize)
		if _, ok := err.(errTooMany); ok {
			return nil, 0, badRequest("instance %d has more than %d features, the model expects %d", i, inputSize, inputSize)
		}
		if err != nil {
			return nil, 0, badRequest("instance %d: %v", i, err)
		}
		if got := len(x) - start; got != inputSize {
			return nil, 0, badRequest("instance %d has %d features, the model expects %d", i, got, inputSize)
		}
	}
	return x, len(rows), nil
}

// errTooMany stops leaf collection early once more values than expected were
// seen, so an oversized request fails fast without growing x further.
type errTooMany struct{}

func (errTooMany) Error() string { return "more values than expected" }

// appendLeaves appends every scalar under v (in row-major order) to x,
// converting it per datatype, and stops with errTooMany past limit.
func appendLeaves(x []float32, v *fastjson.Value, c *conv, limit int) ([]float32, error) {
	switch v.Type() {
	case fastjson.TypeArray:
		a, _ := v.Array()
		var err error
		for _, e := range a {
			if x, err = appendLeaves(x, e, c, limit); err != nil {
				return x, err
			}
		}
		return x, nil
	case fastjson.TypeNumber, fastjson.TypeTrue, fastjson.TypeFalse:
		if len(x) >= limit {
			return x, errTooMany{}
		}
		f, err := c.scalar(v)
		if err != nil {
			return x, fmt.Errorf("value %d: %w", len(x), err)
		}
		return append(x, f), nil
	default:
		return x, fmt.Errorf("value %d: expected a number, got %s", len(x), v.Type())
	}
}

// conv converts JSON scalars of one Open Inference Protocol datatype; it is
// resolved once per tensor, not per value.
type conv struct {
	datatype      string
	isBool, isInt bool
	lo, hi        float64 // inclusive range of an integer type
}

// intRange gives the inclusive range of each integer datatype.
var intRange = map[string][2]float64{
	"INT8": {math.MinInt8, math.MaxInt8}, "INT16": {math.MinInt16, math.MaxInt16},
	"INT32": {math.MinInt32, math.MaxInt32}, "INT64": {math.MinInt64, math.MaxInt64},
	"UINT8": {0, math.MaxUint8}, "UINT16": {0, math.MaxUint16},
	"UINT32": {0, math.MaxUint32}, "UINT64": {0, math.MaxUint64},
}

func newConv(datatype string) conv {
	c := conv{datatype: datatype, isBool: datatype == "BOOL"}
	if r, ok := intRange[datatype]; ok {
		c.isInt, c.lo, c.hi = true, r[0], r[1]
	}
	return c
}

// scalar converts one JSON value to float32 as the datatype demands.
func (c *conv) scalar(v *fastjson.Value) (float32, error) {
	t := v.Type()
	if c.isBool {
		switch t {
		case fastjson.TypeTrue:
			return 1, nil
		case fastjson.TypeFalse:
			return 0, nil
		}
		return 0, fmt.Errorf("datatype BOOL needs true or false, got %s", t)
	}
	if t != fastjson.TypeNumber {
		return 0, fmt.Errorf("datatype %s needs a number, got %s", c.datatype, t)
	}
	// strconv, like the fast path, rounds correctly, so both agree.
	var buf [32]byte
	f, err := strconv.ParseFloat(string(v.MarshalTo(buf[:0])), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("bad number %s", v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("number %s is not finite", v)
	}
	if c.isInt {
		if f != math.Trunc(f) {
			return 0, fmt.Errorf("datatype %s needs an integer, got %s", c.datatype, v)
		}
		if f < c.lo || f > c.hi {
			return 0, fmt.Errorf("%s is out of range for %s", v, c.datatype)
		}
	}
	if f > math.MaxFloat32 || f < -math.MaxFloat32 {
		return 0, fmt.Errorf("%s overflows float32", v)
	}
	return float32(f), nil
}

// numericTypes are the Open Inference Protocol datatypes this server accepts;
// BYTES cannot feed a numeric model.
var numericTypes = map[string]bool{
	"BOOL": true, "FP16": true, "FP32": true, "FP64": true,
	"INT8": true, "INT16": true, "INT32": true, "INT64": true,
	"UINT8": true, "UINT16": true, "UINT32": true, "UINT64": true,
}

// decodeV2 decodes an Open Inference Protocol infer request with one input
// tensor, named and shaped as the model metadata says (checkV2Input):
// shape [n, inputSize]; data is flat or nested, row-major, and must hold
// exactly n*inputSize values of the datatype.
func decodeV2(p *fastjson.Parser, body []byte, inputSize int) (*v2Request, error) {
	v, err := p.ParseBytes(body)
	if err != nil {
		return nil, badRequest("malformed JSON: %v", err)
	}
	if v.Type() != fastjson.TypeObject {
		return nil, badRequest(`request body must be a JSON object with "inputs", got %s`, v.Type())
	}
	if usesBinary(v) {
		return nil, errBinary
	}
	req := &v2Request{}
	if id := v.Get("id"); id != nil {
		b, err := id.StringBytes()
		if err != nil {
			return nil, badRequest(`"id" must be a string, got %s`, id.Type())
		}
		req.id, req.hasID = string(b), true
	}
	if pv := v.Get("parameters"); pv != nil && pv.Type() != fastjson.TypeObject {
		return nil, badRequest(`"parameters" must be an object, got %s`, pv.Type())
	}
	iv := v.Get("inputs")
	if iv == nil {
		return nil, badRequest(`request has no "inputs" field`)
	}
	inputs, err := iv.Array()
	if err != nil {
		return nil, badRequest(`"inputs" must be an array, got %s`, iv.Type())
	}
	if len(inputs) != 1 {
		return nil, badRequest(`the model takes exactly 1 input tensor, got %d`, len(inputs))
	}
	in := inputs[0]
	if in.Type() != fastjson.TypeObject {
		return nil, badRequest(`inputs[0] must be an object, got %s`, in.Type())
	}
	name, ok := stringField(in, "name")
	if !ok {
		return nil, badRequest(`inputs[0].name must be a string`)
	}
	datatype, ok := stringField(in, "datatype")
	if !ok {
		return nil, badRequest(`input %q: "datatype" must be a string`, name)
	}
	if !numericTypes[datatype] {
		return nil, badRequest(`input %q: unsupported datatype %q (want FP32, FP64, FP16, INT8..INT64, UINT8..UINT64 or BOOL)`, name, datatype)
	}
	sv := in.Get("shape")
	if sv == nil || sv.Type() != fastjson.TypeArray {
		return nil, badRequest(`input %q: "shape" must be a non-empty array of integers`, name)
	}
	shapeV, _ := sv.Array()
	if len(shapeV) == 0 {
		return nil, badRequest(`input %q: "shape" must be a non-empty array of integers`, name)
	}
	shape := make([]int, len(shapeV))
	total := 1
	for i, d := range shapeV {
		n, err := d.Int()
		if err != nil || n < 0 {
			return nil, badRequest(`input %q: shape[%d] must be a non-negative integer, got %s`, name, i, d)
		}
		shape[i] = n
		// Bound the product so a hostile shape cannot overflow it.
		if total = total * max(n, 1); total > 1<<31 {
			return nil, badRequest(`input %q: shape %s is too large`, name, sv)
		}
	}
	if rerr := checkV2Input(name, shape, inputSize); rerr != nil {
		return nil, rerr
	}
	req.n = shape[0]
	want := req.n * inputSize
	dv := in.Get("data")
	if dv == nil {
		return nil, badRequest(`input %q has no "data"`, name)
	}
	if dv.Type() != fastjson.TypeArray {
		return nil, badRequest(`input %q: "data" must be an array, got %s`, name, dv.Type())
	}
	c := newConv(datatype)
	req.x, err = appendLeaves(make([]float32, 0, want), dv, &c, want)
	if _, ok := err.(errTooMany); ok {
		return nil, badRequest(`input %q: data holds more than the %d values shape %s needs`, name, want, sv)
	}
	if err != nil {
		return nil, badRequest(`input %q: %v`, name, err)
	}
	if len(req.x) != want {
		return nil, badRequest(`input %q: data holds %d values, shape %s needs %d`, name, len(req.x), sv, want)
	}
	if ov := v.Get("outputs"); ov != nil {
		outs, err := ov.Array()
		if err != nil {
			return nil, badRequest(`"outputs" must be an array, got %s`, ov.Type())
		}
		req.outputs = []string{}
		for i, o := range outs {
			on, ok := stringField(o, "name")
			if !ok {
				return nil, badRequest(`outputs[%d].name must be a string`, i)
			}
			req.outputs = append(req.outputs, on)
		}
	}
	return req, nil
}

// stringField returns the string at key of object v.
func stringField(v *fastjson.Value, key string) (string, bool) {
	f := v.Get(key)
	if f == nil || f.Type() != fastjson.TypeString {
		return "", false
	}
	b, _ := f.StringBytes()
	return string(b), true
}

// appendFloat32 appends f in the shortest form that round-trips as float32.
func appendFloat32(b []byte, f float32) []byte {
	return strconv.AppendFloat(b, float64(f), 'g', -1, 32)
}
