package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/aws/stsfake"
	"github.com/leptonml/lepton/runtime/agent"
	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/data/dscache"
	"github.com/leptonml/lepton/runtime/objstore"
	"github.com/leptonml/lepton/runtime/objstore/signed"
	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/leptonml/lepton/runtime/serve/batch"
)

// clusterKey is the run storage's name of cluster.gpu (remote.ClusterKey).
const clusterKey = "cluster.gpu"

// remoteWorld is a world with a one-node cluster.gpu on a cloud whose run
// storage is in one of the object store fakes.
type remoteWorld struct {
	*world
	cloud objectCloud
	runs  runstore.Store // the state's run storage (the provider block's storage + lineage)
}

func newRemoteWorld(t *testing.T, clouds []objectCloud, cloud string) *remoteWorld {
	t.Helper()
	w := newWorld(t)
	w.env.Providers = map[string]map[string]string{}
	for _, c := range clouds {
		w.env.Providers[c.name] = map[string]string{"storage": c.root + "/lepton"}
	}
	rw := &remoteWorld{world: w}
	for _, c := range clouds {
		if c.name == cloud {
			rw.cloud = c
		}
	}
	s, err := objstore.Open(context.Background(), rw.cloud.root+"/lepton/"+w.env.Lineage, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rw.runs = s
	w.state["cluster.gpu"] = cty.ObjectVal(map[string]cty.Value{
		"cloud":          cty.StringVal(cloud),
		"node_ids":       cty.ListVal([]cty.Value{cty.StringVal("i-0001")}),
		"node_addresses": cty.ListVal([]cty.Value{cty.StringVal("127.0.0.2")}),
	})
	return rw
}

// fakeAgent plays node 0's agent through the run storage: it reads the
// inbox with the store, and does the batch runs it finds with their signed
// URLs only, as the real agent does (runtime/agent).
type fakeAgent struct {
	t     *testing.T
	store runstore.Store
	// hold, when set, keeps a started run going until it is closed.
	hold chan struct{}
	// fail makes every run fail with this error.
	fail string
	// corrupt changes the output object after the run reports its digest.
	corrupt bool

	mu      sync.Mutex
	started map[string]int // run id: starts (the runs lepton handed to the node)
	seen    chan string    // each run id, once its first status is written
}

// startFakeAgent starts the agent's loop once set has set its knobs.
func startFakeAgent(t *testing.T, store runstore.Store, set func(*fakeAgent)) *fakeAgent {
	a := &fakeAgent{t: t, store: store, started: map[string]int{}, seen: make(chan string, 16)}
	if set != nil {
		set(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			a.poll(ctx, &wg)
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return a
}

func (a *fakeAgent) starts() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := map[string]int{}
	for k, v := range a.started {
		m[k] = v
	}
	return m
}

func (a *fakeAgent) poll(ctx context.Context, wg *sync.WaitGroup) {
	b, err := runstore.ReadAll(ctx, a.store, runspec.InboxKey(clusterKey, 0))
	if err != nil {
		return
	}
	var in runspec.Inbox
	if err := json.Unmarshal(b, &in); err != nil {
		a.t.Errorf("inbox: %v", err)
		return
	}
	for _, r := range in.Runs {
		a.mu.Lock()
		going := a.started[r.ID] > 0 // a run is started once, as the real agent does
		if !going {
			a.started[r.ID]++
		}
		a.mu.Unlock()
		if going {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.run(ctx, r) }()
	}
}

func (a *fakeAgent) status(ctx context.Context, r runspec.Run, st runspec.Status) {
	st.Run, st.Node, st.Host, st.Updated = r.ID, 0, "127.0.0.2", time.Now()
	b, _ := json.Marshal(st)
	if err := signed.Put(ctx, http.DefaultClient, r.Status, bytes.NewReader(b), int64(len(b))); err != nil && ctx.Err() == nil {
		a.t.Errorf("status: %v", err)
	}
}

func (a *fakeAgent) run(ctx context.Context, r runspec.Run) {
	started := time.Now()
	if r.Kind != runspec.KindBatch || r.Batch == nil {
		a.status(ctx, r, runspec.Status{State: runspec.StateFailed, Started: started, Error: "not a batch run: " + r.Kind})
		return
	}
	a.status(ctx, r, runspec.Status{State: runspec.StateRunning, Started: started, Lines: []string{"scoring"}, LineSeq: 1})
	a.seen <- r.ID
	if a.hold != nil {
		for held := true; held; {
			select {
			case <-ctx.Done():
				return
			case <-a.hold:
				held = false
			case <-time.After(time.Second): // the run's heartbeat
				a.status(ctx, r, runspec.Status{State: runspec.StateRunning, Started: started, Lines: []string{"scoring"}, LineSeq: 1})
			}
		}
	}
	res, err := a.score(ctx, r.Batch)
	if a.fail != "" {
		err = errors.New(a.fail)
	}
	if err != nil {
		a.status(ctx, r, runspec.Status{State: runspec.StateFailed, Started: started, Error: err.Error()})
		return
	}
	if a.corrupt {
		if err := signed.Put(ctx, http.DefaultClient, r.Batch.Output, strings.NewReader("id,prediction\n0,x\n"), -1); err != nil {
			a.t.Error(err)
		}
	}
	a.status(ctx, r, runspec.Status{State: runspec.StateSucceeded, Started: started, Result: res,
		Lines: []string{"scoring", fmt.Sprintf("scored %d rows", res.Rows)}, LineSeq: 2})
}

func (a *fakeAgent) score(ctx context.Context, b *runspec.Batch) (*runspec.Result, error) {
	mb, err := signed.Get(ctx, http.DefaultClient, b.Model)
	if err != nil {
		return nil, err
	}
	model, err := artifact.Decode(mb, b.Model.Key)
	if err != nil {
		return nil, err
	}
	rc, err := signed.Open(ctx, http.DefaultClient, b.Dataset)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	ds, err := dscache.Decode(rc)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	res, err := batch.Score(ctx, model, batch.FromDataset(ds), &out, batch.Options{})
	if err != nil {
		return nil, err
	}
	if err := signed.Put(ctx, http.DefaultClient, b.Output, bytes.NewReader(out.Bytes()), int64(out.Len())); err != nil {
		return nil, err
	}
	return &runspec.Result{Rows: int(res.Rows), Digest: res.Digest}, nil
}

// startSTS serves GetSessionToken: S3 URLs for nodes are signed with a
// session, as for a real node.
func startSTS(t *testing.T) {
	sts := httptest.NewServer(stsfake.New())
	t.Cleanup(sts.Close)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	t.Setenv("AWS_REGION", "us-east-1")
}

func privateOf(t *testing.T, b []byte) (run, cluster string) {
	var p struct{ Run, Cluster string }
	if err := json.Unmarshal(b, &p); err != nil || p.Run == "" {
		t.Fatalf("recorded private data %q: %v", b, err)
	}
	return p.Run, p.Cluster
}

// TestBatchRemote runs a batch inference on node 0 of a cluster in each
// cloud through its run storage: the same predictions as a local run, to a
// file or another cloud's object, the run id recorded before the node is
// told, and destroy removing the run's objects.
func TestBatchRemote(t *testing.T) {
	ctx := context.Background()
	clouds := startObjectClouds(t)
	startSTS(t)
	for i, c := range clouds {
		t.Run(c.name, func(t *testing.T) {
			w := newRemoteWorld(t, clouds, c.name)
			local := w.apply(t, "batch_inference.b", w.batchConfig(t, "local.csv", ""), nil)
			want, _ := os.ReadFile(filepath.Join(w.dir, "local.csv"))
			ag := startFakeAgent(t, w.runs, nil)

			// To a file here.
			var recorded []byte
			record := func(_ context.Context, b []byte) error {
				// The node must not know the run yet.
				if b, err := runstore.ReadAll(ctx, w.runs, runspec.InboxKey(clusterKey, 0)); err == nil && bytes.Contains(b, []byte(`"kind":"batch_inference"`)) {
					t.Errorf("the inbox holds a run before its id was recorded: %s", b)
				}
				recorded = append([]byte(nil), b...)
				return nil
			}
			got, err := w.tryApply(ctx, t, "batch_inference.b", w.batchConfig(t, "remote.csv", "cluster.gpu"), nil, record)
			if err != nil {
				t.Fatal(err)
			}
			run, cluster := privateOf(t, recorded)
			if cluster != "cluster.gpu" {
				t.Errorf("recorded cluster %q", cluster)
			}
			b, _ := os.ReadFile(filepath.Join(w.dir, "remote.csv"))
			if !bytes.Equal(b, want) || !got.GetAttr("digest").RawEquals(local.GetAttr("digest")) || !got.GetAttr("rows").RawEquals(cty.NumberIntVal(8)) {
				t.Errorf("remote run: digest %#v rows %#v, file %q; want the local run's %#v, 8 rows, %q", got.GetAttr("digest"), got.GetAttr("rows"), b, local.GetAttr("digest"), want)
			}
			if st := ag.starts(); len(st) != 1 || st[run] != 1 {
				t.Errorf("starts on the node: %v; want run %s once", st, run)
			}
			// The run left the node's inbox; its objects stay until destroy.
			if ib, _ := runstore.ReadAll(ctx, w.runs, runspec.InboxKey(clusterKey, 0)); bytes.Contains(ib, []byte(run)) {
				t.Errorf("inbox still holds the finished run: %s", ib)
			}
			// The rows went once, under the raw snapshot's key.
			if objs, _ := w.runs.List(ctx, "datasets/raw-"); len(objs) != 1 {
				t.Errorf("raw snapshots: %v", objs)
			}
			if v := w.read(t, "batch_inference.b", got); !v.RawEquals(got) {
				t.Errorf("refresh: %#v", v)
			}
			if err := w.res(t, "batch_inference").Delete(ctx, providers.DeleteRequest{Address: "batch_inference.b", Current: got, Private: recorded, Env: w.env}); err != nil {
				t.Fatal(err)
			}
			if left, _ := w.runs.List(ctx, runspec.RunPrefix(run)); len(left) != 0 {
				t.Errorf("run objects left after destroy: %v", left)
			}
			if _, err := os.Stat(filepath.Join(w.dir, "remote.csv")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("output left after destroy: %v", err)
			}

			// To an object in the next cloud's store.
			other := clouds[(i+1)%len(clouds)]
			url := other.root + "/preds/from-" + c.name + ".csv"
			got, err = w.tryApply(ctx, t, "batch_inference.b", w.batchConfig(t, url, "cluster.gpu"), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			ob, err := runstore.ReadAll(ctx, other.store(t), "preds/from-"+c.name+".csv")
			if err != nil || !bytes.Equal(ob, want) || !got.GetAttr("digest").RawEquals(local.GetAttr("digest")) {
				t.Errorf("object %s: %q, %v, digest %#v; want the local run's bytes", url, ob, err, got.GetAttr("digest"))
			}
		})
	}
}

// TestBatchRemoteKilled: an apply killed while the node scores leaves the
// run going; the plan shows it running, and the next apply waits for that
// run instead of starting another.
func TestBatchRemoteKilled(t *testing.T) {
	ctx := context.Background()
	clouds := startObjectClouds(t)
	startSTS(t)
	w := newRemoteWorld(t, clouds, "gcp")
	ag := startFakeAgent(t, w.runs, func(a *fakeAgent) { a.hold = make(chan struct{}) })
	cfg := w.batchConfig(t, "out/p.csv", "cluster.gpu")

	var recorded []byte
	actx, kill := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := w.tryApply(actx, t, "batch_inference.b", cfg, nil, func(_ context.Context, b []byte) error {
			recorded = append([]byte(nil), b...)
			return nil
		})
		done <- err
	}()
	var run string
	select {
	case run = <-ag.seen:
	case <-time.After(30 * time.Second):
		t.Fatal("the node never saw the run")
	}
	kill()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("killed apply: %v", err)
	}
	if r, _ := privateOf(t, recorded); r != run {
		t.Fatalf("recorded run %s, the node runs %s", r, run)
	}

	plan, err := w.plan(t, "batch_inference.b", cfg, recorded)
	if err != nil {
		t.Fatal(err)
	}
	detail := strings.Join(plan.Detail, "\n")
	if !strings.Contains(detail, "run "+run+" is going on cluster.gpu") || !strings.Contains(detail, "node 0 (127.0.0.2): running, scoring") ||
		!strings.Contains(plan.Reason, "still running on cluster.gpu") || !bytes.Equal(plan.Private, recorded) {
		t.Errorf("plan of the interrupted run: reason %q, detail:\n%s\nprivate %q", plan.Reason, detail, plan.Private)
	}

	// lepton status shows it going on the node.
	type statuser interface {
		Status(context.Context, providers.InstanceView) providers.StatusReport
	}
	rep := w.res(t, "batch_inference").(statuser).Status(ctx, providers.InstanceView{Address: "batch_inference.b", Status: "running", Private: recorded, Env: w.env})
	if !strings.Contains(rep.Detail, "run "+run+" is going on cluster.gpu") || !strings.Contains(rep.Detail, "running, scoring") {
		t.Errorf("status of the interrupted run: %+v", rep)
	}

	close(ag.hold)
	got, err := w.tryApply(ctx, t, "batch_inference.b", cfg, recorded, func(context.Context, []byte) error {
		t.Error("the second apply recorded a new run")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := ag.starts(); len(st) != 1 || st[run] != 1 {
		t.Errorf("starts on the node: %v; want run %s once", st, run)
	}
	b, _ := os.ReadFile(filepath.Join(w.dir, "out/p.csv"))
	if got.GetAttr("digest").AsString() != sha(b) || len(b) == 0 {
		t.Errorf("digest %s of %q", got.GetAttr("digest").AsString(), b)
	}
}

// TestBatchRemoteFailed: a run the node reports failed is an error naming
// the node and the cause, and leaves the node's inbox; predictions that are
// not what the node reported are refused and not left in the output.
func TestBatchRemoteFailed(t *testing.T) {
	ctx := context.Background()
	clouds := startObjectClouds(t)
	startSTS(t)
	t.Run("corrupted", func(t *testing.T) {
		w := newRemoteWorld(t, clouds, "aws")
		startFakeAgent(t, w.runs, func(a *fakeAgent) { a.corrupt = true })
		_, err := w.tryApply(ctx, t, "batch_inference.b", w.batchConfig(t, "gs://runs/p.csv", "cluster.gpu"), nil, nil)
		if err == nil || !strings.Contains(err.Error(), "changed or corrupted") {
			t.Fatalf("apply of corrupted predictions: %v", err)
		}
		if _, err := clouds[1].store(t).Stat(ctx, "p.csv"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("corrupted predictions left in the output: %v", err)
		}
	})
	w := newRemoteWorld(t, clouds, "azure")
	startFakeAgent(t, w.runs, func(a *fakeAgent) { a.fail = "out of memory on the node" })
	_, err := w.tryApply(ctx, t, "batch_inference.b", w.batchConfig(t, "out/p.csv", "cluster.gpu"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "batch inference on cluster.gpu") || !strings.Contains(err.Error(), "out of memory on the node") {
		t.Fatalf("apply of a failing run: %v", err)
	}
	if ib, _ := runstore.ReadAll(ctx, w.runs, runspec.InboxKey(clusterKey, 0)); bytes.Contains(ib, []byte(`"batch_inference"`)) {
		t.Errorf("the failed run stays in the inbox: %s", ib)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "out/p.csv")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed run wrote the output: %v", err)
	}
}

// TestBatchRemoteAgent runs the batch inference through the real node
// agent (runtime/agent, in this process) on S3 signed URLs.
func TestBatchRemoteAgent(t *testing.T) {
	ctx := context.Background()
	clouds := startObjectClouds(t)
	startSTS(t)
	w := newRemoteWorld(t, clouds, "aws")
	local := w.apply(t, "batch_inference.b", w.batchConfig(t, "local.csv", ""), nil)

	imds := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			io.WriteString(rw, "imds-token")
		case r.URL.Path == "/latest/meta-data/local-ipv4":
			io.WriteString(rw, "127.0.0.1")
		default:
			http.NotFound(rw, r)
		}
	}))
	t.Cleanup(imds.Close)
	sign := func(key, method string) runspec.Object {
		o, err := w.runs.(*objstore.Store).Sign(ctx, key, method, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	if err := runstore.PutBytes(ctx, w.runs, runspec.InboxKey(clusterKey, 0), []byte(`{"version":1,"runs":[]}`)); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(runspec.NodeConfig{Version: runspec.Version, Cloud: "aws", Cluster: clusterKey, Address: "cluster.gpu", Node: 0,
		Inbox: sign(runspec.InboxKey(clusterKey, 0), "GET"), Heartbeat: sign(runspec.HeartbeatKey(clusterKey, 0), "PUT")},
		agent.Options{Dir: t.TempDir(), PollEvery: 50 * time.Millisecond, HeartbeatEvery: 300 * time.Millisecond,
			Getenv: func(k string) string {
				if k == runspec.AWSMetadataEnv {
					return imds.URL
				}
				return ""
			},
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	t.Cleanup(func() { stop(); <-done })

	got, err := w.tryApply(ctx, t, "batch_inference.b", w.batchConfig(t, "s3://runs/preds/agent.csv", "cluster.gpu"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(w.dir, "local.csv"))
	ob, err := runstore.ReadAll(ctx, w.cloud.store(t), "preds/agent.csv")
	if err != nil || !bytes.Equal(ob, want) || !got.GetAttr("digest").RawEquals(local.GetAttr("digest")) || !got.GetAttr("rows").RawEquals(cty.NumberIntVal(8)) {
		t.Errorf("through the agent: %q, %v, digest %#v rows %#v; want the local run's", ob, err, got.GetAttr("digest"), got.GetAttr("rows"))
	}
}
