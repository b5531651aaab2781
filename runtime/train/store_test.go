package train

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/runstore"
)

// TestRunInObjectStore: a run needs no filesystem. Its log, checkpoint and
// model go to the store it is given (here memory, as an object store would
// hold them), and an interrupted run resumes from the store's checkpoint.
func TestRunInObjectStore(t *testing.T) {
	ctx := context.Background()
	objs := runstore.NewMemory()
	run := runstore.Sub(objs, "runs/training.iris/")
	opts := Options{Run: run, Store: &artifact.Store{Objects: objs}}

	spec := mlpSpec(8)
	spec.BatchSize = 16 // 7 batches an epoch: the run stops inside one
	cctx, cancel := context.WithCancel(ctx)
	_, err := runHooked(cctx, spec, irisData(t), nil, opts, func(epoch, batch int) {
		if epoch == 1 && batch == 2 {
			cancel()
		}
	})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	res, err := Run(ctx, spec, irisData(t), nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom != 1 {
		t.Errorf("resumed from epoch %d, want 1 (the store's checkpoint)", res.ResumedFrom)
	}
	infos, err := objs.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, in := range infos {
		keys = append(keys, in.Key)
	}
	want := []string{"artifacts/sha256-" + strings.TrimPrefix(res.Digest, "sha256:") + ".lmodel", "runs/training.iris/checkpoint.gob", "runs/training.iris/train.log"}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("objects %q, want %q", keys, want)
	}
	log, _ := runstore.ReadAll(ctx, objs, "runs/training.iris/train.log")
	for _, line := range []string{"interrupted at epoch 2", "resuming from checkpoint: epoch 2", "model " + res.Digest} {
		if !strings.Contains(string(log), line) {
			t.Errorf("train.log lacks %q:\n%s", line, log)
		}
	}
	if _, err := (&artifact.Store{Objects: objs}).Get(ctx, res.Digest); err != nil {
		t.Errorf("the model is not readable from the store: %v", err)
	}
}
