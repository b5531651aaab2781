package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/leptonml/lepton/providers/aws/stsfake"
	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/data/dataset"
	"github.com/leptonml/lepton/runtime/data/dscache"
	"github.com/leptonml/lepton/runtime/objstore"
	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/leptonml/lepton/runtime/serve"
	"github.com/leptonml/lepton/runtime/train"
)

const (
	accessKey = "AKIDAGENTTEST"
	secretKey = "agent-s3-secret-never-shown"
	cluster   = "c0ffee"
)

// world is a run storage on gofakes3 (reached by the agent through real S3
// presigned URLs) and an IMDSv2 server, on loopback.
type world struct {
	t     testing.TB
	store *objstore.Store
	imds  *httptest.Server
	puts  sync.Map // key -> *atomic.Int64: PUTs the S3 fake received
}

func (w *world) putCount(key string) int64 {
	v, ok := w.puts.Load(key)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func newWorld(t testing.TB) *world {
	for _, v := range []string{"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	w := &world{t: t}
	fake := gofakes3.New(s3mem.New()).Server()
	s3 := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			// Path-style: /BUCKET/PREFIX/KEY.
			key := strings.TrimPrefix(r.URL.Path, "/runs/p/")
			v, _ := w.puts.LoadOrStore(key, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		}
		fake.ServeHTTP(rw, r)
	}))
	t.Cleanup(s3.Close)
	t.Setenv("AWS_ENDPOINT_URL_S3", s3.URL)
	// URLs are signed with a session from STS, as for a real node.
	sts := httptest.NewServer(stsfake.New())
	t.Cleanup(sts.Close)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	ctx := context.Background()
	s, err := objstore.Open(ctx, "s3://runs/p", objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(ctx, nil); err != nil {
		t.Fatal(err)
	}
	w.store = s
	w.imds = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
				http.Error(rw, "missing ttl", http.StatusBadRequest)
				return
			}
			io.WriteString(rw, "imds-token")
		case r.Method == http.MethodGet && r.URL.Path == "/latest/meta-data/local-ipv4":
			if r.Header.Get("X-aws-ec2-metadata-token") != "imds-token" {
				http.Error(rw, "unauthorized", http.StatusUnauthorized)
				return
			}
			io.WriteString(rw, "127.0.0.1")
		default:
			http.NotFound(rw, r)
		}
	}))
	t.Cleanup(w.imds.Close)
	return w
}

func (w *world) sign(key, method string) runspec.Object {
	o, err := w.store.Sign(context.Background(), key, method, time.Hour)
	if err != nil {
		w.t.Fatal(err)
	}
	return o
}

func (w *world) put(key string, b []byte) {
	if err := runstore.PutBytes(context.Background(), w.store, key, b); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) get(key string) ([]byte, error) {
	return runstore.ReadAll(context.Background(), w.store, key)
}

func (w *world) nodeConfig() runspec.NodeConfig {
	return runspec.NodeConfig{Version: runspec.Version, Cloud: "aws", Cluster: cluster, Address: "cluster.gpu", Node: 0,
		Inbox: w.sign(runspec.InboxKey(cluster, 0), "GET"), Heartbeat: w.sign(runspec.HeartbeatKey(cluster, 0), "PUT")}
}

var generation atomic.Int64

func (w *world) writeInbox(runs ...runspec.Run) {
	b, err := json.Marshal(runspec.Inbox{Version: runspec.Version, Generation: generation.Add(1), Runs: runs})
	if err != nil {
		w.t.Fatal(err)
	}
	w.put(runspec.InboxKey(cluster, 0), b)
}

// startAgent runs an agent in dir until the test ends (or stop is called).
func (w *world) startAgent(dir string) (stop func()) {
	return w.startAgentWith(dir, nil)
}

func (w *world) startAgentWith(dir string, onLog func(run, text string)) (stop func()) {
	return w.startAgentOpts(dir, func(o *Options) { o.onLog = onLog })
}

// startAgentOpts starts an agent with the test's options changed by edit.
func (w *world) startAgentOpts(dir string, edit func(*Options)) (stop func()) {
	opts := Options{Dir: dir, PollEvery: 50 * time.Millisecond, HeartbeatEvery: 300 * time.Millisecond,
		Getenv: func(k string) string {
			if k == runspec.AWSMetadataEnv {
				return w.imds.URL
			}
			return ""
		},
		Log: slog.New(slog.NewTextHandler(testWriter{w.t}, nil))}
	edit(&opts)
	a, err := New(w.nodeConfig(), opts)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				w.t.Errorf("agent: %v", err)
			}
		})
	}
	w.t.Cleanup(stop)
	return stop
}

type testWriter struct{ t testing.TB }

func (tw testWriter) Write(p []byte) (int, error) {
	tw.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// status reads a run's status; ok is false before the agent wrote one.
func (w *world) status(id string) (runspec.Status, bool) {
	b, err := w.get(runspec.StatusKey(id, 0))
	if errors.Is(err, fs.ErrNotExist) {
		return runspec.Status{}, false
	}
	if err != nil {
		w.t.Fatal(err)
	}
	var st runspec.Status
	if err := json.Unmarshal(b, &st); err != nil {
		w.t.Fatalf("status of %s: %v: %s", id, err, b)
	}
	return st, true
}

// waitStatus polls a run's status until done says so.
func (w *world) waitStatus(id string, timeout time.Duration, done func(runspec.Status) bool) runspec.Status {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, ok := w.status(id)
		if ok && done(st) {
			return st
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("run %s: still %+v after %s", id, st, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *world) heartbeat() runspec.NodeHeartbeat {
	b, err := w.get(runspec.HeartbeatKey(cluster, 0))
	if err != nil {
		return runspec.NodeHeartbeat{}
	}
	var hb runspec.NodeHeartbeat
	if err := json.Unmarshal(b, &hb); err != nil {
		w.t.Fatalf("heartbeat: %v: %s", err, b)
	}
	return hb
}

// toyDataset is a small separable classification problem.
func toyDataset(rows int) *dataset.Dataset {
	rng := rand.New(rand.NewPCG(7, 7))
	split := func(n int) dataset.Matrix {
		m := dataset.Matrix{N: n, D: 4}
		for range n {
			c := rng.IntN(3)
			for j := range 4 {
				m.X = append(m.X, float32(c)*boolf(j == c)+float32(rng.NormFloat64()*0.3))
			}
			m.Y = append(m.Y, float32(c))
		}
		return m
	}
	ds := &dataset.Dataset{Source: "toy", Label: "class", Columns: []string{"a", "b", "c", "d"}, Classes: []string{"x", "y", "z"},
		Rows: rows, Train: split(rows * 8 / 10), Validation: split(rows / 10), Test: split(rows / 10),
		Transform: json.RawMessage(`{"normalize":"none"}`)}
	ds.Digest = fmt.Sprintf("sha256:%064x", rows)
	return ds
}

func boolf(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

func snapshot(t testing.TB, ds *dataset.Dataset) []byte {
	var b bytes.Buffer
	if err := dscache.Encode(&b, ds); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var toySpec = train.Spec{Objective: "classification", Epochs: 3, BatchSize: 16, Seed: 5,
	Model: train.ModelSpec{Kind: "mlp", Hidden: []int{8}}}

// localDigest trains as the local provider does and returns the model's digest and bytes.
func localDigest(t testing.TB, spec train.Spec, ds *dataset.Dataset) (string, []byte) {
	store := &artifact.Store{Dir: t.TempDir()}
	res, err := train.Run(context.Background(), spec, train.FromDataset(ds, spec.Objective), nil,
		train.Options{RunDir: t.TempDir(), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.GetEncoded(context.Background(), res.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return res.Digest, b
}

// trainingRun is a training of ds in the inbox's terms.
func (w *world) trainingRun(id string, spec train.Spec, ds *dataset.Dataset) runspec.Run {
	w.put(runspec.DatasetKey(ds.Digest), snapshot(w.t, ds))
	metrics := w.sign(runspec.MetricsKey(id), "PUT")
	return runspec.Run{ID: id, Kind: runspec.KindTraining, Address: "training.toy", Node: 0, Nodes: 1, Expires: time.Now().Add(time.Hour),
		Training: &runspec.Training{Objective: spec.Objective, Train: &spec, Dataset: ptr(w.sign(runspec.DatasetKey(ds.Digest), "GET")),
			Model: w.sign(runspec.ModelKey(id), "PUT"), Metrics: &metrics},
		Status: w.sign(runspec.StatusKey(id, 0), "PUT"), Log: w.sign(runspec.LogKey(id, 0), "PUT")}
}

func ptr[T any](v T) *T { return &v }

// noSecrets fails when an object the agent wrote holds a credential of
// the storage or a signature of its URLs.
func (w *world) noSecrets(keys ...string) {
	w.t.Helper()
	for _, k := range keys {
		b, err := w.get(k)
		if err != nil {
			continue
		}
		for _, s := range []string{accessKey, secretKey, "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token"} {
			if bytes.Contains(b, []byte(s)) {
				w.t.Errorf("%s holds %q", k, s)
			}
		}
	}
}

func TestTraining(t *testing.T) {
	w := newWorld(t)
	ds := toyDataset(400)
	want, wantBytes := localDigest(t, toySpec, ds)

	w.writeInbox(w.trainingRun("r1", toySpec, ds))
	w.startAgent(t.TempDir())
	st := w.waitStatus("r1", 60*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateSucceeded {
		t.Fatalf("run r1: %s: %s", st.State, st.Error)
	}
	if st.Result == nil || st.Result.Model != want {
		t.Fatalf("result %+v, want the model %s (the local run's)", st.Result, want)
	}
	if st.Result.EpochsCompleted != 3 || st.Result.Metrics["val_accuracy"] == 0 {
		t.Errorf("result %+v", st.Result)
	}
	got, err := w.get(runspec.ModelKey("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if artifact.DigestOf(got) != want || !bytes.Equal(got, wantBytes) {
		t.Errorf("the uploaded model hashes to %s, want %s", artifact.DigestOf(got), want)
	}
	// Progress lines as a local run prints them (plain, not a bar).
	if st.LineSeq != len(st.Lines) || st.LineSeq < 3 || !strings.HasPrefix(st.Lines[0], "epoch 1/3 train_loss=") || !strings.Contains(st.Lines[0], "samples/s)") {
		t.Errorf("lines %d %q", st.LineSeq, st.Lines)
	}
	if st.Host != "127.0.0.1" || st.Started.IsZero() || st.Updated.Before(st.Started) {
		t.Errorf("status %+v", st)
	}
	var rm struct {
		Objective string `json:"objective"`
		Epochs    []any  `json:"epochs"`
		Done      bool   `json:"done"`
	}
	mb, err := w.get(runspec.MetricsKey("r1"))
	if err != nil || json.Unmarshal(mb, &rm) != nil || !rm.Done || len(rm.Epochs) != 3 {
		t.Errorf("metrics: %v %s", err, mb)
	}
	log, err := w.get(runspec.LogKey("r1", 0))
	if err != nil || !bytes.Contains(log, []byte("training classification mlp")) || !bytes.Contains(log, []byte("epoch 3/3 train_loss=")) {
		t.Errorf("log: %v\n%s", err, log)
	}
	// The heartbeat that carries the address may land just after the run ends.
	hb := w.heartbeat()
	for deadline := time.Now().Add(5 * time.Second); hb.Host == "" && time.Now().Before(deadline); hb = w.heartbeat() {
		time.Sleep(20 * time.Millisecond)
	}
	if hb.Host != "127.0.0.1" || hb.Error != "" || hb.Inbox == 0 || hb.Agent == "" {
		t.Errorf("heartbeat %+v", hb)
	}
	w.noSecrets(runspec.StatusKey("r1", 0), runspec.LogKey("r1", 0), runspec.HeartbeatKey(cluster, 0), runspec.MetricsKey("r1"))
}

// TestRestartStartsNoRunTwice: an agent restarted in the same directory
// does not start a run an earlier one started, finished or not.
func TestRestartStartsNoRunTwice(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	ds := toyDataset(200)
	done := w.trainingRun("done", toySpec, ds)
	w.writeInbox(done)
	stop := w.startAgent(dir)
	w.waitStatus("done", 60*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	stop()
	if n := w.putCount(runspec.ModelKey("done")); n != 1 {
		t.Fatalf("%d model uploads, want 1", n)
	}
	// A run the first agent recorded as started and never finished (it
	// was killed in the middle).
	if err := os.MkdirAll(filepath.Join(dir, "runs", "killed"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "runs", "killed", "started"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	statusPuts := w.putCount(runspec.StatusKey("done", 0))
	killed := w.trainingRun("killed", toySpec, ds)
	w.writeInbox(done, killed)
	w.startAgent(dir)
	st := w.waitStatus("killed", 30*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateFailed || !strings.Contains(st.Error, "not started twice") {
		t.Errorf("the interrupted run: %+v", st)
	}
	time.Sleep(500 * time.Millisecond) // a few polls and heartbeats
	if n := w.putCount(runspec.ModelKey("done")) + w.putCount(runspec.ModelKey("killed")); n != 1 {
		t.Errorf("%d model uploads after the restart, want the first one only", n)
	}
	if n := w.putCount(runspec.StatusKey("done", 0)); n != statusPuts {
		t.Errorf("the finished run's status was written again (%d writes, %d before the restart)", n, statusPuts)
	}
	if hb := w.heartbeat(); hb.Restarts != 1 {
		t.Errorf("heartbeat %+v: want 1 restart", hb)
	}
}

func TestCorruptInbox(t *testing.T) {
	w := newWorld(t)
	w.put(runspec.InboxKey(cluster, 0), []byte(`{"version":1,"runs":[{"id":`))
	w.startAgent(t.TempDir())
	deadline := time.Now().Add(10 * time.Second)
	for hb := w.heartbeat(); !strings.Contains(hb.Error, "inbox is not valid"); hb = w.heartbeat() {
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat %+v: want the inbox's error", hb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Another contract version is refused with a clear error too.
	w.put(runspec.InboxKey(cluster, 0), []byte(`{"version":99,"generation":3}`))
	for hb := w.heartbeat(); !strings.Contains(hb.Error, "contract version 99"); hb = w.heartbeat() {
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat %+v: want the version's error", hb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The agent is still there: a good inbox clears the error and runs.
	ds := toyDataset(100)
	spec := toySpec
	spec.Epochs = 1
	w.writeInbox(w.trainingRun("after", spec, ds))
	st := w.waitStatus("after", 60*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateSucceeded {
		t.Fatalf("%+v", st)
	}
	for hb := w.heartbeat(); hb.Error != ""; hb = w.heartbeat() {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("heartbeat %+v: the error stayed", hb)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// endpointRun serves the model with that digest (uploaded as lepton does).
func (w *world) endpointRun(id, digest string, model []byte, token string) runspec.Run {
	key := runspec.ArtifactKey(digest)
	if _, err := w.get(key); err != nil {
		w.put(key, model)
	}
	mo := w.sign(key, "GET")
	mo.Digest = digest
	return runspec.Run{ID: id, Kind: runspec.KindEndpoint, Address: "endpoint.toy", Node: 0, Nodes: 1, Expires: time.Now().Add(time.Hour),
		Endpoint: &runspec.Endpoint{Server: serve.ProcessSpec{Name: "toy", Token: token, Workers: 2, MaxBatchSize: 64,
			Model: serve.ModelSource{Digest: digest}}, Model: mo},
		Status: w.sign(runspec.StatusKey(id, 0), "PUT"), Log: w.sign(runspec.LogKey(id, 0), "PUT")}
}

func call(method, url, token, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestEndpoint(t *testing.T) {
	w := newWorld(t)
	ds := toyDataset(200)
	var digests []string
	var models [][]byte
	for seed := range 3 {
		spec := toySpec
		spec.Seed = int64(seed + 1)
		d, b := localDigest(t, spec, ds)
		digests, models = append(digests, d), append(models, b)
	}
	token, err := serve.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	w.writeInbox(w.endpointRun("e1", digests[0], models[0], token))
	w.startAgent(t.TempDir())
	serving := func(version string) func(runspec.Status) bool {
		return func(st runspec.Status) bool {
			if st.State == runspec.StateFailed {
				t.Fatalf("endpoint failed: %s", st.Error)
			}
			return st.State == runspec.StateServing && st.Result != nil && st.Result.ModelVersion == version
		}
	}
	st := w.waitStatus("e1", 30*time.Second, serving(digests[0]))
	url := st.Result.URL
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("url %q: want the node's address", url)
	}
	predict := url + "/v1/models/toy:predict"
	row := `{"instances":[[2,0,0,0],[0,0,0,2]]}`
	if code, body, err := call("POST", predict, token, row); err != nil || code != 200 || !strings.Contains(body, `"predictions":[`) {
		t.Fatalf("predict: %d %s %v", code, body, err)
	}
	if code, _, _ := call("POST", predict, "", row); code != http.StatusUnauthorized {
		t.Errorf("predict without the token: %d, want 401", code)
	}
	if code, body, _ := call("GET", url+"/metrics", "", ""); code != 200 || !strings.Contains(body, "lepton_") {
		t.Errorf("/metrics: %d %.200s", code, body)
	}

	// Requests go on while the model changes: none may fail.
	var sent, failed atomic.Int64
	var lastErr atomic.Value
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for {
			select {
			case <-stopLoad:
				return
			default:
			}
			code, body, err := call("POST", predict, token, row)
			sent.Add(1)
			if err != nil || code != 200 {
				failed.Add(1)
				lastErr.Store(fmt.Sprintf("%d %s %v", code, body, err))
			}
		}
	}()
	// The same run with a new model: swapped in place.
	w.writeInbox(w.endpointRun("e1", digests[1], models[1], token))
	if st := w.waitStatus("e1", 30*time.Second, serving(digests[1])); st.Result.URL != url {
		t.Errorf("the swap moved the server: %s, was %s", st.Result.URL, url)
	}
	// A new run of the same endpoint takes the server over.
	w.writeInbox(w.endpointRun("e2", digests[2], models[2], token))
	if st := w.waitStatus("e2", 30*time.Second, serving(digests[2])); st.Result.URL != url {
		t.Errorf("the new run moved the server: %s, was %s", st.Result.URL, url)
	}
	old := w.waitStatus("e1", 10*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if old.State != runspec.StateStopped || !strings.Contains(old.Error, "replaced") {
		t.Errorf("the replaced run: %+v", old)
	}
	time.Sleep(100 * time.Millisecond)
	close(stopLoad)
	<-loadDone
	t.Logf("%d requests during the swaps", sent.Load())
	if failed.Load() != 0 || sent.Load() < 10 {
		t.Errorf("%d of %d requests failed during the swaps (last: %v)", failed.Load(), sent.Load(), lastErr.Load())
	}
	if code, body, _ := call("GET", url+"/v2/models/toy", token, ""); code != 200 || !strings.Contains(body, digests[2]) {
		t.Errorf("/v2/models/toy: %d %s", code, body)
	}
	// The run keeps its status fresh while it serves.
	first := w.waitStatus("e2", time.Second, func(runspec.Status) bool { return true }).Updated
	if st := w.waitStatus("e2", 5*time.Second, func(st runspec.Status) bool { return st.Updated.After(first) }); st.State != runspec.StateServing {
		t.Errorf("%+v", st)
	}
	if hb := w.heartbeat(); len(hb.Runs) != 1 || hb.Runs[0] != "e2" {
		t.Errorf("heartbeat runs %v, want [e2]", hb.Runs)
	}
	// Out of the inbox: the server drains and stops.
	w.writeInbox()
	w.waitStatus("e2", 30*time.Second, func(st runspec.Status) bool { return st.State == runspec.StateStopped })
	if _, _, err := call("POST", predict, token, row); err == nil {
		t.Errorf("the server still answers after its run left the inbox")
	}
	w.noSecrets(runspec.StatusKey("e1", 0), runspec.StatusKey("e2", 0), runspec.LogKey("e1", 0), runspec.LogKey("e2", 0))
	for _, k := range []string{runspec.LogKey("e1", 0), runspec.LogKey("e2", 0), runspec.StatusKey("e2", 0)} {
		if b, _ := w.get(k); bytes.Contains(b, []byte(token)) {
			t.Errorf("%s holds the endpoint's token", k)
		}
	}
}
