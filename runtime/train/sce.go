package train

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// softmaxCrossEntropy is the mean over the batch of -log softmax(logits)[label],
// with y one-hot, as one gorgonia op with a fused gradient (softmax - y)/B.
//
// Why not LogSoftMax, HadamardProd and Sum: gorgonia.org/tensor v0.9.24's
// float32 softmax takes each row's maximum starting from the first element
// of the whole tensor rather than of the row (so a large logit overflows exp
// and the loss becomes NaN), and it starts one goroutine per row on every
// call; the four-op chain also costs eight tape instructions per step.
func softmaxCrossEntropy(logits, y *G.Node) (*G.Node, error) {
	if !logits.Shape().Eq(y.Shape()) || logits.Shape().Dims() != 2 {
		return nil, fmt.Errorf("softmax cross-entropy: logits %v and targets %v must be the same [batch, classes] shape", logits.Shape(), y.Shape())
	}
	return G.ApplyOp(sceOp{}, logits, y)
}

type sceOp struct{}

func (sceOp) Arity() int { return 2 }
func (sceOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(t, t, a)
}
func (sceOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }
func (sceOp) ReturnsPtr() bool                               { return false }
func (sceOp) CallsExtern() bool                              { return false }
func (sceOp) OverwritesInput() int                           { return -1 }
func (sceOp) WriteHash(h hash.Hash)                          { fmt.Fprint(h, "lepton.SoftmaxCrossEntropy") }
func (op sceOp) Hashcode() uint32                            { return hashOp(op) }
func (sceOp) String() string                                 { return "SoftmaxCrossEntropy" }

func (sceOp) Do(vals ...G.Value) (G.Value, error) {
	x, y, b, k, err := sceInputs(vals[0], vals[1])
	if err != nil {
		return nil, err
	}
	var loss float64
	for r := 0; r < b; r++ {
		row, t := x[r*k:(r+1)*k], y[r*k:(r+1)*k]
		m, lse := logSumExp(row)
		for j, tj := range t {
			if tj != 0 {
				loss -= float64(tj) * (float64(row[j]-m) - lse)
			}
		}
	}
	return G.NewF32(float32(loss / float64(b))), nil
}

func (sceOp) DiffWRT(int) []bool { return []bool{true, false} }

func (sceOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	d, err := G.ApplyOp(sceGradOp{}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d, nil}, nil
}

// sceGradOp computes d loss / d logits = upstream * (softmax(logits) - y) / B.
type sceGradOp struct{}

func (sceGradOp) Arity() int { return 3 }
func (sceGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(t, t, a, t)
}
func (sceGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("softmax cross-entropy gradient: input shape %v", in[0])
	}
	return s.Clone(), nil
}
func (sceGradOp) ReturnsPtr() bool      { return false }
func (sceGradOp) CallsExtern() bool     { return false }
func (sceGradOp) OverwritesInput() int  { return -1 }
func (sceGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, "lepton.SoftmaxCrossEntropyGrad") }
func (op sceGradOp) Hashcode() uint32   { return hashOp(op) }
func (sceGradOp) String() string        { return "SoftmaxCrossEntropyGrad" }

func (sceGradOp) Do(vals ...G.Value) (G.Value, error) {
	x, y, b, k, err := sceInputs(vals[0], vals[1])
	if err != nil {
		return nil, err
	}
	up, ok := vals[2].Data().(float32)
	if !ok {
		return nil, fmt.Errorf("softmax cross-entropy gradient: upstream gradient is %T, want float32", vals[2].Data())
	}
	scale := float64(up) / float64(b)
	out := make([]float32, b*k)
	for r := 0; r < b; r++ {
		row, t, o := x[r*k:(r+1)*k], y[r*k:(r+1)*k], out[r*k:(r+1)*k]
		m, lse := logSumExp(row)
		var tsum float64
		for _, tj := range t {
			tsum += float64(tj)
		}
		// d/dx_j of -sum_i t_i log p_i = p_j * sum(t) - t_j
		for j := range o {
			p := math.Exp(float64(row[j]-m) - lse)
			o[j] = float32(scale * (p*tsum - float64(t[j])))
		}
	}
	return tensor.New(tensor.WithShape(b, k), tensor.WithBacking(out)), nil
}

func sceInputs(xv, yv G.Value) (x, y []float32, b, k int, err error) {
	x, ok1 := xv.Data().([]float32)
	y, ok2 := yv.Data().([]float32)
	if !ok1 || !ok2 {
		return nil, nil, 0, 0, fmt.Errorf("softmax cross-entropy: want float32 tensors, got %T and %T", xv.Data(), yv.Data())
	}
	s := xv.Shape()
	if len(s) != 2 || len(x) != s[0]*s[1] || len(y) != len(x) {
		return nil, nil, 0, 0, fmt.Errorf("softmax cross-entropy: shapes %v and %v", xv.Shape(), yv.Shape())
	}
	return x, y, s[0], s[1], nil
}

// logSumExp returns the row's maximum m and log(sum(exp(row - m))).
func logSumExp(row []float32) (m float32, lse float64) {
	m = row[0]
	for _, v := range row[1:] {
		if v > m {
			m = v
		}
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v - m))
	}
	return m, math.Log(s)
}

func hashOp(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
