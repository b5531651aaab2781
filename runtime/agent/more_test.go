package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/rl"
	"github.com/leptonml/lepton/runtime/rl/env"
	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/serve/batch"
)

func TestMetadata(t *testing.T) {
	type want struct{ method, path, header, value string }
	for _, tc := range []struct {
		cloud, env string
		url        func(*httptest.Server) string
		reqs       []want
		answer     string
		err        string
	}{
		{"aws", runspec.AWSMetadataEnv, func(s *httptest.Server) string { return s.URL + "/" }, []want{
			{"PUT", "/latest/api/token", "X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600"},
			{"GET", "/latest/meta-data/local-ipv4", "X-Aws-Ec2-Metadata-Token", "tok"}}, "10.0.0.7", ""},
		{"gcp", runspec.GCEMetadataEnv, func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }, []want{
			{"GET", "/computeMetadata/v1/instance/network-interfaces/0/ip", "Metadata-Flavor", "Google"}}, "10.0.0.8", ""},
		{"azure", runspec.AzureMetadataEnv, func(s *httptest.Server) string { return s.URL }, []want{
			{"GET", "/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress", "Metadata", "true"}}, "10.0.0.9", ""},
		{"gcp", runspec.GCEMetadataEnv, func(s *httptest.Server) string { return s.URL }, []want{
			{"GET", "/computeMetadata/v1/instance/network-interfaces/0/ip", "Metadata-Flavor", "Google"}}, "not-an-ip", "not an IP address"},
		{"local", "", func(s *httptest.Server) string { return s.URL }, nil, "", `cloud "local"`},
	} {
		t.Run(tc.cloud+tc.err, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for _, q := range tc.reqs {
					if r.Method == q.method && r.URL.Path == q.path {
						if r.Header.Get(q.header) != q.value {
							http.Error(w, "missing "+q.header, http.StatusBadRequest)
							return
						}
						if q.method == "PUT" {
							w.Write([]byte("tok"))
						} else {
							w.Write([]byte(tc.answer + "\n"))
						}
						return
					}
				}
				http.NotFound(w, r)
			}))
			defer srv.Close()
			got, err := nodeAddress(context.Background(), srv.Client(), tc.cloud, func(k string) string {
				if k == tc.env {
					return tc.url(srv)
				}
				return ""
			})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.answer {
				t.Fatalf("got %q, %v; want %s", got, err, tc.answer)
			}
		})
	}
}

func TestQLearning(t *testing.T) {
	w := newWorld(t)
	spec := rl.Defaults(env.Config{Name: "frozen_lake"})
	spec.Episodes = 20000
	res, err := rl.Run(context.Background(), spec, rl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := rl.Artifact(spec, res)
	if err != nil {
		t.Fatal(err)
	}
	want, err := (&artifact.Store{Dir: t.TempDir()}).Put(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	id := "q1"
	r := runspec.Run{ID: id, Kind: runspec.KindTraining, Address: "training.lake", Nodes: 1,
		Training: &runspec.Training{Objective: "q_learning", RL: &spec, Model: w.sign(runspec.ModelKey(id), "PUT")},
		Status:   w.sign(runspec.StatusKey(id, 0), "PUT"), Log: w.sign(runspec.LogKey(id, 0), "PUT")}
	w.writeInbox(r)
	start := time.Now()
	w.startAgent(t.TempDir())
	st := w.waitStatus(id, 60*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	took := time.Since(start)
	if st.State != runspec.StateSucceeded || st.Result == nil || st.Result.Model != want {
		t.Fatalf("%+v %+v: want the model %s", st, st.Result, want)
	}
	if b, err := w.get(runspec.ModelKey(id)); err != nil || artifact.DigestOf(b) != want {
		t.Errorf("uploaded model: %v", err)
	}
	// Every progress line is counted; the status is not written for each.
	if st.LineSeq != 20 || len(st.Lines) != 20 || !strings.HasPrefix(st.Lines[19], "episode 20000/20000") {
		t.Errorf("lines %d %q", st.LineSeq, st.Lines)
	}
	if n, most := w.putCount(runspec.StatusKey(id, 0)), int64(took.Seconds()*5)+4; n > most {
		t.Errorf("%d status writes in %s: want at most about 5 a second (%d)", n, took, most)
	}
}

func TestBatch(t *testing.T) {
	w := newWorld(t)
	ds := toyDataset(300)
	digest, model := localDigest(t, toySpec, ds)
	m, err := artifact.Decode(model, "model")
	if err != nil {
		t.Fatal(err)
	}
	var local bytes.Buffer
	want, err := batch.Score(context.Background(), m, batch.FromDataset(ds), &local, batch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.put(runspec.ArtifactKey(digest), model)
	w.put(runspec.BatchInputKey(ds.Digest), snapshot(t, ds))
	mo := w.sign(runspec.ArtifactKey(digest), "GET")
	mo.Digest = digest
	id := "b1"
	w.writeInbox(runspec.Run{ID: id, Kind: runspec.KindBatch, Address: "batch_inference.toy", Nodes: 1,
		Batch:  &runspec.Batch{Dataset: w.sign(runspec.BatchInputKey(ds.Digest), "GET"), Model: mo, Output: w.sign(runspec.OutputKey(id), "PUT")},
		Status: w.sign(runspec.StatusKey(id, 0), "PUT"), Log: w.sign(runspec.LogKey(id, 0), "PUT")})
	w.startAgent(t.TempDir())
	st := w.waitStatus(id, 60*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateSucceeded || st.Result == nil || st.Result.Rows != int(want.Rows) || st.Result.Digest != want.Digest {
		t.Fatalf("%+v %+v, want %+v", st, st.Result, want)
	}
	if out, err := w.get(runspec.OutputKey(id)); err != nil || !bytes.Equal(out, local.Bytes()) {
		t.Errorf("output (%v) differs from the local one", err)
	}
}

// TestBadObjects: a model of the wrong digest and a snapshot that is not
// one fail the run with a clear error, and the agent goes on.
func TestBadObjects(t *testing.T) {
	w := newWorld(t)
	ds := toyDataset(100)
	bad := w.trainingRun("bad-digest", toySpec, ds)
	bad.Training.Dataset.Digest = "sha256:" + strings.Repeat("0", 64)
	w.put("datasets/junk.bin", []byte("LEPDSET1 and then nothing useful"))
	junk := w.trainingRun("junk", toySpec, ds)
	junk.Training.Dataset = ptr(w.sign("datasets/junk.bin", "GET"))
	w.writeInbox(bad, junk)
	w.startAgent(t.TempDir())
	for id, msg := range map[string]string{"bad-digest": "digest", "junk": "dataset cache"} {
		st := w.waitStatus(id, 30*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
		if st.State != runspec.StateFailed || !strings.Contains(st.Error, msg) || strings.Contains(st.Error, "X-Amz-Signature") {
			t.Errorf("%s: %s: %q, want a failure naming %q without the URL's signature", id, st.State, st.Error, msg)
		}
	}
}

// TestRenewAndMain: the agent's command line, and an inbox's Renew moves
// the heartbeat to its new URL.
func TestRenewAndMain(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	cfg, err := json.Marshal(w.nodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "agent.json")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(runspec.AWSMetadataEnv, w.imds.URL)
	t.Setenv(runspec.NodeDirEnv, "")
	w.writeInbox()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- Main(ctx, []string{"-config", path}, &stderr) }()
	deadline := time.Now().Add(20 * time.Second)
	for w.heartbeat().Host != "127.0.0.1" {
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat; agent log:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	renewed := "clusters/" + cluster + "/node-0/heartbeat-renewed.json"
	b, _ := json.Marshal(runspec.Inbox{Version: runspec.Version, Generation: 77,
		Renew: &runspec.NodeURLs{Inbox: w.sign(runspec.InboxKey(cluster, 0), "GET"), Heartbeat: w.sign(renewed, "PUT")}})
	w.put(runspec.InboxKey(cluster, 0), b)
	for {
		if b, err := w.get(renewed); err == nil && bytes.Contains(b, []byte(`"inbox_generation":77`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat at the renewed URL; agent log:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Main: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "starts")); err != nil {
		t.Errorf("the agent did not work in the configuration's directory: %v", err)
	}
	if strings.Contains(stderr.String(), "X-Amz-Signature") || strings.Contains(stderr.String(), secretKey) {
		t.Errorf("the agent's log holds a signature or a secret:\n%s", stderr.String())
	}
	// Bad configurations are clear errors.
	for name, cfg := range map[string]string{"bad json": `{"version":`, "no urls": `{"version":1,"cloud":"aws"}`} {
		p := filepath.Join(t.TempDir(), "agent.json")
		os.WriteFile(p, []byte(cfg), 0o600)
		if err := Main(context.Background(), []string{"-config", p}, &stderr); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestOtherVersion: a node configuration of another contract version is
// refused in the heartbeat, and no run starts.
func TestOtherVersion(t *testing.T) {
	w := newWorld(t)
	cfg := w.nodeConfig()
	cfg.Version = runspec.Version + 1
	w.writeInbox(w.trainingRun("never", toySpec, toyDataset(100)))
	a, err := New(cfg, Options{Dir: t.TempDir(), Getenv: func(string) string { return w.imds.URL }, HeartbeatEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for hb := w.heartbeat(); !strings.Contains(hb.Error, "contract version 2"); hb = w.heartbeat() {
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat %+v", hb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if _, ok := w.status("never"); ok {
		t.Errorf("an agent of another version started a run")
	}
}

// TestInboxUnreadable: an inbox that cannot be read shows in the heartbeat
// once the failure persists (without the URL's signature), and clears when
// it can be read again.
func TestInboxUnreadable(t *testing.T) {
	w := newWorld(t)
	a, err := New(w.nodeConfig(), Options{Dir: t.TempDir(), Getenv: func(string) string { return w.imds.URL },
		PollEvery: 20 * time.Millisecond, HeartbeatEvery: 50 * time.Millisecond, failAfter: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	hb := w.heartbeat()
	for ; !strings.Contains(hb.Error, "does not exist"); hb = w.heartbeat() {
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat %+v", hb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(hb.Error, "?REDACTED") || strings.Contains(hb.Error, "X-Amz-") {
		t.Errorf("heartbeat error %q: want the URL without its query", hb.Error)
	}
	w.writeInbox()
	for hb := w.heartbeat(); hb.Error != ""; hb = w.heartbeat() {
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat %+v: the error stayed", hb)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
