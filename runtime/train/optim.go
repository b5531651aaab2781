package train

import (
	"fmt"
	"math"
)

// optimizer applies updates in place to float32 parameters. Its state is a
// set of plain slices so a checkpoint can store it and resume exactly.
type optimizer struct {
	spec OptimizerSpec
	step int64
	// Per parameter: adam first and second moments; sgd velocity in m;
	// rmsprop mean square in v and momentum buffer in m.
	m, v [][]float32
}

func newOptimizer(spec OptimizerSpec, sizes []int) *optimizer {
	o := &optimizer{spec: spec, m: make([][]float32, len(sizes)), v: make([][]float32, len(sizes))}
	for i, n := range sizes {
		o.m[i] = make([]float32, n)
		if spec.Name != "sgd" {
			o.v[i] = make([]float32, n)
		}
	}
	return o
}

// begin starts one update step (Adam's bias correction counts steps).
func (o *optimizer) begin() { o.step++ }

// update applies one step to parameter i with gradient g.
func (o *optimizer) update(i int, w, g []float32) error {
	if len(w) != len(g) || len(w) != len(o.m[i]) {
		return fmt.Errorf("optimizer: parameter %d has %d values, gradient %d, state %d", i, len(w), len(g), len(o.m[i]))
	}
	lr := float32(o.spec.LearningRate)
	wd := float32(o.spec.WeightDecay)
	mom := float32(o.spec.Momentum)
	m, v := o.m[i], o.v[i]
	switch o.spec.Name {
	case "adam":
		const b1, b2, eps = 0.9, 0.999, 1e-8
		c1 := float32(1 - math.Pow(b1, float64(o.step)))
		c2 := float32(1 - math.Pow(b2, float64(o.step)))
		// Folding both bias corrections into the step size saves two divisions per value.
		alpha := lr * float32(math.Sqrt(float64(c2))) / c1
		epsHat := float32(eps * math.Sqrt(float64(c2)))
		_ = m[len(w)-1]
		_ = v[len(w)-1]
		for j, gj := range g {
			gj += wd * w[j]
			mj := b1*m[j] + (1-b1)*gj
			vj := b2*v[j] + (1-b2)*gj*gj
			m[j], v[j] = mj, vj
			w[j] -= alpha * mj / (sqrt32(vj) + epsHat)
		}
	case "sgd":
		for j, gj := range g {
			gj += wd * w[j]
			m[j] = mom*m[j] + gj
			w[j] -= lr * m[j]
		}
	case "rmsprop":
		const rho, eps = 0.9, 1e-7
		for j, gj := range g {
			gj += wd * w[j]
			v[j] = rho*v[j] + (1-rho)*gj*gj
			d := gj / (sqrt32(v[j]) + eps)
			if mom > 0 {
				m[j] = mom*m[j] + d
				d = m[j]
			}
			w[j] -= lr * d
		}
	default:
		return fmt.Errorf("unknown optimizer %q", o.spec.Name)
	}
	return nil
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
