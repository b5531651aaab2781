package serve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestClient(t *testing.T) {
	l := mnist(3)
	_, hs := newTestServer(t, Config{Token: testToken}, l)
	var c Client
	ctx := context.Background()
	res, err := c.Predict(ctx, hs.URL, "digits", testToken, [][]float32{row(1), row(2)})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := l.Model.Predict(append(row(1), row(2)...), 2)
	if len(res.Predictions) != 2 || res.Predictions[1] != fmt.Sprint(argmax(want[10:])) || len(res.Probabilities[0]) != 10 {
		t.Fatalf("result %+v", res)
	}
	raw, err := c.PredictRaw(ctx, hs.URL+"/", "digits", testToken, []byte(" "+mustJSON([][]float32{row(1)})))
	if err != nil || !strings.Contains(string(raw), `"probabilities"`) {
		t.Fatalf("raw: %s %v", raw, err)
	}
	body := `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":` + mustJSON(row(1)) + `}]}`
	if raw, err := c.Infer(ctx, hs.URL, "digits", testToken, []byte(body)); err != nil || !strings.Contains(string(raw), `"model_version":"sha256:seed3"`) {
		t.Fatalf("infer: %s %v", raw, err)
	}
	if raw, err := c.PredictRaw(ctx, hs.URL, "digits", testToken, []byte(body)); err != nil || !strings.Contains(string(raw), `"outputs"`) {
		t.Fatalf("v2 body through PredictRaw: %s %v", raw, err)
	}
	_, err = c.Predict(ctx, hs.URL, "digits", "wrong", [][]float32{row(1)})
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 401 || !strings.Contains(he.Message, "bearer token") {
		t.Fatalf("wrong token: %v", err)
	}
	_, err = c.Predict(ctx, hs.URL, "digits", testToken, [][]float32{{1, 2}})
	if !errors.As(err, &he) || he.Status != 400 || !strings.Contains(err.Error(), "784") {
		t.Fatalf("bad row: %v", err)
	}
}

func TestReadTraffic(t *testing.T) {
	s, hs := newTestServer(t, Config{Token: testToken}, mnist(4))
	var c Client
	ctx := context.Background()
	for range 3 {
		if _, err := c.Predict(ctx, hs.URL, "digits", testToken, [][]float32{row(1), row(2)}); err != nil {
			t.Fatal(err)
		}
	}
	c.Predict(ctx, hs.URL, "digits", "bad", [][]float32{row(1)})
	c.Predict(ctx, hs.URL, "digits", testToken, [][]float32{{1}})
	if err := Health(ctx, hs.URL); err != nil {
		t.Fatal(err)
	}
	tr, err := ReadTraffic(ctx, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Requests != 5 || tr.ClientErrors != 2 || tr.ServerErrors != 0 || tr.Rows != 6 || tr.InFlight != 0 || tr.Version != "sha256:seed4" || tr.MeanLatency <= 0 {
		t.Fatalf("traffic %+v", tr)
	}
	// The health check counts among all requests, not among inferences.
	if tr.HTTPRequests != 6 {
		t.Fatalf("HTTPRequests %v, want 6", tr.HTTPRequests)
	}
	if tr, err = ReadTraffic(ctx, hs.URL); err != nil || tr.HTTPRequests != 7 || tr.Requests != 5 {
		t.Fatalf("second scrape (counts the first): %+v, %v", tr, err)
	}
	if c := s.Counts(); c != (TrafficCounts{Requests: 5, ClientErrors: 2, Rows: 6}) {
		t.Fatalf("counts %+v", c)
	}
	if _, err := ReadTraffic(ctx, "http://127.0.0.1:1"); err == nil {
		t.Fatal("no error for a dead endpoint")
	}
}
