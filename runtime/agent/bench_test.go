package agent

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/leptonml/lepton/runtime/data/dataset"
	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/train"
)

// benchDataset is MNIST-shaped (784 features, 10 classes) with rows rows.
func benchDataset(rows int) *dataset.Dataset {
	rng := rand.New(rand.NewPCG(1, 2))
	split := func(n int) dataset.Matrix {
		m := dataset.Matrix{N: n, D: 784, X: make([]float32, n*784), Y: make([]float32, n)}
		for i := range m.X {
			m.X[i] = rng.Float32()
		}
		for i := range m.Y {
			m.Y[i] = float32(rng.IntN(10))
		}
		return m
	}
	ds := &dataset.Dataset{Source: "bench", Label: "label", Rows: rows, Train: split(rows * 8 / 10), Validation: split(rows / 10), Test: split(rows / 10)}
	for i := range 784 {
		ds.Columns = append(ds.Columns, fmt.Sprintf("px%d", i))
	}
	for i := range 10 {
		ds.Classes = append(ds.Classes, fmt.Sprint(i))
	}
	ds.Digest = fmt.Sprintf("sha256:%064x", rows+1)
	return ds
}

// BenchmarkStartToFirstStep measures, on loopback, from the agent's start
// (its node's inbox already holds a training) to the training's first step:
// the moment train.Run, its graph built, logs the run's first line and
// enters its loop. On the way: the IMDSv2 metadata service, the inbox, the
// 10,000-row MNIST-shaped snapshot (31 MB) downloaded through an S3
// presigned URL from gofakes3 and decoded, its digest checked. s/running
// is the time to the first status object saying the run is running.
//
//	go test -run '^$' -bench StartToFirstStep -benchtime 5x ./runtime/agent/
func BenchmarkStartToFirstStep(b *testing.B) {
	w := newWorld(b)
	ds := benchDataset(10000)
	spec := train.Spec{Objective: "classification", Epochs: 1, BatchSize: 64, Seed: 1,
		Model: train.ModelSpec{Kind: "mlp", Hidden: []int{128}}}
	var total, toRunning time.Duration
	for i := range b.N {
		b.StopTimer()
		id := fmt.Sprintf("bench-%d", i)
		w.writeInbox(w.trainingRun(id, spec, ds))
		dir := b.TempDir()
		stepped := make(chan time.Time, 1)
		onLog := func(run, text string) {
			if run == id && strings.HasPrefix(text, "training ") {
				select {
				case stepped <- time.Now():
				default:
				}
			}
		}
		b.StartTimer()
		start := time.Now()
		stop := w.startAgentWith(dir, onLog)
		var running time.Duration
		var first time.Time
		for first.IsZero() {
			select {
			case first = <-stepped:
			case <-time.After(5 * time.Millisecond):
			}
			if running == 0 {
				if st, ok := w.status(id); ok && st.State == runspec.StateRunning {
					running = time.Since(start)
				}
			}
		}
		b.StopTimer()
		total += first.Sub(start)
		toRunning += running
		stop()
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/first-step")
	b.ReportMetric(toRunning.Seconds()/float64(b.N), "s/running")
}
