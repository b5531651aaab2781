// Package testmodel provides a real two-layer ReLU MLP with seeded random
// weights. Tests and the serving benchmark use it so they exercise the same
// compute as the quickstart MNIST model without depending on runtime/artifact.
package testmodel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// MLP is an in -> hidden (ReLU) -> out (softmax) network. It is safe for
// concurrent use: weights are read-only after construction and scratch
// buffers come from a pool.
type MLP struct {
	in, hidden, out int
	w1, w2          []float32 // row-major in x hidden, hidden x out
	b1, b2          []float32
	classes         []string
	scratch         sync.Pool // *[]float32 hidden activations
}

// New builds an MLP with weights drawn from a seeded He-style uniform
// distribution, so two calls with the same seed give identical models.
// Classes are "0".."out-1"; pass regression=true to return raw outputs
// and no class list.
func New(seed uint64, in, hidden, out int, regression bool) *MLP {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	m := &MLP{in: in, hidden: hidden, out: out,
		w1: make([]float32, in*hidden), w2: make([]float32, hidden*out),
		b1: make([]float32, hidden), b2: make([]float32, out)}
	fill := func(s []float32, fanIn int) {
		lim := float32(math.Sqrt(6 / float64(fanIn)))
		for i := range s {
			s[i] = (r.Float32()*2 - 1) * lim
		}
	}
	fill(m.w1, in)
	fill(m.w2, hidden)
	fill(m.b1, in)
	fill(m.b2, hidden)
	if !regression {
		m.classes = make([]string, out)
		for i := range m.classes {
			m.classes[i] = strconv.Itoa(i)
		}
	}
	return m
}

// MNIST returns the 784-128-10 classifier shape of the quickstart model.
func MNIST(seed uint64) *MLP { return New(seed, 784, 128, 10, false) }

// InputSize is the number of features per row.
func (m *MLP) InputSize() int { return m.in }

// Classes lists class labels, or nil for a regression model.
func (m *MLP) Classes() []string { return m.classes }

// OutputSize is the number of values Predict returns per row.
func (m *MLP) OutputSize() int { return m.out }

// Predict runs the forward pass on n rows of x (row-major n x InputSize) and
// returns n x out values: probabilities for a classifier, raw outputs for
// regression.
func (m *MLP) Predict(x []float32, n int) ([]float32, error) {
	if n <= 0 || len(x) != n*m.in {
		return nil, fmt.Errorf("testmodel: got %d values for %d rows of %d features", len(x), n, m.in)
	}
	need := n * m.hidden
	hp, _ := m.scratch.Get().(*[]float32)
	if hp == nil || cap(*hp) < need {
		s := make([]float32, need)
		hp = &s
	}
	h := (*hp)[:need]
	defer m.scratch.Put(hp)
	for r := 0; r < n; r++ {
		copy(h[r*m.hidden:(r+1)*m.hidden], m.b1)
	}
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas32.General{Rows: n, Cols: m.in, Stride: m.in, Data: x},
		blas32.General{Rows: m.in, Cols: m.hidden, Stride: m.hidden, Data: m.w1},
		1, blas32.General{Rows: n, Cols: m.hidden, Stride: m.hidden, Data: h})
	for i, v := range h {
		if v < 0 {
			h[i] = 0
		}
	}
	out := make([]float32, n*m.out)
	for r := 0; r < n; r++ {
		copy(out[r*m.out:(r+1)*m.out], m.b2)
	}
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas32.General{Rows: n, Cols: m.hidden, Stride: m.hidden, Data: h},
		blas32.General{Rows: m.hidden, Cols: m.out, Stride: m.out, Data: m.w2},
		1, blas32.General{Rows: n, Cols: m.out, Stride: m.out, Data: out})
	if m.classes != nil {
		for r := 0; r < n; r++ {
			softmax(out[r*m.out : (r+1)*m.out])
		}
	}
	return out, nil
}

func softmax(v []float32) {
	mx := v[0]
	for _, x := range v[1:] {
		mx = max(mx, x)
	}
	var sum float64
	for i, x := range v {
		e := math.Exp(float64(x - mx))
		v[i] = float32(e)
		sum += e
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / sum)
	}
}
