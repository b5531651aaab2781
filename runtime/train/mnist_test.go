package train

import (
	"context"
	"testing"

	"github.com/leptonml/lepton/runtime/artifact"
)

// The judged figures. Each trains on the full standard MNIST split; they
// take from seconds (MLP) to minutes (CNN) on two cores, so -short skips them.

func TestMNISTMLPAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("full MNIST training; run without -short")
	}
	d := mnistData(t, nil, 0, 0)
	if n := d.Train.Rows(784); n != 60000 || d.Test.Rows(784) != 10000 {
		t.Fatalf("split %d/%d, want the standard 60000/10000", n, d.Test.Rows(784))
	}
	s := mlpSpec(128) // 784-128-10, ReLU, adam 0.001, batch 64, 3 epochs, seed 1
	store := artifact.Store{Dir: t.TempDir()}
	res, err := Run(context.Background(), s, d, nil, Options{Store: &store})
	if err != nil {
		t.Fatal(err)
	}
	acc := res.Metrics["test_accuracy"]
	t.Logf("MNIST MLP 784-128-10, 3 epochs: test accuracy %.4f", acc)
	if acc < 0.975 {
		t.Fatalf("test accuracy %.4f < 0.975", acc)
	}
	// What serving sees: the stored artifact, fed raw 0..255 pixels, must
	// score the same (it applies the stored normalisation itself).
	m, err := store.Get(context.Background(), res.Digest)
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := mnistOnce()
	raw := tb.X[tb.TrainRows*784:]
	p, err := m.Predict(raw, tb.Rows-tb.TrainRows)
	if err != nil {
		t.Fatal(err)
	}
	correct := 0
	for i := 0; i < tb.Rows-tb.TrainRows; i++ {
		if m.Classes()[argmax(p[i*10:(i+1)*10])] == tb.Labels[tb.TrainRows+i] {
			correct++
		}
	}
	if got := float64(correct) / 10000; got != acc {
		t.Fatalf("artifact on raw pixels: accuracy %.4f, training reported %.4f", got, acc)
	}
}

func TestMNISTCNNAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("full MNIST CNN training; run without -short")
	}
	d := mnistData(t, nil, 0, 0)
	s := mlpSpec(128)
	s.Model.Kind = "cnn" // conv3x3(8)+pool, conv3x3(16)+pool, dense 128, dense 10
	res, err := Run(context.Background(), s, d, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	acc := res.Metrics["test_accuracy"]
	t.Logf("MNIST CNN, 3 epochs: test accuracy %.4f", acc)
	if acc < 0.985 {
		t.Fatalf("test accuracy %.4f < 0.985", acc)
	}
}

// TestTransfer: pretrain on digits 0-4, fine-tune on 500 labelled digits 5-9
// with the first layer frozen (and a new 5-way head); this must beat the same
// network trained from scratch on those 500, on the test images of 5-9.
func TestTransfer(t *testing.T) {
	if testing.Short() {
		t.Skip("pretrains on half of MNIST; run without -short")
	}
	low := mnistData(t, []string{"0", "1", "2", "3", "4"}, 0, 10)
	pre := mlpSpec(128)
	pre.Model.Kind = "cnn"
	pre.Epochs = 2
	store := artifact.Store{Dir: t.TempDir()}
	base, err := Run(context.Background(), pre, low, nil, Options{Store: &store})
	if err != nil {
		t.Fatal(err)
	}
	baseModel, err := store.Get(context.Background(), base.Digest)
	if err != nil {
		t.Fatal(err)
	}

	high := mnistData(t, []string{"5", "6", "7", "8", "9"}, 500, 0)
	if high.Train.Rows(784) != 500 {
		t.Fatalf("%d fine-tuning rows", high.Train.Rows(784))
	}
	ft := pre
	ft.Epochs, ft.BatchSize = 20, 32
	ft.FreezeLayers = 1
	tuned, err := Run(context.Background(), ft, high, baseModel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The frozen layer really kept the base's weights.
	for i := 0; i < 2; i++ {
		bw, tw := baseModel.Weights[i].Data, tuned.Model.Weights[i].Data
		for j := range bw {
			if bw[j] != tw[j] {
				t.Fatalf("frozen weight %d[%d] changed", i, j)
			}
		}
	}
	scratchSpec := ft
	scratchSpec.FreezeLayers = 0
	scratch, err := Run(context.Background(), scratchSpec, high, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ta, sa := tuned.Metrics["test_accuracy"], scratch.Metrics["test_accuracy"]
	t.Logf("digits 5-9 from 500 examples: transfer %.4f, from scratch %.4f (on %d test images)", ta, sa, high.Test.Rows(784))
	if ta <= sa {
		t.Fatalf("transfer %.4f does not beat scratch %.4f", ta, sa)
	}
	if tuned.Model.Meta["base_model"] != base.Digest {
		t.Fatalf("artifact does not name its base model: %v", tuned.Model.Meta)
	}
}
