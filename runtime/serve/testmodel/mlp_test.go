package testmodel

import (
	"math"
	"testing"
)

func TestPredictMatchesNaiveForwardPass(t *testing.T) {
	m := New(7, 5, 4, 3, false)
	x := []float32{0.1, -0.2, 0.3, 0.4, -0.5, 1, 0, 0, 0, 2}
	got, err := m.Predict(x, 2)
	if err != nil {
		t.Fatal(err)
	}
	for r := 0; r < 2; r++ {
		h := make([]float64, m.hidden)
		for j := range h {
			s := float64(m.b1[j])
			for i := 0; i < m.in; i++ {
				s += float64(x[r*m.in+i]) * float64(m.w1[i*m.hidden+j])
			}
			h[j] = math.Max(0, s)
		}
		logits := make([]float64, m.out)
		var sum float64
		for k := range logits {
			s := float64(m.b2[k])
			for j := range h {
				s += h[j] * float64(m.w2[j*m.out+k])
			}
			logits[k] = math.Exp(s)
			sum += logits[k]
		}
		for k := range logits {
			want := logits[k] / sum
			if d := math.Abs(want - float64(got[r*m.out+k])); d > 1e-5 {
				t.Errorf("row %d class %d: got %v want %v", r, k, got[r*m.out+k], want)
			}
		}
	}
}

func TestSeedIsDeterministicAndShapeChecked(t *testing.T) {
	a, b := MNIST(1), MNIST(1)
	x := make([]float32, 784)
	for i := range x {
		x[i] = float32(i%17) / 17
	}
	pa, _ := a.Predict(x, 1)
	pb, _ := b.Predict(x, 1)
	for i := range pa {
		if pa[i] != pb[i] {
			t.Fatalf("same seed, different output at %d", i)
		}
	}
	if _, err := a.Predict(x[:100], 1); err == nil {
		t.Fatal("short input accepted")
	}
	if got := len(a.Classes()); got != 10 {
		t.Fatalf("classes = %d", got)
	}
	if New(1, 3, 2, 1, true).Classes() != nil {
		t.Fatal("regression model has classes")
	}
}
