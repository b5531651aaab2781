package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadOnlyViews runs show, status, logs and predict through the binary
// on a trained model served by an endpoint: each reaches what the run left
// in .lepton through its kind, and says which kinds offer what when asked
// of one that does not.
func TestReadOnlyViews(t *testing.T) {
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("a,b,c,label\n")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		a, b, c := rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()
		label := 0
		if a+b > 0 {
			label = 1
		}
		fmt.Fprintf(&csv, "%.3f,%.3f,%.3f,%d\n", a, b, c, label)
	}
	write(t, dir, "data/d.csv", csv.String())
	write(t, dir, "main.lep.hcl", `
dataset "d" {
  source {
    file = "data/d.csv"
  }
  label = "label"
}

training "t" {
  dataset = dataset.d
  epochs  = 2
  seed    = 1
}

endpoint "e" {
  model = training.t.model
}
`)
	ok(t, dir, "apply", "-auto-approve")
	t.Cleanup(func() { lep(t, dir, "destroy", "-auto-approve") })

	r := ok(t, dir, "logs", "training.t")
	contains(t, r.stdout, "epoch 1/2", "epoch 2/2", "model sha256:")
	r = ok(t, dir, "logs", "endpoint.e")
	contains(t, r.stdout, "msg=serving endpoint=e")

	r = exits(t, 1, dir, "logs", "training.t", "-node", "1")
	if r.stderr != "Error: training.t ran on this machine: it has no node 1, only one log (leave out -node)\n" {
		t.Errorf("logs -node 1 of a local run: %q", r.stderr)
	}
	r = exits(t, 1, dir, "logs", "training.t", "-node", "-1")
	contains(t, r.stderr, "-node -1: nodes are numbered from 0")
	r = exits(t, 1, dir, "logs", "dataset.d")
	if r.stderr != "Error: dataset resources have no logs: logs exist for training and endpoint resources\n" {
		t.Errorf("logs of a dataset: %q", r.stderr)
	}
	r = exits(t, 1, dir, "logs", "training.none")
	want := filepath.Join(dir, ".lepton", "runs", "training.none", "train.log")
	if r.stderr != "Error: no log for training.none yet ("+want+"): it has not run here\n" {
		t.Errorf("logs of a run that never ran: %q", r.stderr)
	}

	r = ok(t, dir, "show", "training.t")
	contains(t, r.stdout, `training "t" {`, "\nModel sha256:", "kind:")
	r = ok(t, dir, "show", "dataset.d")
	contains(t, r.stdout, `dataset "d" {`, "\nProcessing report:\n\n")

	r = ok(t, dir, "predict", "endpoint.e", "-input", "[[1, 1, 0]]")
	var pred map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &pred); err != nil || pred["predictions"] == nil {
		t.Errorf("predict: %v\n%s", err, r.stdout)
	}
	r = exits(t, 1, dir, "predict", "training.t", "-input", "[[1]]")
	if r.stderr != "Error: training.t is a training; predict calls endpoints\n" {
		t.Errorf("predict of a training: %q", r.stderr)
	}

	r = ok(t, dir, "status")
	contains(t, r.stdout, "ADDRESS", "dataset.d", "300 rows, 0 dropped", "training.t", "succeeded", "epochs 2; train_loss=",
		"endpoint.e", "healthy", "http://127.0.0.1:", "; requests=", "; model_version=sha256:")
	r = ok(t, dir, "status", "-json")
	var rows []statusRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 3 {
		t.Fatalf("status -json: %v\n%s", err, r.stdout)
	}
	if e := rows[1]; e.Address != "endpoint.e" || e.Status != "healthy" || e.Extra["requests"] == "" || e.Extra["model_version"] == "" {
		t.Errorf("endpoint row %+v", e)
	}
	if tr := rows[2]; tr.Address != "training.t" || tr.Status != "succeeded" || tr.Metrics["train_loss"] == nil || tr.Detail != "epochs 2" {
		t.Errorf("training row %+v", tr)
	}
}
