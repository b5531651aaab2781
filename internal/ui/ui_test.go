package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/planner"
)

const token = "t0ken"

func newTestServer(t *testing.T, st *state.State) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "lepton.state.json")
	if st != nil {
		if err := state.Write(context.Background(), state.NewLocal(path), st, state.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(Options{Dir: dir, DataDir: filepath.Join(dir, ".lepton"), State: state.NewLocal(path), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func get(s *Server, target string, mod func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Host = "127.0.0.1:1234"
	if mod != nil {
		mod(r)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestAuth(t *testing.T) {
	s, _ := newTestServer(t, nil)
	cases := []struct {
		name   string
		target string
		mod    func(*http.Request)
		code   int
	}{
		{"no token", "/", nil, http.StatusForbidden},
		{"no token api", "/api/graph", nil, http.StatusForbidden},
		{"no token assets", "/static/app.js", nil, http.StatusForbidden},
		{"wrong token", "/?token=nope", nil, http.StatusForbidden},
		{"wrong cookie", "/api/graph", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: CookieName, Value: "nope"}) }, http.StatusForbidden},
		{"token in URL: cookie and redirect", "/?token=" + token, nil, http.StatusFound},
		{"token in URL on the API", "/api/graph?token=" + token, nil, http.StatusOK},
		{"cookie", "/api/graph", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: CookieName, Value: token}) }, http.StatusOK},
		{"bearer", "/static/app.js", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, http.StatusOK},
		{"foreign host", "/api/graph", func(r *http.Request) {
			r.Host = "evil.example:1234"
			r.Header.Set("Authorization", "Bearer "+token)
		}, http.StatusForbidden},
		{"localhost", "/api/graph", func(r *http.Request) {
			r.Host = "localhost:1234"
			r.Header.Set("Authorization", "Bearer "+token)
		}, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := get(s, c.target, c.mod)
			if w.Code != c.code {
				t.Fatalf("%s: %d, want %d (%s)", c.target, w.Code, c.code, w.Body.String())
			}
			if c.code == http.StatusFound {
				if loc := w.Header().Get("Location"); strings.Contains(loc, "token") {
					t.Errorf("redirect keeps the token: %s", loc)
				}
				ck := w.Result().Cookies()
				if len(ck) != 1 || ck[0].Value != token || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode {
					t.Errorf("cookie: %+v", ck)
				}
			}
		})
	}
	if _, err := New(Options{}); err == nil {
		t.Error("a dashboard without a token started")
	}
}

func bearer(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }

func TestGraph(t *testing.T) {
	price := 2.5
	st := state.New("test")
	st.Resources = []*state.Resource{
		{Address: "dataset.d", Kind: "dataset", Status: "ready", Attributes: json.RawMessage(`{}`)},
		{Address: "cluster.c", Kind: "cluster", Status: "ready", Attributes: json.RawMessage(fmt.Sprintf(`{"price_per_hour":%v}`, price))},
		{Address: "training.t[0]", Kind: "training", Status: "ready", Attributes: json.RawMessage(`{"status":"succeeded"}`), Dependencies: []string{"dataset.d", "cluster.c"}},
		{Address: "training.t[1]", Kind: "training", Status: "running", Attributes: json.RawMessage(`{}`), Dependencies: []string{"dataset.d"}},
		{Address: `endpoint.e["a"]`, Kind: "endpoint", Status: "tainted", Attributes: json.RawMessage(`{"status":"serving"}`), Dependencies: []string{"training.t"}},
	}
	s, _ := newTestServer(t, st)
	w := get(s, "/api/graph", bearer)
	var g Graph
	if err := json.Unmarshal(w.Body.Bytes(), &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 5 || g.Cost != price || g.Kinds["training"] != 2 {
		t.Fatalf("graph: %+v", g)
	}
	by := map[string]Node{}
	for _, n := range g.Nodes {
		by[n.Address] = n
	}
	// Status: the kind's own status when the instance is ready, else state's.
	for addr, want := range map[string]string{"training.t[0]": "succeeded", "training.t[1]": "running", `endpoint.e["a"]`: "tainted", "dataset.d": "ready"} {
		if by[addr].Status != want {
			t.Errorf("%s status %q, want %q", addr, by[addr].Status, want)
		}
	}
	// Columns by dependency depth.
	if by["dataset.d"].X != 0 || by["cluster.c"].X != 0 || by["training.t[0]"].X <= 0 || by[`endpoint.e["a"]`].X <= by["training.t[0]"].X {
		t.Errorf("layout: %+v", by)
	}
	if len(by["training.t[0]"].Deps) != 2 || len(by[`endpoint.e["a"]`].Deps) != 2 {
		t.Errorf("edges: %+v", by)
	}
	// The answer is kept until the state changes.
	if w2 := get(s, "/api/graph", bearer); w2.Body.String() != w.Body.String() {
		t.Error("the same state gave another graph")
	}
}

func TestDepthsWithCycleAndChain(t *testing.T) {
	nodes := []Node{{Deps: []int{1}}, {Deps: []int{0}}, {}, {Deps: []int{2}}, {Deps: []int{3}}}
	d := depths(nodes)
	if d[2] != 0 || d[3] != 1 || d[4] != 2 || d[0] != 0 || d[1] != 0 {
		t.Errorf("depths %v", d)
	}
}

func TestResourceRedactsAndNotFound(t *testing.T) {
	st := state.New("test")
	st.Resources = []*state.Resource{{Address: "endpoint.e", Kind: "endpoint", Name: "e", Status: "ready",
		Attributes: json.RawMessage(`{"model":"sha256:x","url":"http://127.0.0.1:1","token":"very-secret-token","replicas":1}`)}}
	s, _ := newTestServer(t, st)
	w := get(s, "/api/resource?addr=endpoint.e", bearer)
	if w.Code != 200 || strings.Contains(w.Body.String(), "very-secret-token") {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	if w := get(s, "/api/resource?addr=endpoint.nope", bearer); w.Code != http.StatusNotFound {
		t.Errorf("unknown address: %d", w.Code)
	}
	if w := get(s, "/api/logs?addr=dataset.nope", bearer); w.Code != http.StatusNotFound {
		t.Errorf("logs of an unknown address: %d", w.Code)
	}
}

const exposition = `# TYPE lepton_http_requests_total counter
lepton_http_requests_total{code="200",endpoint="e",route="v1_predict"} %d
lepton_http_requests_total{code="400",endpoint="e",route="v2_infer"} %d
lepton_http_requests_total{code="200",endpoint="e",route="metrics"} 99
# TYPE lepton_http_request_duration_seconds histogram
lepton_http_request_duration_seconds_bucket{endpoint="e",route="v1_predict",le="0.001"} %d
lepton_http_request_duration_seconds_bucket{endpoint="e",route="v1_predict",le="0.01"} %d
lepton_http_request_duration_seconds_bucket{endpoint="e",route="v1_predict",le="+Inf"} %d
lepton_http_request_duration_seconds_sum{endpoint="e",route="v1_predict"} 1
lepton_http_request_duration_seconds_count{endpoint="e",route="v1_predict"} %d
# TYPE lepton_workers gauge
lepton_workers{endpoint="e"} 2
`

func TestScrapePoints(t *testing.T) {
	t0 := time.Unix(1000, 0)
	mk := func(at time.Time, ok, bad, fast, mid, all int) sample {
		s, err := parseSample(strings.NewReader(fmt.Sprintf(exposition, ok, bad, fast, mid, all, all)), at)
		if err != nil {
			t.Fatal(err)
		}
		return *s
	}
	s0 := mk(t0, 0, 0, 0, 0, 0)
	// 10 s later: 90 good and 10 bad requests; 50 under 1 ms, 99 under 10 ms.
	s1 := mk(t0.Add(10*time.Second), 90, 10, 50, 99, 100)
	if s1.requests != 100 || s1.errors != 10 || s1.workers != 2 {
		t.Fatalf("sample %+v", s1)
	}
	ps := points([]sample{s0, s1})
	if len(ps) != 1 {
		t.Fatalf("points %+v", ps)
	}
	p := ps[0]
	if p.RPS != 10 || math.Abs(p.ErrorRate-0.1) > 1e-9 {
		t.Errorf("rps %v error rate %v", p.RPS, p.ErrorRate)
	}
	if math.Abs(p.P50-1) > 1e-9 { // the 50th of 100 is the top of the first bucket
		t.Errorf("p50 %v ms", p.P50)
	}
	if p.P99 <= 1 || p.P99 > 10+1e-9 {
		t.Errorf("p99 %v ms", p.P99)
	}
	// A restarted server's counters begin again.
	s2 := mk(t0.Add(20*time.Second), 5, 0, 5, 5, 5)
	if ps := points([]sample{s1, s2}); ps[0].RPS != 0.5 {
		t.Errorf("after a restart: %+v", ps)
	}
	if q := quantile(0.5, nil); !math.IsNaN(q) {
		t.Errorf("quantile of nothing: %v", q)
	}
}

func TestPlanAndApplyViews(t *testing.T) {
	s, dir := newTestServer(t, nil)
	calls := make(chan struct{}, 4)
	s.plans = &planCache{fn: func(context.Context) (*planner.Plan, error) {
		calls <- struct{}{}
		return nil, fmt.Errorf("Error: Unsupported argument")
	}}
	var v PlanView
	for i := 0; i < 50; i++ {
		json.Unmarshal(get(s, "/api/plan", bearer).Body.Bytes(), &v)
		if v.Status == "error" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v.Status != "error" || !strings.Contains(v.Error, "Unsupported argument") || len(calls) != 1 {
		t.Fatalf("plan view %+v after %d plans", v, len(calls))
	}

	var a struct{ Apply *ApplyRecord }
	json.Unmarshal(get(s, "/api/apply", bearer).Body.Bytes(), &a)
	if a.Apply != nil {
		t.Fatalf("an apply before any: %+v", a.Apply)
	}
	rec := NewRecorder(nopHooks{})
	rec.Done("dataset.d", planner.Create, 2*time.Second, "4 rows")
	rec.Failed("training.t", planner.Create, fmt.Errorf("boom"))
	if err := WriteLastApply(filepath.Join(dir, ".lepton"), rec.Record("apply", planner.ApplyResult{Added: 1}, []string{"training.t failed"})); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(get(s, "/api/apply", bearer).Body.Bytes(), &a)
	if a.Apply == nil || a.Apply.Added != 1 || len(a.Apply.Resources) != 2 || a.Apply.Resources[1].Error != "boom" {
		t.Fatalf("last apply %+v", a.Apply)
	}
	if _, err := os.Stat(LastApplyPath(filepath.Join(dir, ".lepton"))); err != nil {
		t.Fatal(err)
	}
}

type nopHooks struct{}

func (nopHooks) Start(string, planner.Action)                       {}
func (nopHooks) Done(string, planner.Action, time.Duration, string) {}
func (nopHooks) Failed(string, planner.Action, error)               {}
func (nopHooks) Log(string, string)                                 {}
