package train

import (
	"fmt"

	"github.com/leptonml/lepton/runtime/artifact"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// graph is the gorgonia training program for one network at one batch size.
// It is built once per run: every step copies the batch into the
// preallocated input tensors, runs the same tape, and reads the gradients.
type graph struct {
	g        *G.ExprGraph
	vm       G.VM
	batch    int
	xBuf     []float32
	yBuf     []float32
	masks    []dropMask
	params   []*G.Node // one per weight tensor, in artifact order
	trainIdx []int     // indices into params that are trained
	loss     *G.Node
	grads    []*G.Node // per param; nil for frozen ones
	sync     *syncRunner
}

type dropMask struct {
	buf  []float32
	rate float64
}

// graphOpts turn off, one by one, the ways this package drives gorgonia
// faster than the obvious code does. Training always uses the zero value; the
// benchmarks use the others to measure what each change is worth.
type graphOpts struct {
	runAll        bool // run the tape with RunAll (a goroutine and thread hand-off per step)
	compileAll    bool // compile the whole graph, including gradients nobody reads
	gorgoniaLoss  bool // LogSoftMax, HadamardProd, Sum instead of the fused op
	broadcastBias bool // BroadcastAdd for dense biases instead of ones·b
	gorgoniaConv  bool // gorgonia's Conv2d instead of batchedConv
}

// newGraph builds the network. weights are the live parameter arrays: the
// graph's tensors share their memory, so optimiser updates are seen by the
// next step without copying. Weight layers below freeze get no gradient.
func newGraph(arch *artifact.Architecture, weights []artifact.Tensor, batch, freeze int, train bool, o graphOpts) (*graph, error) {
	gr := &graph{g: G.NewGraph(), batch: batch}
	g := gr.g
	in := 1
	for _, d := range arch.InputShape {
		in *= d
	}
	gr.xBuf = make([]float32, batch*in)
	xShape := append([]int{batch}, arch.InputShape...)
	x := G.NewTensor(g, tensor.Float32, len(xShape), G.WithShape(xShape...), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(xShape...), tensor.WithBacking(gr.xBuf))))

	param := func(t artifact.Tensor, shape ...int) *G.Node {
		if len(shape) == 0 {
			shape = t.Shape
		}
		n := G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithName(t.Name),
			G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(t.Data))))
		gr.params = append(gr.params, n)
		return n
	}
	ones := make([]float32, batch)
	for i := range ones {
		ones[i] = 1
	}
	onesCol := G.NewConstant(tensor.New(tensor.WithShape(batch, 1), tensor.WithBacking(ones)), G.WithName("ones"))

	h := x
	var maskNodes G.Nodes
	wi, layer := 0, 0
	var err error
	for _, l := range arch.Layers {
		switch l.Type {
		case artifact.LayerDense:
			w := param(weights[wi])
			b := param(weights[wi+1], 1, l.Out)
			if h, err = G.Mul(h, w); err != nil {
				return nil, fmt.Errorf("dense layer %d: %w", layer, err)
			}
			if o.broadcastBias {
				if h, err = G.BroadcastAdd(h, b, nil, []byte{0}); err != nil {
					return nil, err
				}
				break
			}
			// Bias as ones(B,1)·b(1,out): one small GEMM, cheaper in gorgonia
			// than its broadcasting add.
			bb, err := G.Mul(onesCol, b)
			if err != nil {
				return nil, err
			}
			if h, err = G.Add(h, bb); err != nil {
				return nil, err
			}
		case artifact.LayerConv2D:
			w := param(weights[wi])
			b := param(weights[wi+1], 1, l.Out, 1, 1)
			if o.gorgoniaConv {
				h, err = G.Conv2d(h, w, tensor.Shape{l.Kernel, l.Kernel}, []int{l.Pad, l.Pad}, []int{1, 1}, []int{1, 1})
			} else {
				h, err = batchedConv(h, w, onesCol, l)
			}
			if err != nil {
				return nil, fmt.Errorf("conv layer %d: %w", layer, err)
			}
			if h, err = G.BroadcastAdd(h, b, nil, []byte{0, 2, 3}); err != nil {
				return nil, fmt.Errorf("conv layer %d bias: %w", layer, err)
			}
		case artifact.LayerMaxPool:
			if h, err = G.MaxPool2D(h, tensor.Shape{l.Size, l.Size}, []int{0, 0}, []int{l.Size, l.Size}); err != nil {
				return nil, fmt.Errorf("maxpool: %w", err)
			}
		case artifact.LayerFlatten:
			s := h.Shape()
			if h, err = G.Reshape(h, tensor.Shape{s[0], s[1] * s[2] * s[3]}); err != nil {
				return nil, fmt.Errorf("flatten: %w", err)
			}
		}
		if l.HasWeights() {
			wi += 2
			layer++
		}
		switch l.Activation {
		case artifact.ActReLU:
			h, err = G.Rectify(h)
		case artifact.ActTanh:
			h, err = G.Tanh(h)
		case artifact.ActSigmoid:
			h, err = G.Sigmoid(h)
		}
		if err != nil {
			return nil, err
		}
		if train && l.Dropout > 0 {
			// The mask is an input filled from the run's seeded generator, not
			// gorgonia's Dropout (global randomness): runs must be reproducible.
			m := dropMask{buf: make([]float32, batch*l.Out), rate: l.Dropout}
			mn := G.NewMatrix(g, tensor.Float32, G.WithShape(batch, l.Out), G.WithName(fmt.Sprintf("mask%d", len(gr.masks))),
				G.WithValue(tensor.New(tensor.WithShape(batch, l.Out), tensor.WithBacking(m.buf))))
			gr.masks = append(gr.masks, m)
			maskNodes = append(maskNodes, mn)
			if h, err = G.HadamardProd(h, mn); err != nil {
				return nil, err
			}
		}
	}

	out := h.Shape()[1]
	gr.yBuf = make([]float32, batch*out)
	y := G.NewMatrix(g, tensor.Float32, G.WithShape(batch, out), G.WithName("y"),
		G.WithValue(tensor.New(tensor.WithShape(batch, out), tensor.WithBacking(gr.yBuf))))
	var loss *G.Node
	if arch.Objective == "classification" {
		if o.gorgoniaLoss {
			loss, err = gorgoniaCrossEntropy(h, y)
		} else {
			loss, err = softmaxCrossEntropy(h, y)
		}
	} else {
		var d *G.Node
		if d, err = G.Sub(h, y); err == nil {
			if d, err = G.Square(d); err == nil {
				loss, err = G.Mean(d)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("loss: %w", err)
	}
	gr.loss = loss

	var wrt G.Nodes
	for i, p := range gr.params {
		if i/2 >= freeze {
			gr.trainIdx = append(gr.trainIdx, i)
			wrt = append(wrt, p)
		}
	}
	outputs := G.Nodes{loss}
	if train {
		grads, err := G.Grad(loss, wrt...)
		if err != nil {
			return nil, fmt.Errorf("gradients: %w", err)
		}
		gr.grads = make([]*G.Node, len(gr.params))
		for k, i := range gr.trainIdx {
			gr.grads[i] = grads[k]
		}
		outputs = append(outputs, grads...)
	}
	// Compile only what the loss and the wanted gradients need: a plain
	// NewTapeMachine(g) would also run gradients nobody reads (such as the
	// gradient with respect to the input batch, a full-size GEMM).
	inputs := append(G.Nodes{x, y}, gr.params...)
	inputs = append(inputs, maskNodes...)
	prog, locMap, err := G.CompileFunction(g, inputs, outputs)
	if o.compileAll {
		prog, locMap, err = G.Compile(g)
	}
	if err != nil {
		return nil, fmt.Errorf("compile training graph: %w", err)
	}
	gr.vm = G.NewTapeMachine(g, G.WithPrecompiled(prog, locMap))
	if !o.runAll {
		gr.sync = newSyncRunner(gr.vm, prog)
	}
	return gr, nil
}

// step runs forward and backward once on the batch already in xBuf/yBuf and
// returns the loss. Gradients are then in grad(i).
func (gr *graph) step() (float32, error) {
	gr.vm.Reset()
	if gr.sync != nil {
		if err := gr.sync.runOnce(); err != nil {
			return 0, err
		}
	} else if err := gr.vm.RunAll(); err != nil {
		return 0, err
	}
	return gr.loss.Value().Data().(float32), nil
}

// grad returns the gradient of trained parameter i (an index into params).
func (gr *graph) grad(i int) ([]float32, error) {
	if gr.grads[i] == nil || gr.grads[i].Value() == nil {
		return nil, fmt.Errorf("no gradient computed for %s", gr.params[i].Name())
	}
	return gr.grads[i].Value().Data().([]float32), nil
}

func (gr *graph) close() {
	if c, ok := gr.vm.(interface{ Close() error }); ok {
		c.Close()
	}
}

// gorgoniaCrossEntropy is the loss written with gorgonia's own ops; only the
// benchmarks use it (see softmaxCrossEntropy for why).
func gorgoniaCrossEntropy(logits, y *G.Node) (*G.Node, error) {
	lp, err := G.LogSoftMax(logits)
	if err != nil {
		return nil, err
	}
	p, err := G.HadamardProd(lp, y)
	if err != nil {
		return nil, err
	}
	s, err := G.Sum(p)
	if err != nil {
		return nil, err
	}
	return G.Mul(s, G.NewConstant(float32(-1/float64(y.Shape()[0]))))
}

// batchedConv is a 2-D convolution (stride 1) built from gorgonia's Im2Col
// and BatchedMatMul so that its result comes out in NCHW order directly:
// per sample, W[out, C·k·k] × col[H·W, C·k·k]ᵀ. gorgonia's Conv2d multiplies
// the other way round and then transposes NHWC to NCHW element by element,
// forward and backward, which was a third of the CNN's step. The filter is
// repeated over the batch with ones(B,1)·W(1, out·C·k·k), a GEMM whose
// gradient sums over the batch.
func batchedConv(x, w, onesCol *G.Node, l artifact.Layer) (*G.Node, error) {
	col, err := G.Im2Col(x, tensor.Shape{l.Kernel, l.Kernel}, tensor.Shape{l.Pad, l.Pad}, tensor.Shape{1, 1}, tensor.Shape{1, 1})
	if err != nil {
		return nil, err
	}
	cs := col.Shape() // (B, H, W, C·k·k)
	bsz, hh, ww, ckk := cs[0], cs[1], cs[2], cs[3]
	if col, err = G.Reshape(col, tensor.Shape{bsz, hh * ww, ckk}); err != nil {
		return nil, err
	}
	wf, err := G.Reshape(w, tensor.Shape{1, l.Out * ckk})
	if err != nil {
		return nil, err
	}
	wb, err := G.Mul(onesCol, wf)
	if err != nil {
		return nil, err
	}
	if wb, err = G.Reshape(wb, tensor.Shape{bsz, l.Out, ckk}); err != nil {
		return nil, err
	}
	out, err := G.BatchedMatMul(wb, col, false, true)
	if err != nil {
		return nil, err
	}
	return G.Reshape(out, tensor.Shape{bsz, l.Out, hh, ww})
}
