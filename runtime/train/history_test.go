package train

import (
	"context"
	"testing"

	"github.com/leptonml/lepton/runtime/artifact"
)

// TestHistoryAndConfusion: OnEpoch sees the history grow by one epoch at a
// time, and the confusion matrix agrees with the test accuracy.
func TestHistoryAndConfusion(t *testing.T) {
	d := irisData(t)
	s := Spec{Objective: "classification", Model: ModelSpec{Kind: "mlp", Hidden: []int{8}, Activation: "relu"},
		Optimizer: OptimizerSpec{Name: "adam", LearningRate: 0.01}, Epochs: 4, BatchSize: 16, Seed: 2}
	var seen [][]EpochMetrics
	res, err := Run(context.Background(), s, d, nil, Options{RunDir: t.TempDir(), Store: &artifact.Store{Dir: t.TempDir()},
		OnEpoch: func(h []EpochMetrics) { seen = append(seen, h) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != s.Epochs {
		t.Fatalf("OnEpoch called %d times, want %d", len(seen), s.Epochs)
	}
	for i, h := range seen {
		if len(h) != i+1 || h[i].Epoch != i+1 {
			t.Fatalf("call %d: history %+v", i, h)
		}
	}
	if last := seen[len(seen)-1]; last[len(last)-1] != res.History[len(res.History)-1] {
		t.Fatalf("last OnEpoch history %+v differs from the result's %+v", last, res.History)
	}
	n := len(d.Classes)
	if len(res.Confusion) != n {
		t.Fatalf("confusion has %d rows, want %d", len(res.Confusion), n)
	}
	total, diag := 0, 0
	for i, row := range res.Confusion {
		if len(row) != n {
			t.Fatalf("row %d has %d columns", i, len(row))
		}
		for j, c := range row {
			total += c
			if i == j {
				diag += c
			}
		}
	}
	if want := len(d.Test.Labels); total != want {
		t.Fatalf("confusion counts %d rows, the test split has %d", total, want)
	}
	if acc := float64(diag) / float64(total); acc != res.Metrics["test_accuracy"] {
		t.Fatalf("confusion accuracy %v, test_accuracy %v", acc, res.Metrics["test_accuracy"])
	}
}
