package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/leptonml/lepton/runtime/serve/testmodel"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const testToken = "s3cret-token"

func newTestServer(t *testing.T, cfg Config, l Loaded) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "digits"
	}
	s, err := New(cfg, l)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); s.Close() })
	return s, hs
}

func mnist(seed uint64) Loaded {
	return Loaded{Version: fmt.Sprintf("sha256:seed%d", seed), Model: testmodel.MNIST(seed)}
}

func row(seed int) []float32 {
	x := make([]float32, 784)
	for i := range x {
		x[i] = float32((i*7+seed*13)%255) / 255
	}
	return x
}

func do(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); method != http.MethodHead && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("%s %s: content type %q", method, url, ct)
	}
	var m map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: response is not JSON: %v: %s", method, url, err, b)
		}
	}
	return resp.StatusCode, m
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestV1PredictMatchesModel(t *testing.T) {
	l := mnist(1)
	_, hs := newTestServer(t, Config{Token: testToken}, l)
	rows := [][]float32{row(1), row(2), row(3)}
	code, resp := do(t, "POST", hs.URL+"/v1/models/digits:predict", testToken, mustJSON(map[string]any{"instances": rows}))
	if code != 200 {
		t.Fatalf("code %d: %v", code, resp)
	}
	flat := append(append(append([]float32{}, rows[0]...), rows[1]...), rows[2]...)
	want, _ := l.Model.Predict(flat, 3)
	preds := resp["predictions"].([]any)
	probs := resp["probabilities"].([]any)
	if len(preds) != 3 || len(probs) != 3 {
		t.Fatalf("got %d predictions, %d probability rows", len(preds), len(probs))
	}
	for i := range 3 {
		w := want[i*10 : (i+1)*10]
		if got, exp := preds[i], fmt.Sprint(argmax(w)); got != exp {
			t.Errorf("row %d: prediction %v, want %v", i, got, exp)
		}
		for k, p := range probs[i].([]any) {
			if math.Abs(p.(float64)-float64(w[k])) > 1e-6 {
				t.Errorf("row %d class %d: %v want %v", i, k, p, w[k])
			}
		}
	}
}

func TestV1Regression(t *testing.T) {
	m := testmodel.New(3, 4, 8, 1, true)
	_, hs := newTestServer(t, Config{Name: "price"}, Loaded{Version: "v1", Model: m})
	x := []float32{1, 2, 3, 4, 0.5, 0.5, 0.5, 0.5}
	code, resp := do(t, "POST", hs.URL+"/v1/models/price:predict", "", `{"instances":[[1,2,3,4],[[0.5,0.5],[0.5,0.5]]]}`)
	if code != 200 {
		t.Fatalf("code %d: %v", code, resp)
	}
	want, _ := m.Predict(x, 2)
	preds := resp["predictions"].([]any)
	for i := range 2 {
		if math.Abs(preds[i].(float64)-float64(want[i])) > 1e-6 {
			t.Errorf("row %d: %v want %v", i, preds[i], want[i])
		}
	}
	if _, ok := resp["probabilities"]; ok {
		t.Error("regression response has probabilities")
	}
}

// TestV2InferSpecExample sends a request shaped as in the Open Inference
// Protocol specification (nested data, id, requested outputs).
func TestV2InferSpecExample(t *testing.T) {
	l := mnist(2)
	_, hs := newTestServer(t, Config{Token: testToken}, l)
	r1, r2 := row(4), row(5)
	nested := [][]float32{r1, r2}
	for _, tc := range []struct {
		name, datatype string
		data           any
		shape          []int
		outputs        []map[string]string
		wantOutputs    []string
		url            string
	}{
		{"nested FP32", "FP32", nested, []int{2, 784}, nil, []string{"predictions", "probabilities"}, "/v2/models/digits/infer"},
		{"flat FP64", "FP64", append(append([]float32{}, r1...), r2...), []int{2, 784}, []map[string]string{{"name": "probabilities"}}, []string{"probabilities"}, "/v2/models/digits/infer"},
		{"by version", "FP32", nested, []int{2, 784}, []map[string]string{{"name": "predictions"}}, []string{"predictions"}, "/v2/models/digits/versions/sha256:seed2/infer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := map[string]any{"id": "42", "inputs": []any{map[string]any{"name": "input", "shape": tc.shape, "datatype": tc.datatype, "data": tc.data}}}
			if tc.outputs != nil {
				req["outputs"] = tc.outputs
			}
			code, resp := do(t, "POST", hs.URL+tc.url, testToken, mustJSON(req))
			if code != 200 {
				t.Fatalf("code %d: %v", code, resp)
			}
			if resp["id"] != "42" || resp["model_name"] != "digits" || resp["model_version"] != l.Version {
				t.Errorf("header fields: %v", resp)
			}
			want, _ := l.Model.Predict(append(append([]float32{}, r1...), r2...), 2)
			outs := resp["outputs"].([]any)
			if len(outs) != len(tc.wantOutputs) {
				t.Fatalf("outputs %v, want %v", outs, tc.wantOutputs)
			}
			for i, o := range outs {
				o := o.(map[string]any)
				if o["name"] != tc.wantOutputs[i] {
					t.Fatalf("output %d is %v, want %s", i, o["name"], tc.wantOutputs[i])
				}
				data := o["data"].([]any)
				switch o["name"] {
				case "predictions":
					if o["datatype"] != "BYTES" || mustJSON(o["shape"]) != "[2]" {
						t.Errorf("predictions tensor %v", o)
					}
					for r := range 2 {
						if data[r] != fmt.Sprint(argmax(want[r*10:(r+1)*10])) {
							t.Errorf("row %d label %v", r, data[r])
						}
					}
				case "probabilities":
					if o["datatype"] != "FP32" || mustJSON(o["shape"]) != "[2,10]" || len(data) != 20 {
						t.Fatalf("probabilities tensor %v", o)
					}
					for k := range data {
						if math.Abs(data[k].(float64)-float64(want[k])) > 1e-6 {
							t.Errorf("value %d: %v want %v", k, data[k], want[k])
						}
					}
				}
			}
		})
	}
}

func TestV2IntegerAndBoolDatatypes(t *testing.T) {
	m := testmodel.New(5, 3, 4, 2, false)
	_, hs := newTestServer(t, Config{Name: "m"}, Loaded{Version: "1", Model: m})
	want, _ := m.Predict([]float32{1, 0, 1, 2, 3, 4}, 2)
	for _, dt := range []struct {
		typ  string
		data string
	}{{"BOOL", `[[true,false,true],[true,true,true]]`}, {"INT64", `[1,0,1,2,3,4]`}, {"UINT8", `[1,0,1,2,3,4]`}} {
		data := dt.data
		if dt.typ == "BOOL" {
			want, _ = m.Predict([]float32{1, 0, 1, 1, 1, 1}, 2)
		} else {
			want, _ = m.Predict([]float32{1, 0, 1, 2, 3, 4}, 2)
		}
		body := fmt.Sprintf(`{"inputs":[{"name":"input","shape":[2,3],"datatype":%q,"data":%s}],"outputs":[{"name":"probabilities"}]}`, dt.typ, data)
		code, resp := do(t, "POST", hs.URL+"/v2/models/m/infer", "", body)
		if code != 200 {
			t.Fatalf("%s: %d %v", dt.typ, code, resp)
		}
		got := resp["outputs"].([]any)[0].(map[string]any)["data"].([]any)
		for k := range got {
			if math.Abs(got[k].(float64)-float64(want[k])) > 1e-6 {
				t.Errorf("%s value %d: %v want %v", dt.typ, k, got[k], want[k])
			}
		}
	}
}

// TestBadRequests checks every kind of bad input gets its 4xx with a JSON
// error, and that the server answers a good request afterwards.
func TestBadRequests(t *testing.T) {
	_, hs := newTestServer(t, Config{Token: testToken, MaxBodyBytes: 64 << 10}, mnist(1))
	good := mustJSON(map[string]any{"instances": [][]float32{row(1)}})
	v2body := func(shape, datatype, data string) string {
		return fmt.Sprintf(`{"inputs":[{"name":"input","shape":%s,"datatype":%q,"data":%s}]}`, shape, datatype, data)
	}
	big := `{"instances":[` + strings.Repeat("0.5,", 40000) + `0]}`
	const (
		v1 = "/v1/models/digits:predict"
		v2 = "/v2/models/digits/infer"
	)
	for _, tc := range []struct {
		name, method, path, token, body string
		code                            int
		msg                             string
	}{
		{"malformed json v1", "POST", v1, testToken, `{"instances": [[1,2`, 400, "malformed JSON"},
		{"malformed json v2", "POST", v2, testToken, `{inputs}`, 400, "malformed JSON"},
		{"not an object", "POST", v1, testToken, `[1,2]`, 400, "JSON object"},
		{"no instances", "POST", v1, testToken, `{"rows":[[1]]}`, 400, `no "instances"`},
		{"instances and inputs", "POST", v1, testToken, `{"instances":[[1]],"inputs":[[1]]}`, 400, `both "instances" and "inputs"`},
		{"empty instances", "POST", v1, testToken, `{"instances":[]}`, 400, "empty"},
		{"wrong feature count", "POST", v1, testToken, `{"instances":[[1,2,3]]}`, 400, "has 3 features, the model expects 784"},
		{"too many features", "POST", v1, testToken, `{"instances":[` + mustJSON(append(row(1), 1)) + `]}`, 400, "more than 784 features"},
		{"string feature", "POST", v1, testToken, `{"instances":[["a"]]}`, 400, "expected a number"},
		{"NaN feature", "POST", v1, testToken, `{"instances":[[NaN]]}`, 400, "not finite"},
		{"v2 wrong datatype", "POST", v2, testToken, v2body(`[1,784]`, "BYTES", `["a"]`), 400, "unsupported datatype"},
		{"v2 unknown datatype", "POST", v2, testToken, v2body(`[1,784]`, "FP128", `[1]`), 400, "unsupported datatype"},
		{"v2 int datatype with float", "POST", v2, testToken, v2body(`[1,784]`, "INT32", mustJSON(append([]float32{1.5}, make([]float32, 783)...))), 400, "needs an integer"},
		{"v2 uint8 out of range", "POST", v2, testToken, v2body(`[1,784]`, "UINT8", mustJSON(append([]float32{300}, make([]float32, 783)...))), 400, "out of range"},
		{"v2 wrong shape", "POST", v2, testToken, v2body(`[1,783]`, "FP32", `[1]`), 400, "shape [1,783] does not match the model's input shape [-1, 784]"},
		{"v2 one row without a batch dimension", "POST", v2, testToken, v2body(`[784]`, "FP32", mustJSON(row(1))), 400, "shape [784] does not match the model's input shape [-1, 784]: send [n, 784]"},
		{"v2 image shape", "POST", v2, testToken, v2body(`[1,28,28]`, "FP32", mustJSON(row(1))), 400, "shape [1,28,28] does not match the model's input shape [-1, 784]"},
		{"v2 empty batch", "POST", v2, testToken, v2body(`[0,784]`, "FP32", `[]`), 400, "shape [0,784] does not match"},
		{"v2 wrong input name", "POST", v2, testToken, `{"inputs":[{"name":"x","shape":[1,784],"datatype":"FP32","data":` + mustJSON(row(1)) + `}]}`, 400, `unknown input "x": the model's input is "input", datatype FP32, shape [-1, 784]`},
		{"v2 binary data parameter", "POST", v2, testToken, `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}]}`, 400, "binary data is not supported"},
		{"v2 binary output", "POST", v2, testToken, `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":` + mustJSON(row(1)) + `}],"outputs":[{"name":"predictions","parameters":{"binary_data":true}}]}`, 400, "binary data is not supported"},
		{"v2 shape vs data", "POST", v2, testToken, v2body(`[2,784]`, "FP32", mustJSON(row(1))), 400, "holds 784 values, shape [2,784] needs 1568"},
		{"v2 negative dim", "POST", v2, testToken, v2body(`[-1,784]`, "FP32", `[]`), 400, "non-negative"},
		{"v2 huge shape", "POST", v2, testToken, v2body(`[99999999999,784]`, "FP32", `[]`), 400, "too large"},
		{"v2 two inputs", "POST", v2, testToken, `{"inputs":[{},{}]}`, 400, "exactly 1 input"},
		{"v2 no inputs", "POST", v2, testToken, `{"id":"1"}`, 400, `no "inputs"`},
		{"v2 id not string", "POST", v2, testToken, `{"id":1,"inputs":[]}`, 400, `"id" must be a string`},
		{"v2 unknown output", "POST", v2, testToken, `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":` + mustJSON(row(1)) + `}],"outputs":[{"name":"logits"}]}`, 400, `unknown output "logits"`},
		{"missing token", "POST", v1, "", good, 401, "bearer token"},
		{"wrong token", "POST", v1, "nope", good, 401, "bearer token"},
		{"token prefix", "POST", v2, testToken[:4], good, 401, "bearer token"},
		{"unknown model v1", "POST", "/v1/models/cats:predict", testToken, good, 404, `model "cats" not found`},
		{"unknown model v1 status", "GET", "/v1/models/cats", "", "", 404, `model "cats" not found`},
		{"unknown model v2", "POST", "/v2/models/cats/infer", testToken, good, 400, `model "cats" not found`},
		{"unknown version", "GET", "/v2/models/digits/versions/9", "", "", 400, `no version "9"`},
		{"unknown version infer", "POST", "/v2/models/digits/versions/9/infer", testToken, good, 400, `no version "9"`},
		{"unknown metadata", "GET", "/v2/models/cats", "", "", 400, "not found"},
		{"unknown model ready", "GET", "/v2/models/cats/ready", "", "", 400, "not found"},
		{"unknown route", "GET", "/v3/whatever", "", "", 404, "no route"},
		{"wrong method predict", "GET", v1, testToken, "", 405, "not allowed"},
		{"wrong method infer", "PUT", v2, testToken, good, 405, "not allowed"},
		{"wrong method health", "POST", "/v2/health/ready", "", "", 405, "not allowed"},
		{"too large", "POST", v1, testToken, big, 413, "exceeds the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, resp := do(t, tc.method, hs.URL+tc.path, tc.token, tc.body)
			if code != tc.code {
				t.Fatalf("code %d, want %d: %v", code, tc.code, resp)
			}
			msg, _ := resp["error"].(string)
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("error %q does not mention %q", msg, tc.msg)
			}
		})
	}
	if code, resp := do(t, "POST", hs.URL+v1, testToken, good); code != 200 {
		t.Fatalf("server stopped serving after bad requests: %d %v", code, resp)
	}
}

func TestChunkedBodyTooLarge(t *testing.T) {
	_, hs := newTestServer(t, Config{MaxBodyBytes: 1024}, mnist(1))
	// An unknown length forces the limit to be enforced while reading.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"instances":[[` + strings.Repeat("1,", 2000) + `1]]}`))
		pw.Close()
	}()
	resp, err := http.Post(hs.URL+"/v1/models/digits:predict", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("code %d, want 413", resp.StatusCode)
	}
}

func TestMetadataHealthAndMetrics(t *testing.T) {
	s, hs := newTestServer(t, Config{Token: testToken}, mnist(1))
	for _, tc := range []struct {
		path string
		want string
	}{
		{"/v2/health/live", `{"live":true}`},
		{"/v2/health/ready", `{"ready":true}`},
		{"/v2/models/digits/ready", `{"name":"digits","ready":true}`},
		{"/v1/models/digits", `{"name":"digits","ready":true}`},
		{"/v2", `{"extensions":[],"name":"lepton","version":"dev"}`},
		{"/v2/models/digits", `{"name":"digits","versions":["sha256:seed1"],"platform":"lepton","inputs":[{"name":"input","datatype":"FP32","shape":[-1,784]}],"outputs":[{"name":"predictions","datatype":"BYTES","shape":[-1]},{"name":"probabilities","datatype":"FP32","shape":[-1,10]}],"classes":["0","1","2","3","4","5","6","7","8","9"]}`},
	} {
		resp, err := http.Get(hs.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != tc.want {
			t.Errorf("GET %s: %d %s\nwant %s", tc.path, resp.StatusCode, b, tc.want)
		}
	}
	do(t, "POST", hs.URL+"/v1/models/digits:predict", testToken, mustJSON(map[string]any{"instances": [][]float32{row(1), row(2)}}))
	do(t, "POST", hs.URL+"/v1/models/digits:predict", "bad", "{}")
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
	for _, want := range []string{
		`lepton_http_requests_total{code="200",endpoint="digits",route="v1_predict"} 1`,
		`lepton_http_requests_total{code="401",endpoint="digits",route="v1_predict"} 1`,
		`lepton_http_request_duration_seconds_bucket{endpoint="digits",route="v1_predict",le="+Inf"} 2`,
		`lepton_http_requests_in_flight{endpoint="digits"} 1`, // the /metrics request itself
		`lepton_batch_rows_sum{endpoint="digits"} 2`,
		`lepton_model_info{endpoint="digits",version="sha256:seed1"} 1`,
		`lepton_workers{endpoint="digits"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if err := s.Swap(mnist(9)); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(s.m.modelInfo.WithLabelValues("sha256:seed9")); got != 1 {
		t.Errorf("model info after swap = %v", got)
	}
	if n := testutil.CollectAndCount(s.m.modelInfo); n != 1 {
		t.Errorf("model info has %d series after swap, want 1", n)
	}
}

// gateModel blocks Predict until released, to hold requests in flight.
type gateModel struct {
	Model
	entered chan int
	release chan struct{}
}

func (g *gateModel) Predict(x []float32, n int) ([]float32, error) {
	g.entered <- n
	<-g.release
	return g.Model.Predict(x, n)
}

// TestMicroBatching holds the only worker busy so that concurrent requests
// queue, then checks they are scored together in one Predict call.
func TestMicroBatching(t *testing.T) {
	g := &gateModel{Model: testmodel.MNIST(1), entered: make(chan int, 16), release: make(chan struct{})}
	s, hs := newTestServer(t, Config{Workers: 1, MaxBatchSize: 4}, Loaded{Version: "g", Model: g})
	body := mustJSON(map[string]any{"instances": [][]float32{row(1)}})
	var wg sync.WaitGroup
	codes := make(chan int, 7)
	post := func() {
		defer wg.Done()
		resp, err := http.Post(hs.URL+"/v1/models/digits:predict", "application/json", strings.NewReader(body))
		if err != nil {
			codes <- 0
			return
		}
		resp.Body.Close()
		codes <- resp.StatusCode
	}
	wg.Add(1)
	go post()
	if n := <-g.entered; n != 1 {
		t.Fatalf("first batch has %d rows", n)
	}
	for range 6 {
		wg.Add(1)
		go post()
	}
	// Wait until all six are queued behind the busy worker.
	for len(s.jobs) < 6 {
		runtimeGosched()
	}
	close(g.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("request failed with %d", c)
		}
	}
	close(g.entered)
	var sizes []int
	for n := range g.entered {
		sizes = append(sizes, n)
	}
	if fmt.Sprint(sizes) != "[4 2]" {
		t.Fatalf("batches after the first = %v, want [4 2] (MaxBatchSize 4)", sizes)
	}
}

func TestOversizedRequestIsChunked(t *testing.T) {
	l := mnist(1)
	_, hs := newTestServer(t, Config{MaxBatchSize: 2}, l)
	rows := [][]float32{row(1), row(2), row(3), row(4), row(5)}
	code, resp := do(t, "POST", hs.URL+"/v1/models/digits:predict", "", mustJSON(map[string]any{"instances": rows}))
	if code != 200 {
		t.Fatalf("%d %v", code, resp)
	}
	probs := resp["probabilities"].([]any)
	if len(probs) != 5 {
		t.Fatalf("%d rows", len(probs))
	}
	want, _ := l.Model.Predict(rows[4], 1)
	if got := probs[4].([]any)[3].(float64); math.Abs(got-float64(want[3])) > 1e-6 {
		t.Errorf("row 4 class 3: %v want %v", got, want[3])
	}
}

type failingModel struct{ Model }

func (failingModel) Predict([]float32, int) ([]float32, error) { panic("boom") }

func TestModelPanicIs500AndServerSurvives(t *testing.T) {
	s, hs := newTestServer(t, Config{}, Loaded{Version: "bad", Model: failingModel{testmodel.MNIST(1)}})
	body := mustJSON(map[string]any{"instances": [][]float32{row(1)}})
	if code, resp := do(t, "POST", hs.URL+"/v1/models/digits:predict", "", body); code != 500 || !strings.Contains(resp["error"].(string), "panicked") {
		t.Fatalf("%d %v", code, resp)
	}
	s.Swap(mnist(1))
	if code, _ := do(t, "POST", hs.URL+"/v1/models/digits:predict", "", body); code != 200 {
		t.Fatalf("after swap: %d", code)
	}
}

// TestSwapAndResizeUnderLoad swaps models and changes the worker count while
// clients keep calling; no request may fail and both versions must be seen.
func TestSwapAndResizeUnderLoad(t *testing.T) {
	a, b := mnist(1), mnist(2)
	s, hs := newTestServer(t, Config{Workers: 2}, a)
	body := `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":` + mustJSON(row(1)) + `}]}`
	var (
		stop     atomic.Bool
		failures atomic.Int64
		requests atomic.Int64
		seenMu   sync.Mutex
		seen     = map[string]int{}
		wg       sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, err := http.Post(hs.URL+"/v2/models/digits/infer", "application/json", strings.NewReader(body))
				requests.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				var r struct {
					Version string `json:"model_version"`
				}
				json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
					continue
				}
				seenMu.Lock()
				seen[r.Version]++
				seenMu.Unlock()
			}
		}()
	}
	for i := range 40 {
		next := a
		if i%2 == 0 {
			next = b
		}
		if err := s.Swap(next); err != nil {
			t.Fatal(err)
		}
		s.SetWorkers(1 + i%4)
		// Let some requests through on this model before the next swap.
		for start := requests.Load(); requests.Load() < start+5; {
			runtimeGosched()
		}
	}
	stop.Store(true)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed during swaps", f, requests.Load())
	}
	if seen[a.Version] == 0 || seen[b.Version] == 0 {
		t.Fatalf("versions seen: %v", seen)
	}
}

// TestServeDrainsInFlight cancels Serve while a request is being scored;
// the request must complete and Serve must return cleanly.
func TestServeDrainsInFlight(t *testing.T) {
	g := &gateModel{Model: testmodel.MNIST(1), entered: make(chan int, 1), release: make(chan struct{})}
	s, err := New(Config{Name: "digits"}, Loaded{Version: "g", Model: g})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	got := make(chan int, 1)
	go func() {
		resp, err := http.Post(url+"/v1/models/digits:predict", "application/json", bytes.NewReader([]byte(mustJSON(map[string]any{"instances": [][]float32{row(1)}}))))
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-g.entered
	cancel()
	// Readiness turns false while draining.
	for !s.draining.Load() {
		runtimeGosched()
	}
	close(g.release)
	if code := <-got; code != 200 {
		t.Fatalf("in-flight request got %d during drain", code)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(url + "/v2/health/live"); err == nil {
		t.Fatal("server still accepting after drain")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		l   Loaded
		msg string
	}{
		{Config{}, mnist(1), "Name is required"},
		{Config{Name: "a/b"}, mnist(1), "must not contain"},
		{Config{Name: "a"}, Loaded{}, "no model"},
		{Config{Name: "a"}, Loaded{Model: testmodel.New(1, 0, 1, 1, true)}, "input size 0"},
	} {
		_, err := New(tc.cfg, tc.l)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("New(%+v): %v, want %q", tc.cfg, err, tc.msg)
		}
	}
}

// TestConcurrentAnswersMatchTheirRequests sends different rows from many
// clients at once (so they share batches and recycled buffers) and checks
// every answer against its own row.
func TestConcurrentAnswersMatchTheirRequests(t *testing.T) {
	l := mnist(6)
	_, hs := newTestServer(t, Config{Workers: 2, MaxBatchSize: 8}, l)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				seed := c*100 + i
				rows := [][]float32{row(seed)}
				if i%3 == 0 {
					rows = append(rows, row(seed+1))
				}
				var flat []float32
				for _, r := range rows {
					flat = append(flat, r...)
				}
				want, _ := l.Model.Predict(flat, len(rows))
				resp, err := http.Post(hs.URL+"/v1/models/digits:predict", "application/json", strings.NewReader(mustJSON(map[string]any{"instances": rows})))
				if err != nil {
					errs <- err
					return
				}
				var got struct{ Probabilities [][]float64 }
				json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				if len(got.Probabilities) != len(rows) {
					errs <- fmt.Errorf("client %d request %d: %d rows back", c, i, len(got.Probabilities))
					return
				}
				for r := range rows {
					for k, p := range got.Probabilities[r] {
						if math.Abs(p-float64(want[r*10+k])) > 1e-6 {
							errs <- fmt.Errorf("client %d request %d row %d: got another row's answer", c, i, r)
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
