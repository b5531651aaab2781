package train

import (
	"context"
	"math"
	"os"
	"testing"
)

func sqrt64(x float64) float64 { return math.Sqrt(x) }

func TestQuickMLP(t *testing.T) {
	d := mnistData(t, nil, 0, 0)
	spec := Spec{Objective: "classification", Model: ModelSpec{Kind: "mlp", Hidden: []int{128}}, Optimizer: OptimizerSpec{Name: "adam", LearningRate: 0.001},
		Epochs: 3, BatchSize: 64, Seed: 1}
	res, err := Run(context.Background(), spec, d, nil, Options{Progress: os.Stderr, Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Metrics)
}
