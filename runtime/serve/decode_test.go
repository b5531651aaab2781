package serve

import (
	"errors"
	"net/http"
	"testing"

	"github.com/valyala/fastjson"
)

func checkDecoded(t *testing.T, x []float32, n, inputSize int, err error) {
	t.Helper()
	if err != nil {
		var re *requestError
		if !errors.As(err, &re) || re.status != http.StatusBadRequest || re.msg == "" {
			t.Fatalf("decoder error is not a 400 requestError: %#v", err)
		}
		return
	}
	if n <= 0 || len(x) != n*inputSize {
		t.Fatalf("decoded %d values as %d rows of %d", len(x), n, inputSize)
	}
}

func FuzzDecodeV1(f *testing.F) {
	for _, s := range []string{
		`{"instances":[[1,2,3]]}`, `{"instances":[[1,2],[3,4.5e-3]]}`, `{"instances":[[[1],[2]],[3,4]]}`,
		`{"instances":[1,2]}`, `{"instances":[]}`, `{"instances":{}}`, `[]`, `{"instances":[[NaN,1]]}`,
		`{"instances":[[1e39,1]]}`, `{"instances":[[true,1]]}`, `{`, ``,
	} {
		f.Add([]byte(s), uint8(2))
	}
	var p fastjson.Parser
	f.Fuzz(func(t *testing.T, body []byte, size uint8) {
		inputSize := int(size%8) + 1
		x, n, err := decodeV1(&p, body, inputSize)
		checkDecoded(t, x, n, inputSize, err)
	})
}

func FuzzDecodeV2(f *testing.F) {
	for _, s := range []string{
		`{"id":"1","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}`,
		`{"id":"1","inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}`,
		`{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`,
		`{"inputs":[{"name":"x","shape":[1,2,1],"datatype":"INT64","data":[[1],[2]]}],"outputs":[{"name":"probabilities"}]}`,
		`{"inputs":[{"name":"x","shape":[2],"datatype":"BOOL","data":[true,false]}]}`,
		`{"inputs":[{"name":"x","shape":[2],"datatype":"UINT8","data":[256,1]}]}`,
		`{"inputs":[{"name":"x","shape":[0,2],"datatype":"FP32","data":[]}]}`,
		`{"inputs":[{"name":"x","shape":[9223372036854775807,2],"datatype":"FP32","data":[]}]}`,
		`{"inputs":[{"name":"x","shape":[2],"datatype":"BYTES","data":["a","b"]}]}`,
		`{"inputs":[{"shape":[2],"datatype":"FP32","data":[1,2]}],"parameters":[]}`,
		`{"inputs":[1]}`, `{"inputs":[]}`, `null`,
	} {
		f.Add([]byte(s), uint8(2))
	}
	var p fastjson.Parser
	f.Fuzz(func(t *testing.T, body []byte, size uint8) {
		inputSize := int(size%8) + 1
		req, err := decodeV2(&p, body, inputSize)
		if err != nil {
			checkDecoded(t, nil, 0, inputSize, err)
			return
		}
		checkDecoded(t, req.x, req.n, inputSize, nil)
	})
}

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		path          string
		rt            route
		name, version string
	}{
		{"/v1/models/digits:predict", routeV1Predict, "digits", ""},
		{"/v1/models/digits", routeV1Model, "digits", ""},
		{"/v1/models/:predict", routeUnknown, "", ""},
		{"/v1/models/a/b:predict", routeUnknown, "", ""},
		{"/v1/models/digits:explain", routeUnknown, "", ""},
		{"/v2", routeV2Server, "", ""},
		{"/v2/", routeV2Server, "", ""},
		{"/v2/health/live", routeLive, "", ""},
		{"/v2/health/ready", routeReady, "", ""},
		{"/v2/models/digits", routeV2Model, "digits", ""},
		{"/v2/models/digits/ready", routeV2ModelReady, "digits", ""},
		{"/v2/models/digits/infer", routeV2Infer, "digits", ""},
		{"/v2/models/digits/versions/3", routeV2Model, "digits", "3"},
		{"/v2/models/digits/versions/3/infer", routeV2Infer, "digits", "3"},
		{"/v2/models/digits/versions/3/ready", routeV2ModelReady, "digits", "3"},
		{"/v2/models/digits/versions//infer", routeUnknown, "", ""},
		{"/v2/models/", routeUnknown, "", ""},
		{"/v2/models/digits/infer/x", routeUnknown, "", ""},
		{"/metrics", routeMetrics, "", ""},
		{"/", routeUnknown, "", ""},
	} {
		rt, name, version := parseRoute(tc.path)
		if rt != tc.rt || name != tc.name || version != tc.version {
			t.Errorf("%s: got %s %q %q, want %s %q %q", tc.path, routeNames[rt], name, version, routeNames[tc.rt], tc.name, tc.version)
		}
	}
}

// FuzzFastPaths is a differential fuzz: whatever a fast path accepts, the
// full decoder must accept and decode identically.
func FuzzFastPaths(f *testing.F) {
	for _, s := range []string{
		`{"instances":[[1,2],[3,4]]}`, ` { "instances" : [ [ -0.5 , 1e-3 ] ] } `, `{"instances":[[1,2]],"x":1}`,
		`{"instances":[[01,2]]}`, `{"instances":[[1.,2]]}`, `{"instances":[[1e400,2]]}`, `{"instances":[[1,2]]}x`,
		`{"id":"a","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}`,
		`{"id":"a","inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}`,
		`{"inputs":[{"data":[1,2],"datatype":"FP64","shape":[1,2],"name":"input"}],"id":"7"}`,
		`{"inputs":[{"name":"inp\u0075t","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`,
		`{"inputs":[{"name":"input","shape":[2],"datatype":"FP32","data":[1,2]}]}`,
		`{"inputs":[{"data":[1,2],"datatype":"FP64","shape":[2],"name":"in"}],"id":"7"}`,
		`{"inputs":[{"name":"x","shape":[1,2,1],"datatype":"FP32","data":[1,2]}]}`,
		`{"inputs":[{"name":"x","shape":[0,2],"datatype":"FP32","data":[]}]}`,
		`{"inputs":[{"name":"x\u0041","shape":[2],"datatype":"FP32","data":[1,2]}]}`,
		`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2],"name":"y"}]}`,
		`{"inputs":[{"name":"x","shape":[2.0],"datatype":"FP32","data":[1,2]}]}`,
		`{"inputs":[{"name":"x","shape":[1e0,2],"datatype":"FP32","data":[1,2]}]}`,
	} {
		f.Add([]byte(s), uint8(2))
	}
	var p fastjson.Parser
	f.Fuzz(func(t *testing.T, body []byte, size uint8) {
		inputSize := int(size%8) + 1
		if x, n, ok := fastV1(body, inputSize); ok {
			sx, sn, err := decodeV1(&p, body, inputSize)
			if err != nil || sn != n || !equalFloats(sx, x) {
				t.Fatalf("v1 fast path: %v %d, full decoder: %v %d %v", x, n, sx, sn, err)
			}
		}
		if req, ok := fastV2(body, inputSize); ok {
			full, err := decodeV2(&p, body, inputSize)
			if err != nil || full.n != req.n || full.id != req.id || full.hasID != req.hasID || full.outputs != nil || !equalFloats(full.x, req.x) {
				t.Fatalf("v2 fast path: %+v, full decoder: %+v %v", req, full, err)
			}
		}
	})
}

func equalFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] { // -0 == 0 on purpose: the model cannot tell them apart
			return false
		}
	}
	return true
}

func TestFastPathsTakeCommonRequests(t *testing.T) {
	if _, n, ok := fastV1([]byte(` {"instances": [[1, 2.5e-1], [0,-3]]}`), 2); !ok || n != 2 {
		t.Error("fast v1 path refused a plain request")
	}
	if r, ok := fastV2([]byte(`{"id":"q","inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`), 2); !ok || r.n != 1 || r.id != "q" {
		t.Error("fast v2 path refused a plain request")
	}
	for _, body := range []string{`{"instances":[[1,2]],"instances":[[3,4]]}`, `{"instances":[[1,"2"]]}`, `{"instances":[[NaN,1]]}`} {
		if _, _, ok := fastV1([]byte(body), 2); ok {
			t.Errorf("fast v1 path took %s", body)
		}
	}
}

func TestFastPathNestedAndTruncated(t *testing.T) {
	if x, n, ok := fastV1([]byte(`{"instances":[[[1,2],[3,4]],[[5,6],[7,8]]]}`), 4); !ok || n != 2 || len(x) != 8 || x[7] != 8 {
		t.Errorf("nested v1: %v %d %v", x, n, ok)
	}
	body := `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[[1,2],[3,4]]}]}`
	if r, ok := fastV2([]byte(body), 4); !ok || r.n != 1 || r.x[3] != 4 {
		t.Errorf("nested v2: %+v %v", r, ok)
	}
	// Every prefix of a valid request must be refused without panicking.
	full := []byte(`{"instances":[[1, 2.5e3 ,[ 3 ],4]]}`)
	for i := range full {
		if _, _, ok := fastV1(full[:i], 4); ok {
			t.Errorf("prefix %q accepted", full[:i])
		}
	}
	if _, _, ok := fastV1(full, 4); !ok {
		t.Error("full request refused")
	}
}

func TestFastPathWhitespace(t *testing.T) {
	v2 := "{ \"id\" : \"a\" ,\n \"inputs\" : [ { \"name\" : \"input\" , \"shape\" : [ 1 , 2 ] , \"datatype\" : \"FP64\" , \"data\" : [ 1 , [ 2 ] ] } ] }\n"
	if r, ok := fastV2([]byte(v2), 2); !ok || r.n != 1 || r.x[1] != 2 || r.id != "a" {
		t.Errorf("spaced v2: %+v %v", r, ok)
	}
	v1 := "\t{ \"instances\" : [ [ 1 ,2 ] ,\r\n[3, 4 ] ] } "
	if x, n, ok := fastV1([]byte(v1), 2); !ok || n != 2 || x[3] != 4 {
		t.Errorf("spaced v1: %v %d %v", x, n, ok)
	}
}
