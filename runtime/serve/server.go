// Package serve is lepton's model server: the KServe v1 and Open Inference
// Protocol v2 HTTP APIs, Prometheus metrics, bearer-token auth, request
// limits and micro-batching over a Model, plus the detached process mode
// (Main, Start, Stop) the local provider runs endpoints in.
package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fastjson"
)

// Config configures a Server. Zero values get the defaults noted.
type Config struct {
	Addr  string // listen address for Run; default "127.0.0.1:0"
	Name  string // model name in the routes (/v1/models/NAME:predict); required
	Token string // bearer token for inference routes; empty turns auth off

	MaxBatchSize int           // most rows per model Predict call; default 256
	MaxBodyBytes int64         // largest request body; default 16 MiB
	Workers      int           // concurrent Predict calls (replicas); default GOMAXPROCS, at most 256
	BatchWindow  time.Duration // how long a batch may wait for requests still being decoded; default 0 (never wait)
	QueueSize    int           // decoded requests waiting to be scored; default 4096

	ShutdownTimeout time.Duration // how long Run drains in-flight requests; default 30s
	ServerVersion   string        // reported by GET /v2; default "dev"
	Logger          *slog.Logger  // default: discard
}

func (c *Config) defaults() error {
	if c.Name == "" {
		return errors.New("serve: Config.Name is required")
	}
	if strings.ContainsAny(c.Name, "/:") {
		return fmt.Errorf("serve: model name %q must not contain '/' or ':'", c.Name)
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.MaxBatchSize <= 0 {
		c.MaxBatchSize = defaultMaxBatch
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 16 << 20
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 4096
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.ServerVersion == "" {
		c.ServerVersion = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server serves one model. It is an http.Handler; Run/Serve add a listener
// and graceful shutdown. Swap and SetWorkers change it while it serves.
type Server struct {
	cfg      Config
	auth     atomic.Pointer[authState]
	model    atomic.Pointer[modelState]
	m        *metrics
	latency  [numRoutes]prometheus.Observer
	metricsH http.Handler

	maxBatch atomic.Int64
	counts   struct{ requests, clientErrors, serverErrors, rows atomic.Int64 }
	jobs     chan *job
	decoding atomic.Int64 // inference requests between arrival and enqueue
	draining atomic.Bool
	parsers  fastjson.ParserPool
	bufs     sync.Pool // *bytes.Buffer for request and response bodies

	// slots bounds concurrent Predict calls: a request that takes a slot
	// scores queued requests itself (see submit). It holds the running
	// executors plus reserved tokens, so SetWorkers can resize it.
	slots    chan struct{}
	batchBuf sync.Pool // *[]float32 for concatenating a batch
	floats   sync.Pool // *[]float32 for decoded request features

	wmu      sync.Mutex
	nworkers int
	reserved int
}

// maxWorkers bounds Config.Workers and SetWorkers.
const maxWorkers = 256

const defaultMaxBatch = 256

// authState is the token digest checked on inference routes; on is false
// when auth is off.
type authState struct {
	on  bool
	sum [sha256.Size]byte
}

// New returns a Server for l. Close it when done serving it as a plain
// http.Handler; Run and Serve close it themselves.
func New(cfg Config, l Loaded) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, m: newMetrics(cfg.Name),
		jobs: make(chan *job, cfg.QueueSize), slots: make(chan struct{}, maxWorkers)}
	for range maxWorkers {
		s.slots <- struct{}{}
	}
	s.reserved = maxWorkers
	s.SetToken(cfg.Token)
	s.maxBatch.Store(int64(cfg.MaxBatchSize))
	for r := range numRoutes {
		s.latency[r] = s.m.latency.WithLabelValues(routeNames[r])
	}
	s.metricsH = promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{})
	if err := s.Swap(l); err != nil {
		return nil, err
	}
	s.SetWorkers(cfg.Workers)
	return s, nil
}

// Swap replaces the served model. Requests already decoded finish on the
// model they were validated against; new requests use l. No request fails.
func (s *Server) Swap(l Loaded) error {
	st, err := newModelState(s.cfg.Name, l)
	if err != nil {
		return err
	}
	old := s.model.Swap(st)
	s.m.setModel(l.Version)
	if old != nil {
		s.cfg.Logger.Info("model swapped", "endpoint", s.cfg.Name, "from", old.Version, "to", l.Version)
	}
	return nil
}

// Current returns the model being served.
func (s *Server) Current() Loaded { return s.model.Load().Loaded }

// Workers returns the number of concurrent Predict calls allowed.
func (s *Server) Workers() int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.nworkers
}

// SetWorkers changes the number of concurrent Predict calls while serving
// (1..256). Shrinking waits for running batches to finish, never fails one.
func (s *Server) SetWorkers(n int) {
	n = min(max(n, 1), maxWorkers)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for s.reserved < maxWorkers-n {
		s.slots <- struct{}{}
		s.reserved++
	}
	for s.reserved > maxWorkers-n {
		<-s.slots
		s.reserved--
	}
	s.nworkers = n
	s.m.workers.Set(float64(n))
}

// SetMaxBatchSize changes the most rows per Predict call while serving.
func (s *Server) SetMaxBatchSize(n int) {
	if n > 0 {
		s.maxBatch.Store(int64(n))
	}
}

// MaxBatchSize returns the most rows per Predict call.
func (s *Server) MaxBatchSize() int { return int(s.maxBatch.Load()) }

// TrafficCounts are totals since the server started, over the inference
// routes (v1 :predict and v2 infer).
type TrafficCounts struct {
	Requests, ClientErrors, ServerErrors, Rows int64
}

// Counts returns the server's traffic totals.
func (s *Server) Counts() TrafficCounts {
	return TrafficCounts{Requests: s.counts.requests.Load(), ClientErrors: s.counts.clientErrors.Load(),
		ServerErrors: s.counts.serverErrors.Load(), Rows: s.counts.rows.Load()}
}

// Registry exposes the server's Prometheus registry (for tests and embedding).
func (s *Server) Registry() *prometheus.Registry { return s.m.reg }

// Close fails requests still queued with a 503. Serve calls it after the
// listener has drained, when the queue is empty.
func (s *Server) Close() {
	for {
		select {
		case j := <-s.jobs:
			j.err = errClosed
			close(j.done)
		default:
			return
		}
	}
}

var errClosed = errors.New("server is shutting down")

// Run listens on Config.Addr and serves until ctx is cancelled, then drains.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled. It then reports not-ready,
// stops accepting, waits up to ShutdownTimeout for requests in flight to
// finish, and stops the workers.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // a slow client cannot hold a connection forever
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.cfg.Logger.Info("serving", "endpoint", s.cfg.Name, "addr", ln.Addr().String(), "version", s.Current().Version)
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.cfg.Logger.Info("draining", "endpoint", s.cfg.Name)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	s.Close()
	if err != nil {
		return fmt.Errorf("serve: draining requests in flight: %w", err)
	}
	s.cfg.Logger.Info("stopped", "endpoint", s.cfg.Name)
	return nil
}

type route int

const (
	routeUnknown route = iota
	routeV1Predict
	routeV1Model
	routeV2Server
	routeLive
	routeReady
	routeV2Model
	routeV2ModelReady
	routeV2Infer
	routeMetrics
	routeV1List
	numRoutes
)

var routeNames = [numRoutes]string{"unknown", "v1_predict", "v1_model", "v2_server", "v2_live", "v2_ready", "v2_model", "v2_model_ready", "v2_infer", "metrics", "v1_models"}

// parseRoute maps a path to a route and the model name and version in it.
// It is hand-written because NAME:predict is not a whole path segment, which
// net/http patterns cannot match.
func parseRoute(path string) (rt route, name, version string) {
	switch path {
	case "/v2", "/v2/":
		return routeV2Server, "", ""
	case "/v2/health/live":
		return routeLive, "", ""
	case "/v2/health/ready":
		return routeReady, "", ""
	case "/metrics":
		return routeMetrics, "", ""
	case "/v1/models", "/v1/models/":
		return routeV1List, "", ""
	}
	if rest, ok := strings.CutPrefix(path, "/v1/models/"); ok {
		if n, ok := strings.CutSuffix(rest, ":predict"); ok && n != "" && !strings.Contains(n, "/") {
			return routeV1Predict, n, ""
		}
		if rest != "" && !strings.ContainsAny(rest, "/:") {
			return routeV1Model, rest, ""
		}
		return routeUnknown, "", ""
	}
	rest, ok := strings.CutPrefix(path, "/v2/models/")
	if !ok {
		return routeUnknown, "", ""
	}
	parts := strings.Split(rest, "/")
	if parts[0] == "" {
		return routeUnknown, "", ""
	}
	name = parts[0]
	parts = parts[1:]
	if len(parts) >= 2 && parts[0] == "versions" && parts[1] != "" {
		version = parts[1]
		parts = parts[2:]
	}
	switch {
	case len(parts) == 0:
		return routeV2Model, name, version
	case len(parts) == 1 && parts[0] == "ready":
		return routeV2ModelReady, name, version
	case len(parts) == 1 && parts[0] == "infer":
		return routeV2Infer, name, version
	}
	return routeUnknown, "", ""
}

// ServeHTTP routes a request and records its metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt, name, version := parseRoute(r.URL.Path)
	s.m.inflight.Inc()
	code := s.dispatch(w, r, rt, name, version)
	s.m.inflight.Dec()
	s.m.requests.WithLabelValues(routeNames[rt], codeLabel(code)).Inc()
	if rt == routeV1Predict || rt == routeV2Infer {
		s.counts.requests.Add(1)
		switch {
		case code >= 500:
			s.counts.serverErrors.Add(1)
		case code >= 400:
			s.counts.clientErrors.Add(1)
		}
	}
	s.latency[rt].Observe(time.Since(start).Seconds())
}

// dispatch handles a request and returns the status code it wrote. Checks
// run in the order method, auth, model, body so that an unauthenticated
// caller learns nothing about which models exist.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, rt route, name, version string) int {
	if rt == routeUnknown {
		return writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s", r.URL.Path))
	}
	want := http.MethodGet
	if rt == routeV1Predict || rt == routeV2Infer {
		want = http.MethodPost
	}
	if r.Method != want && !(want == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", want)
		return writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; use %s", r.Method, r.URL.Path, want))
	}
	if (rt == routeV1Predict || rt == routeV2Infer) && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lepton"`)
		return writeError(w, http.StatusUnauthorized, "missing or invalid bearer token")
	}
	st := s.model.Load()
	if name != "" {
		if code, msg := s.unknownModel(rt, name, version, st); code != 0 {
			return writeError(w, code, msg)
		}
	}
	if rt == routeV2Infer {
		if rerr := refuseBinaryHeader(r); rerr != nil {
			return writeError(w, rerr.status, rerr.msg)
		}
	}
	switch rt {
	case routeV1Predict:
		return s.handleV1(w, r, st)
	case routeV2Infer:
		return s.handleV2(w, r, st)
	case routeV2Model:
		return writeJSON(w, http.StatusOK, st.metadata)
	case routeV1Model, routeV2ModelReady:
		return s.writeReady(w, name)
	case routeReady:
		return s.writeReady(w, "")
	case routeLive:
		return writeJSON(w, http.StatusOK, []byte(`{"live":true}`))
	case routeV2Server:
		b, _ := json.Marshal(map[string]any{"name": "lepton", "version": s.cfg.ServerVersion, "extensions": []string{}})
		return writeJSON(w, http.StatusOK, b)
	case routeMetrics:
		s.metricsH.ServeHTTP(w, r)
		return http.StatusOK
	case routeV1List:
		b, _ := json.Marshal(map[string]any{"models": []string{s.cfg.Name}})
		return writeJSON(w, http.StatusOK, b)
	}
	return writeError(w, http.StatusNotFound, "no route")
}

func (s *Server) writeReady(w http.ResponseWriter, name string) int {
	ready := !s.draining.Load()
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	body := map[string]any{"ready": ready}
	if name != "" {
		body["name"] = name
	}
	b, _ := json.Marshal(body)
	return writeJSON(w, code, b)
}

// SetToken changes the bearer token while serving; "" turns auth off.
func (s *Server) SetToken(token string) {
	s.auth.Store(&authState{on: token != "", sum: sha256.Sum256([]byte(token))})
}

// authorized compares digests of the presented and expected tokens so the
// comparison takes the same time whatever the token's length or content.
func (s *Server) authorized(r *http.Request) bool {
	a := s.auth.Load()
	if !a.on {
		return true
	}
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		tok = ""
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], a.sum[:]) == 1 && ok
}

// readBody reads the request body into a pooled buffer within MaxBodyBytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (*bytes.Buffer, *requestError) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes exceeds the limit of %d", r.ContentLength, s.cfg.MaxBodyBytes)}
	}
	buf := s.getBuf()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		s.putBuf(buf)
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", s.cfg.MaxBodyBytes)}
		}
		return nil, badRequest("reading request body: %v", err)
	}
	return buf, nil
}

func (s *Server) getBuf() *bytes.Buffer {
	if b, ok := s.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

// putBuf keeps only modest buffers so one huge request does not pin memory.
func (s *Server) putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		s.bufs.Put(b)
	}
}

func (s *Server) getFloats() *[]float32 {
	if p, ok := s.floats.Get().(*[]float32); ok {
		return p
	}
	return new([]float32)
}

// putFloats recycles a feature buffer (x is what the decoder made of it),
// unless p is nil (the request did not use it) or it is large. It must not
// be called for a request that gave up waiting: its job may still be queued.
func (s *Server) putFloats(p *[]float32, x []float32) {
	if p == nil || cap(x) > 1<<16 {
		return
	}
	*p = x[:0]
	s.floats.Put(p)
}

func (s *Server) handleV1(w http.ResponseWriter, r *http.Request, st *modelState) int {
	s.decoding.Add(1)
	buf, rerr := s.readBody(w, r)
	if rerr != nil {
		s.decoding.Add(-1)
		return writeError(w, rerr.status, rerr.msg)
	}
	xb := s.getFloats()
	x, n, ok := fastV1Into(*xb, buf.Bytes(), st.inputSize)
	var err error
	if !ok {
		s.putFloats(xb, x)
		xb = nil
		p := s.parsers.Get()
		x, n, err = decodeV1(p, buf.Bytes(), st.inputSize)
		s.parsers.Put(p)
	}
	if err != nil {
		s.decoding.Add(-1)
		s.putBuf(buf)
		return writeError(w, http.StatusBadRequest, err.Error())
	}
	out, dim, code, err := s.submit(r.Context(), st, x, n)
	if err != nil {
		s.putBuf(buf)
		return s.predictFailed(w, code, err)
	}
	s.putFloats(xb, x) // scored: nothing refers to x any more
	b := buf.Bytes()[:0]
	b = append(b, `{"predictions":[`...)
	if st.classes != nil {
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, st.labelJSON[argmax(out[i*dim:(i+1)*dim])]...)
		}
		b = append(b, `],"probabilities":[`...)
		b = appendRows(b, out, n, dim, true)
	} else {
		b = appendRows(b, out, n, dim, dim > 1)
	}
	b = append(b, "]}"...)
	code = writeJSON(w, http.StatusOK, b)
	buf.Write(b[:0]) // keep the possibly grown slice for reuse
	s.putBuf(buf)
	return code
}

func (s *Server) handleV2(w http.ResponseWriter, r *http.Request, st *modelState) int {
	s.decoding.Add(1)
	buf, rerr := s.readBody(w, r)
	if rerr != nil {
		s.decoding.Add(-1)
		return writeError(w, rerr.status, rerr.msg)
	}
	xb := s.getFloats()
	req, ok := fastV2Into(*xb, buf.Bytes(), st.inputSize)
	var err error
	if !ok {
		s.putFloats(xb, *xb)
		xb = nil
		p := s.parsers.Get()
		req, err = decodeV2(p, buf.Bytes(), st.inputSize)
		s.parsers.Put(p)
	}
	s.putBuf(buf)
	if err == nil {
		for _, o := range req.outputs {
			if o != outPredictions && (o != outProbabilities || st.classes == nil) {
				err = badRequest("unknown output %q; this model has %s", o, strings.Join(outputNames(st), ", "))
				break
			}
		}
	}
	if err != nil {
		s.decoding.Add(-1)
		return writeError(w, http.StatusBadRequest, err.Error())
	}
	out, dim, code, err := s.submit(r.Context(), st, req.x, req.n)
	if err != nil {
		return s.predictFailed(w, code, err)
	}
	s.putFloats(xb, req.x)
	want := func(o string) bool {
		if req.outputs == nil {
			return o == outPredictions || st.classes != nil
		}
		for _, r := range req.outputs {
			if r == o {
				return true
			}
		}
		return false
	}
	buf = s.getBuf()
	b := buf.Bytes()[:0]
	b = append(b, `{"model_name":`...)
	b = appendJSONString(b, s.cfg.Name)
	b = append(b, `,"model_version":`...)
	b = append(b, st.versionJSON...)
	if req.hasID {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, req.id)
	}
	b = append(b, `,"outputs":[`...)
	first := true
	sep := func() {
		if !first {
			b = append(b, ',')
		}
		first = false
	}
	if want(outPredictions) {
		sep()
		if st.classes != nil {
			b = fmt.Appendf(b, `{"name":%q,"datatype":"BYTES","shape":[%d],"data":[`, outPredictions, req.n)
			for i := range req.n {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, st.labelJSON[argmax(out[i*dim:(i+1)*dim])]...)
			}
		} else {
			b = fmt.Appendf(b, `{"name":%q,"datatype":"FP32","shape":[%d,%d],"data":[`, outPredictions, req.n, dim)
			b = appendRows(b, out, req.n, dim, false)
		}
		b = append(b, "]}"...)
	}
	if st.classes != nil && want(outProbabilities) {
		sep()
		b = fmt.Appendf(b, `{"name":%q,"datatype":"FP32","shape":[%d,%d],"data":[`, outProbabilities, req.n, dim)
		b = appendRows(b, out, req.n, dim, false)
		b = append(b, "]}"...)
	}
	b = append(b, "]}"...)
	code = writeJSON(w, http.StatusOK, b)
	buf.Write(b[:0])
	s.putBuf(buf)
	return code
}

func outputNames(st *modelState) []string {
	if st.classes != nil {
		return []string{outPredictions, outProbabilities}
	}
	return []string{outPredictions}
}

// predictFailed reports a request that was valid but not scored. A client
// that went away gets nothing (recorded as 499, as nginx does).
func (s *Server) predictFailed(w http.ResponseWriter, code int, err error) int {
	if code == 499 {
		return code
	}
	s.cfg.Logger.Error("predict failed", "endpoint", s.cfg.Name, "err", err)
	return writeError(w, code, err.Error())
}

// appendRows appends n rows of dim values, nested per row or flat.
func appendRows(b []byte, out []float32, n, dim int, nested bool) []byte {
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		if nested {
			b = append(b, '[')
		}
		for j, v := range out[i*dim : (i+1)*dim] {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendFloat32(b, v)
		}
		if nested {
			b = append(b, ']')
		}
	}
	return b
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

func writeJSON(w http.ResponseWriter, code int, body []byte) int {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(code)
	w.Write(body)
	io.WriteString(w, "\n")
	return code
}

// writeError writes {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) int {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	return writeJSON(w, code, b)
}
