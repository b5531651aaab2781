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
