package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/data/dscache"
	"github.com/leptonml/lepton/runtime/rl"
	"github.com/leptonml/lepton/runtime/runmetrics"
	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/leptonml/lepton/runtime/serve/batch"
	"github.com/leptonml/lepton/runtime/train"
)

// How a built-in run gets its inputs into a pod and its model out:
//
//   - in: lepton pushes an image made of its own image plus one layer
//     holding the run's inputs under InputDir (run.json, the processed
//     dataset snapshot, a base model). The registry already holds lepton's
//     layers, so only the inputs travel; a restarted pod finds them again
//     without lepton.
//   - out: the pod trains, then serves its result on ResultPort (GET
//     /result, /model, /metrics) and turns ready; lepton reaches it through
//     the API server's port-forward, checks the model's digest and POSTs
//     /done, which ends the pod with success. No bucket, no Service
//     exposed, nothing but the API server between lepton and the pod.

// Paths and ports of a built-in run's pod.
const (
	InputDir   = "/lepton/in"
	RunFile    = InputDir + "/run.json"
	ResultPort = 7070
	// ResultWait bounds how long a finished pod waits for lepton to fetch
	// its result (an interrupted apply comes back within it).
	ResultWait = 6 * time.Hour
)

// PodRun is a built-in run as its pod reads it (InputDir/run.json).
type PodRun struct {
	Address   string      `json:"address"`
	Objective string      `json:"objective"`
	Train     *train.Spec `json:"train,omitempty"`
	RL        *rl.Spec    `json:"rl,omitempty"`
	// Dataset and BaseModel are files under InputDir.
	Dataset   string `json:"dataset,omitempty"`
	BaseModel string `json:"base_model,omitempty"`
	// Batch: score Dataset's rows with the model in Model (a file under
	// InputDir); the predictions are the result's bytes.
	Batch bool   `json:"batch,omitempty"`
	Model string `json:"model,omitempty"`
}

// PodResult is what a finished pod reports at GET /result.
type PodResult struct {
	// Model is the digest of the result's bytes: the model artifact's, or
	// a batch inference's predictions'.
	Model           string             `json:"model"`
	Rows            int64              `json:"rows,omitempty"`
	Metrics         map[string]float64 `json:"metrics,omitempty"`
	EpochsCompleted int                `json:"epochs_completed"`
}

// RunPod is the pod's side of a built-in run (`lepton internal-kube-run
// train`): it trains as the local provider does, with progress on out (the
// pod's log), then serves the result until lepton fetched it (POST /done)
// or ResultWait passed.
func RunPod(ctx context.Context, runFile string, out io.Writer) error {
	b, err := os.ReadFile(runFile)
	if err != nil {
		return err
	}
	var pr PodRun
	if err := json.Unmarshal(b, &pr); err != nil {
		return fmt.Errorf("%s: %w", runFile, err)
	}
	work, err := os.MkdirTemp("", "run")
	if err != nil {
		return err
	}
	store := &artifact.Store{Dir: filepath.Join(work, "artifacts")}
	runDir := filepath.Join(work, "run")
	run := runstore.NewDir(runDir, runstore.DirOptions{Private: []string{rl.CheckpointFile}})
	var (
		res PodResult
		rm  *runmetrics.Metrics
	)
	in := func(name string) string { return filepath.Join(filepath.Dir(runFile), name) }
	switch {
	case pr.Batch:
		return scorePod(ctx, pr, in, out)
	case pr.Objective == "q_learning" && pr.RL != nil:
		spec := *pr.RL
		rm = runmetrics.Resume(runDir, pr.Objective, spec.Episodes)
		r, err := rl.Run(ctx, spec, rl.Options{Run: run, Progress: out, OnProgress: func(p rl.Progress) { rm.AddEpisode(p) }})
		if err != nil {
			return err
		}
		m, err := rl.Artifact(spec, r)
		if err != nil {
			return err
		}
		if res.Model, err = store.Put(ctx, m); err != nil {
			return err
		}
		res.Metrics, res.EpochsCompleted = r.Metrics, spec.Episodes
	case pr.Train != nil && pr.Dataset != "":
		f, err := os.Open(in(pr.Dataset))
		if err != nil {
			return err
		}
		ds, err := dscache.Decode(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("the dataset snapshot: %w", err)
		}
		fmt.Fprintf(out, "loaded dataset %s (%d training rows)\n", ds.Digest, ds.Train.N)
		var base *artifact.Model
		if pr.BaseModel != "" {
			bb, err := os.ReadFile(in(pr.BaseModel))
			if err != nil {
				return err
			}
			if base, err = artifact.Decode(bb, pr.BaseModel); err != nil {
				return fmt.Errorf("base_model: %w", err)
			}
		}
		rm = runmetrics.Resume(runDir, pr.Objective, pr.Train.Epochs)
		r, err := train.Run(ctx, *pr.Train, train.FromDataset(ds, pr.Objective), base, train.Options{
			Run: run, Progress: out, Store: store,
		})
		if err != nil {
			return err
		}
		rm.Epochs, rm.Confusion = r.History, r.Confusion
		if r.Confusion != nil {
			rm.Labels = ds.Classes
		}
		res.Model, res.Metrics, res.EpochsCompleted = r.Digest, r.Metrics, r.EpochsCompleted
	default:
		return fmt.Errorf("%s: objective %q without its spec or dataset", runFile, pr.Objective)
	}
	rm.Done = true
	model, err := store.GetEncoded(ctx, res.Model)
	if err != nil {
		return err
	}
	metrics, _ := json.Marshal(rm)
	fmt.Fprintf(out, "trained model %s; waiting for lepton to fetch it\n", res.Model)
	return serveResult(ctx, res, model, metrics, ResultWait)
}

// scorePod is a batch inference's pod: it scores the rows with the model
// and serves the predictions as its result.
func scorePod(ctx context.Context, pr PodRun, in func(string) string, out io.Writer) error {
	mb, err := os.ReadFile(in(pr.Model))
	if err != nil {
		return err
	}
	model, err := artifact.Decode(mb, pr.Model)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	f, err := os.Open(in(pr.Dataset))
	if err != nil {
		return err
	}
	ds, err := dscache.Decode(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("the rows: %w", err)
	}
	var buf bytes.Buffer
	res, err := batch.Score(ctx, model, batch.FromDataset(ds), &buf, batch.Options{})
	if err != nil {
		return fmt.Errorf("scoring: %w", err)
	}
	fmt.Fprintf(out, "scored %d rows: %s; waiting for lepton to fetch them\n", res.Rows, res.Digest)
	return serveResult(ctx, PodResult{Model: res.Digest, Rows: int64(res.Rows)}, buf.Bytes(), nil, ResultWait)
}

// serveResult answers GET /result, /model, /metrics on ResultPort until
// POST /done or wait passes.
func serveResult(ctx context.Context, res PodResult, model, metrics []byte, wait time.Duration) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(ResultPort))
	if err != nil {
		return err
	}
	done := make(chan struct{})
	var once sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("GET /result", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("GET /model", func(w http.ResponseWriter, r *http.Request) { w.Write(model) })
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) { w.Write(metrics) })
	mux.HandleFunc("POST /done", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		once.Do(func() { close(done) })
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	select {
	case <-done:
	case <-ctx.Done():
	case <-time.After(wait):
		return errors.New("nobody fetched the result")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
}

// FetchResult reads a finished pod's result through a port-forward: the
// result, the model's bytes (checked against the digest the pod reports)
// and its metrics. It does not end the pod; Done does.
func (c *Client) FetchResult(ctx context.Context, ns, pod string) (PodResult, []byte, []byte, error) {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	port, err := c.PortForward(fctx, ns, pod, ResultPort)
	if err != nil {
		return PodResult{}, nil, nil, err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	get := func(path string) ([]byte, error) {
		req, _ := http.NewRequestWithContext(fctx, http.MethodGet, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("pod %s: GET %s: %w", pod, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("pod %s: GET %s: %s", pod, path, resp.Status)
		}
		return b, err
	}
	rb, err := get("/result")
	if err != nil {
		return PodResult{}, nil, nil, err
	}
	var res PodResult
	if err := json.Unmarshal(rb, &res); err != nil {
		return PodResult{}, nil, nil, fmt.Errorf("pod %s: result: %w", pod, err)
	}
	model, err := get("/model")
	if err != nil {
		return res, nil, nil, err
	}
	if d := artifact.DigestOf(model); d != res.Model {
		return res, nil, nil, fmt.Errorf("pod %s: the model hashes to %s, but the pod reported %s", pod, d, res.Model)
	}
	metrics, _ := get("/metrics")
	return res, model, metrics, nil
}

// Done tells a finished pod that its result is fetched, so it ends.
func (c *Client) Done(ctx context.Context, ns, pod string) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	port, err := c.PortForward(fctx, ns, pod, ResultPort)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(fctx, http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(port)+"/done", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pod %s: POST /done: %w", pod, err)
	}
	resp.Body.Close()
	return nil
}
