package train

import (
	"encoding/json"
	"gorgonia.org/tensor"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/builtin"
)

// mnistOnce caches the decoded MNIST table for the whole test binary (it is
// read-only, and decoding it costs a second).
var mnistOnce = sync.OnceValues(func() (*builtin.Table, error) { return builtin.Load("mnist") })

// mnistData builds train/test splits from the standard MNIST split, keeping
// only rows whose digit is in keep (all digits when keep is nil), at most
// maxTrain training rows (0: all), z-scored as the stored normalisation says.
func mnistData(t testing.TB, keep []string, maxTrain, maxTest int) *Data {
	t.Helper()
	tb, err := mnistOnce()
	if err != nil {
		t.Fatal(err)
	}
	classes := keep
	if classes == nil {
		classes = tb.Classes()
	}
	// The customary MNIST normalisation: one mean and standard deviation for
	// all pixels (0.1307 and 0.3081 of full scale).
	norm := artifact.Normalization{Method: "zscore", Mean: []float64{0.1307 * 255}, Std: []float64{0.3081 * 255}}
	pre, _ := json.Marshal(norm)
	d := &Data{Features: tb.Features, Classes: classes, ImageShape: tb.ImageShape, Preprocessing: pre}
	w := len(tb.Features)
	add := func(sp *Split, from, to, max int) {
		for i := from; i < to && (max == 0 || len(sp.Labels) < max); i++ {
			c := slices.Index(classes, tb.Labels[i])
			if c < 0 {
				continue
			}
			row := slices.Clone(tb.Row(i))
			sp.X = append(sp.X, row...)
			sp.Labels = append(sp.Labels, c)
		}
		if err := norm.Apply(sp.X, w); err != nil {
			t.Fatal(err)
		}
	}
	add(&d.Train, 0, tb.TrainRows, maxTrain)
	add(&d.Test, tb.TrainRows, tb.Rows, maxTest)
	return d
}

// irisData shuffles iris with a fixed seed into 120 training and 30 test
// rows, z-scored with the training rows' statistics.
func irisData(t testing.TB) *Data {
	t.Helper()
	tb, err := builtin.Load("iris")
	if err != nil {
		t.Fatal(err)
	}
	classes := tb.Classes()
	perm := rand.New(rand.NewPCG(7, 7)).Perm(tb.Rows)
	w := len(tb.Features)
	d := &Data{Features: tb.Features, Classes: classes}
	for k, i := range perm {
		sp := &d.Train
		if k >= 120 {
			sp = &d.Test
		}
		sp.X = append(sp.X, tb.Row(i)...)
		sp.Labels = append(sp.Labels, slices.Index(classes, tb.Labels[i]))
	}
	n := artifact.Normalization{Method: "zscore", Features: tb.Features, Mean: make([]float64, w), Std: make([]float64, w)}
	rows := d.Train.Rows(w)
	for j := 0; j < w; j++ {
		var s, ss float64
		for i := 0; i < rows; i++ {
			s += float64(d.Train.X[i*w+j])
		}
		m := s / float64(rows)
		for i := 0; i < rows; i++ {
			v := float64(d.Train.X[i*w+j]) - m
			ss += v * v
		}
		n.Mean[j], n.Std[j] = m, sqrt64(ss/float64(rows))
	}
	d.Preprocessing, _ = json.Marshal(n)
	_ = n.Apply(d.Train.X, w)
	_ = n.Apply(d.Test.X, w)
	return d
}

func sqrt64(x float64) float64 { return math.Sqrt(x) }

func tensorOf(v []float32, shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}
