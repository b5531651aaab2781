package train

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"github.com/leptonml/lepton/runtime/runstore"
)

// The run's objects.
const (
	checkpointFile = "checkpoint.gob"
	logKey         = "train.log"
)

// CheckpointFile is the checkpoint's key in Options.Run (the node agent
// keeps a copy of it in the run storage).
const CheckpointFile = checkpointFile

// checkpointFormat changes whenever checkpoint's fields do.
const checkpointFormat = 2

// checkpoint is a run's complete progress: weights, optimizer state and the
// loop position. Data order and dropout masks are derived from the seed and
// the position, so nothing random needs saving.
type checkpoint struct {
	Format      int
	Fingerprint string
	State       state
	Weights     [][]float32
	OptStep     int64
	OptM, OptV  [][]float32
	Avg         [][]float32
}

// save writes the checkpoint. It is written when ctx ends too (that is
// when it matters most), so the write does not take ctx's cancellation.
func (r *runner) save(ctx context.Context, st *state) error {
	if r.opts.Run == nil {
		return nil
	}
	cp := checkpoint{Format: checkpointFormat, Fingerprint: r.fp, State: *st, Weights: r.copyWeightsShared(),
		OptStep: r.opt.step, OptM: r.opt.m, OptV: r.opt.v, Avg: r.avg}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&cp); err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	if err := runstore.PutBytes(context.WithoutCancel(ctx), r.opts.Run, checkpointFile, buf.Bytes()); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", r.opts.Run.Where(checkpointFile), err)
	}
	return nil
}

// copyWeightsShared returns the live weight slices (gob copies them as it encodes).
func (r *runner) copyWeightsShared() [][]float32 {
	out := make([][]float32, len(r.weights))
	for i, w := range r.weights {
		out[i] = w.Data
	}
	return out
}

func loadCheckpoint(ctx context.Context, run runstore.Store) (*checkpoint, error) {
	p := run.Where(checkpointFile)
	b, err := runstore.ReadAll(ctx, run, checkpointFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var cp checkpoint
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&cp); err != nil {
		return nil, fmt.Errorf("checkpoint %s is unreadable (%w): remove it to start over", p, err)
	}
	if cp.Format != checkpointFormat {
		return nil, fmt.Errorf("checkpoint %s has format %d, this lepton writes %d: remove it to start over", p, cp.Format, checkpointFormat)
	}
	return &cp, nil
}

func (r *runner) restore(cp *checkpoint) error {
	if len(cp.Weights) != len(r.weights) || len(cp.OptM) != len(r.opt.m) || len(cp.OptV) != len(r.opt.v) {
		return fmt.Errorf("checkpoint does not fit this network: remove %s", r.opts.Run.Where(checkpointFile))
	}
	for i, w := range cp.Weights {
		if len(w) != len(r.weights[i].Data) {
			return fmt.Errorf("checkpoint weight %d has %d values, the network %d", i, len(w), len(r.weights[i].Data))
		}
		copy(r.weights[i].Data, w)
	}
	for i := range cp.OptM {
		if len(cp.OptM[i]) != len(r.opt.m[i]) || len(cp.OptV[i]) != len(r.opt.v[i]) {
			return fmt.Errorf("checkpoint optimizer state %d does not fit the network", i)
		}
		copy(r.opt.m[i], cp.OptM[i])
		copy(r.opt.v[i], cp.OptV[i])
	}
	if len(cp.Avg) != len(r.avg) {
		return fmt.Errorf("checkpoint holds %d averaged weights, the run %d", len(cp.Avg), len(r.avg))
	}
	for i := range cp.Avg {
		if len(cp.Avg[i]) != len(r.avg[i]) {
			return fmt.Errorf("checkpoint averaged weight %d does not fit the network", i)
		}
		copy(r.avg[i], cp.Avg[i])
	}
	r.opt.step = cp.OptStep
	return nil
}

func float32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}
