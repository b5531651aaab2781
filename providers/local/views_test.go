package local_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/local"
)

// TestKinds: Kinds lists every kind the provider manages, once.
func TestKinds(t *testing.T) {
	p := local.New()
	kinds := p.Kinds()
	seen := map[string]bool{}
	for _, k := range kinds {
		if _, ok := p.Resource(k); !ok || seen[k] {
			t.Errorf("kind %q listed but not managed, or listed twice", k)
		}
		seen[k] = true
	}
	for _, k := range []string{"dataset", "cluster", "training", "batch_inference", "endpoint", "nothing"} {
		if _, ok := p.Resource(k); ok != seen[k] {
			t.Errorf("kind %q: managed %v, listed %v", k, ok, seen[k])
		}
	}
}

type logReader interface {
	Logs(ctx context.Context, in providers.InstanceView, follow bool) (io.ReadCloser, error)
}

type statusReporter interface {
	Status(ctx context.Context, in providers.InstanceView) providers.StatusReport
}

// TestLogs: a run's and a server's logs are the files .lepton always had;
// a missing one is a *fs.PathError naming that file.
func TestLogs(t *testing.T) {
	dir := t.TempDir()
	env := providers.Env{Dir: dir, DataDir: filepath.Join(dir, ".lepton")}
	cases := []struct {
		kind, address, file string
	}{
		{"training", `training.t["a b"]`, filepath.Join(".lepton", "runs", "training.t_a_b", "train.log")},
		{"endpoint", "endpoint.e", filepath.Join(".lepton", "endpoints", "endpoint.e", "server.log")},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			res, _ := local.New().Resource(tc.kind)
			lr, ok := res.(logReader)
			if !ok {
				t.Fatalf("%s has no logs", tc.kind)
			}
			in := providers.InstanceView{Address: tc.address, Env: env}
			_, err := lr.Logs(context.Background(), in, false)
			var pe *fs.PathError
			if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Path != filepath.Join(dir, tc.file) {
				t.Fatalf("missing log: %v; want a PathError for %s", err, tc.file)
			}
			p := filepath.Join(dir, tc.file)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("line 1\nline 2\n"), 0o644)
			rc, err := lr.Logs(context.Background(), in, false)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) != "line 1\nline 2\n" {
				t.Errorf("log %q", b)
			}
		})
	}
	for _, kind := range []string{"dataset", "batch_inference", "cluster"} {
		if res, _ := local.New().Resource(kind); res != nil {
			if _, ok := res.(logReader); ok {
				t.Errorf("%s offers logs", kind)
			}
		}
	}
}

// TestStatus: the status rows of the kinds whose row is their attributes.
func TestStatus(t *testing.T) {
	dir := t.TempDir()
	env := providers.Env{Dir: dir, DataDir: filepath.Join(dir, ".lepton")}
	os.MkdirAll(filepath.Join(dir, ".lepton", "runs", "training.r"), 0o755)
	os.WriteFile(filepath.Join(dir, ".lepton", "runs", "training.r", "train.log"), []byte("epoch 1\nepoch 2 of 5\n"), 0o644)
	cases := []struct {
		kind, address, status, attrs string
		want                         providers.StatusReport
	}{
		{"dataset", "dataset.d", "ready", `{"rows": 1000000, "dropped_rows": 2}`, providers.StatusReport{Detail: "1e+06 rows, 2 dropped"}},
		{"batch_inference", "batch_inference.b", "ready", `{"rows": 10, "output": "out.csv"}`, providers.StatusReport{Detail: "10 rows -> out.csv"}},
		{"cluster", "cluster.c", "ready", `{"cloud": "aws", "instance_type": "g5.xlarge", "region": "us-east-1", "node_ids": ["a", "b"], "price_per_hour": 1.006}`,
			providers.StatusReport{Detail: "aws g5.xlarge in us-east-1, 2 nodes, $1.006/hr"}},
		{"training", "training.t", "ready", `{"status": "succeeded", "epochs_completed": 3, "metrics": {"test_accuracy": 0.9}}`,
			providers.StatusReport{Status: "succeeded", Detail: "epochs 3", Metrics: map[string]any{"test_accuracy": 0.9}}},
		{"training", "training.r", "running", `{"status": "succeeded"}`, providers.StatusReport{Detail: "epoch 2 of 5"}},
		{"training", "training.x", "tainted", `{"status": "failed", "epochs_completed": null}`, providers.StatusReport{Detail: "epochs <nil>"}},
	}
	for _, tc := range cases {
		t.Run(tc.address, func(t *testing.T) {
			res, _ := local.New().Resource(tc.kind)
			sr, ok := res.(statusReporter)
			if !ok {
				t.Fatalf("%s has no status", tc.kind)
			}
			got := sr.Status(context.Background(), providers.InstanceView{Address: tc.address, Status: tc.status, Attributes: []byte(tc.attrs), Env: env})
			if got.Status != tc.want.Status || got.Detail != tc.want.Detail || len(got.Metrics) != len(tc.want.Metrics) || len(got.Extra) != 0 {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for k, v := range tc.want.Metrics {
				if got.Metrics[k] != v {
					t.Errorf("metric %s = %v, want %v", k, got.Metrics[k], v)
				}
			}
		})
	}
	// A run on a cluster that did not succeed names the run, for its logs.
	tr, _ := local.New().Resource("training")
	got := tr.(statusReporter).Status(context.Background(), providers.InstanceView{Address: "training.c", Status: "tainted",
		Attributes: []byte(`{"status": null, "epochs_completed": null}`), Env: env,
		Private: []byte(`{"run": "training.c-0123", "cluster": "cluster.gpu", "nodes": [0], "started": "2026-12-06T18:00:00Z"}`)})
	if want := "run training.c-0123 on cluster.gpu, started 2026-12-06T18:00:00Z, did not succeed (lepton logs training.c)"; got.Detail != want {
		t.Errorf("status of a failed run on a cluster: %+v, want %q", got, want)
	}
	// An endpoint whose process is gone is down, with why.
	res, _ := local.New().Resource("endpoint")
	got = res.(statusReporter).Status(context.Background(), providers.InstanceView{Address: "endpoint.e", Status: "ready",
		Attributes: []byte(`{"url": "http://127.0.0.1:1", "pid": 0}`), Env: env})
	if got.Status != "down" || !slices.Contains([]string{"http://127.0.0.1:1 (server process 0 is not running)"}, got.Detail) {
		t.Errorf("endpoint status %+v", got)
	}
}
