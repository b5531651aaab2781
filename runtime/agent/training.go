package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/data/dataset"
	"github.com/leptonml/lepton/runtime/data/dscache"
	"github.com/leptonml/lepton/runtime/objstore/signed"
	"github.com/leptonml/lepton/runtime/rl"
	"github.com/leptonml/lepton/runtime/runmetrics"
	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/leptonml/lepton/runtime/serve/batch"
	"github.com/leptonml/lepton/runtime/train"
)

// train runs a built-in training as the local provider's Apply does (the
// same runtime calls, a run store of the node's own for checkpoints) and
// uploads the model's bytes and the run's curves.
func (r *run) train() (*runspec.Result, error) {
	t := r.spec.Training
	if t == nil {
		return nil, errors.New("the training run has no training")
	}
	if t.Command != nil {
		return r.command(t.Command)
	}
	if t.Model.URL == "" {
		return nil, errors.New("the training run has nowhere to upload its model")
	}
	ctx := r.ctx
	cpFile := train.CheckpointFile
	if t.Objective == "q_learning" {
		cpFile = rl.CheckpointFile
	}
	local := runstore.NewDir(r.dir, runstore.DirOptions{Private: []string{rl.CheckpointFile}})
	if _, err := r.restoreKernelCheckpoint(local, cpFile); err != nil {
		return nil, err
	}
	synced := r.syncKernelCheckpoints(local, cpFile)
	defer synced.flush()
	run := runstore.Store(synced)
	store := &artifact.Store{Dir: r.a.artifactsDir()}
	progress := &lineWriter{line: r.line}
	var (
		digest  string
		metrics map[string]float64
		epochs  int
		rm      *runmetrics.Metrics
	)
	switch {
	case t.Objective == "q_learning":
		if t.RL == nil {
			return nil, errors.New(`objective "q_learning" without its spec`)
		}
		spec := *t.RL
		rm = runmetrics.Resume(r.dir, t.Objective, spec.Episodes)
		res, err := rl.Run(ctx, spec, rl.Options{Run: run, Progress: progress, OnProgress: func(p rl.Progress) {
			rm.AddEpisode(p)
			rm.Write(r.dir) // best effort: the curves are a view
		}})
		if err != nil {
			return nil, err
		}
		m, err := rl.Artifact(spec, res)
		if err != nil {
			return nil, err
		}
		if digest, err = store.Put(ctx, m); err != nil {
			return nil, err
		}
		metrics, epochs = res.Metrics, spec.Episodes
	default:
		if t.Train == nil {
			return nil, fmt.Errorf("objective %q without its spec", t.Objective)
		}
		if t.Dataset == nil {
			return nil, fmt.Errorf("objective %q without a dataset", t.Objective)
		}
		spec := *t.Train
		ds, err := r.fetchDataset(*t.Dataset)
		if err != nil {
			return nil, err
		}
		if want := t.Dataset.Key; want != "" && !strings.HasSuffix(want, runspec.DatasetKey(ds.Digest)) {
			return nil, fmt.Errorf("the dataset snapshot %s holds the dataset %s, another one", t.Dataset.Key, ds.Digest)
		}
		var base *artifact.Model
		if t.BaseModel != nil {
			b, err := signed.Get(ctx, r.a.opts.Client, *t.BaseModel)
			if err != nil {
				return nil, fmt.Errorf("base_model: %w", err)
			}
			if base, err = artifact.Decode(b, t.BaseModel.Key); err != nil {
				return nil, fmt.Errorf("base_model: %w", err)
			}
		}
		rm = runmetrics.Resume(r.dir, t.Objective, spec.Epochs)
		rm.Epochs = nil // train.Run hands over the whole history
		res, err := train.Run(ctx, spec, train.FromDataset(ds, t.Objective), base, train.Options{
			Run: run, Progress: progress, Log: logWriter{r}, Store: store,
			OnEpoch: func(h []train.EpochMetrics) {
				rm.Epochs = h
				rm.Write(r.dir) // best effort: the curves are a view
			},
		})
		if err != nil {
			return nil, err
		}
		rm.Epochs, rm.Confusion = res.History, res.Confusion
		if res.Confusion != nil {
			rm.Labels = ds.Classes
		}
		digest, metrics, epochs = res.Digest, res.Metrics, res.EpochsCompleted
	}
	rm.Done = true
	if err := rm.Write(r.dir); err != nil {
		return nil, err
	}
	b, err := store.GetEncoded(ctx, digest)
	if err != nil {
		return nil, err
	}
	if err := signed.Put(ctx, r.a.opts.Client, t.Model, bytes.NewReader(b), int64(len(b))); err != nil {
		return nil, fmt.Errorf("uploading the model: %w", err)
	}
	r.logf("uploaded model %s (%d bytes)", digest, len(b))
	if t.Metrics != nil {
		mb, err := json.Marshal(rm)
		if err != nil {
			return nil, err
		}
		if err := signed.Put(ctx, r.a.opts.Client, *t.Metrics, bytes.NewReader(mb), int64(len(mb))); err != nil {
			return nil, fmt.Errorf("uploading the run's metrics: %w", err)
		}
	}
	return &runspec.Result{Model: digest, Metrics: metrics, EpochsCompleted: epochs}, nil
}

// fetchDataset downloads and decodes a dataset snapshot, checking its
// digest (when the object names one) over all of its bytes.
func (r *run) fetchDataset(o runspec.Object) (*dataset.Dataset, error) {
	start := time.Now()
	rc, err := signed.Open(r.ctx, r.a.opts.Client, o)
	if err != nil {
		return nil, fmt.Errorf("downloading the dataset: %w", err)
	}
	defer rc.Close()
	cr := &countReader{r: rc}
	ds, err := dscache.Decode(cr)
	if err != nil {
		return nil, fmt.Errorf("the dataset snapshot %s: %w", o.Key, err)
	}
	// Read to the end: the digest is checked there.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, fmt.Errorf("downloading the dataset: %w", err)
	}
	r.logf("downloaded dataset %s (%d rows, %.1f MB) in %s", ds.Digest, ds.Train.N+ds.Validation.N+ds.Test.N, float64(cr.n)/1e6, time.Since(start).Round(time.Millisecond))
	return ds, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// batch scores the raw rows snapshot with the model as the local
// provider's batch inference does, and uploads the output.
func (r *run) batch() (*runspec.Result, error) {
	b := r.spec.Batch
	if b == nil {
		return nil, errors.New("the batch_inference run has no batch")
	}
	ctx := r.ctx
	mb, err := signed.Get(ctx, r.a.opts.Client, b.Model)
	if err != nil {
		return nil, fmt.Errorf("downloading the model: %w", err)
	}
	model, err := artifact.Decode(mb, b.Model.Key)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	ds, err := r.fetchDataset(b.Dataset)
	if err != nil {
		return nil, err
	}
	if len(model.Features) > 0 && !slices.Equal(model.Features, ds.Columns) {
		return nil, fmt.Errorf("the dataset has the columns %s, but the model was trained on %s", elide(ds.Columns), elide(model.Features))
	}
	var out bytes.Buffer
	res, err := batch.Score(ctx, model, batch.FromDataset(ds), &out, batch.Options{})
	if err != nil {
		return nil, fmt.Errorf("scoring: %w", err)
	}
	r.line(fmt.Sprintf("scored %d rows", res.Rows))
	if err := signed.Put(ctx, r.a.opts.Client, b.Output, bytes.NewReader(out.Bytes()), int64(out.Len())); err != nil {
		return nil, fmt.Errorf("uploading the output: %w", err)
	}
	return &runspec.Result{Rows: int(res.Rows), Digest: res.Digest}, nil
}

func elide(ss []string) string {
	if len(ss) > 6 {
		return fmt.Sprintf("[%s, … %d more]", strings.Join(ss[:6], ", "), len(ss)-6)
	}
	return "[" + strings.Join(ss, ", ") + "]"
}
