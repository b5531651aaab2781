package artifact

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// predictChunk is how many rows go through the network at a time: big enough
// for GEMM to be efficient, small enough to keep scratch memory bounded.
const predictChunk = 64

// compiled is the inference form of a Model, built once.
type compiled struct {
	in            int
	out           int
	scale, shift  []float32 // normalisation, nil for none
	steps         []step
	maxWidth      int // largest activation per row
	maxCol        int // largest im2col buffer per sample
	softmax       bool
	tMean, tStd   float32
	denormTargets bool
}

type step struct {
	layer   Layer
	w, b    []float32
	inShape []int // [n] or [C,H,W]
	outSize int
	oh, ow  int
}

type scratch struct{ a, b, col []float32 }

func (m *Model) compile() (*compiled, error) {
	m.once.Do(func() {
		m.net, m.netErr = m.build()
		if m.net != nil {
			net := m.net
			m.scratch.New = func() any {
				return &scratch{
					a:   make([]float32, predictChunk*net.maxWidth),
					b:   make([]float32, predictChunk*net.maxWidth),
					col: make([]float32, net.maxCol),
				}
			}
		}
	})
	return m.net, m.netErr
}

func (m *Model) build() (*compiled, error) {
	if m.Kind != KindSupervised {
		return nil, fmt.Errorf("model %s is a %s model: it has no network to predict with", m.digest, m.Kind)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	a := m.Architecture
	c := &compiled{in: m.InputSize(), out: m.OutputSize(), softmax: a.Objective == "classification"}
	if a.Objective == "regression" && a.TargetStd != 0 {
		c.denormTargets, c.tMean, c.tStd = true, float32(a.TargetMean), float32(a.TargetStd)
	}
	norm, err := ParseNormalization(m.Preprocessing)
	if err != nil {
		return nil, err
	}
	if c.scale, c.shift, err = norm.affine(c.in); err != nil {
		return nil, err
	}
	shape := append([]int(nil), a.InputShape...)
	c.maxWidth = c.in
	wi := 0
	for _, l := range a.Layers {
		s := step{layer: l, inShape: shape}
		if l.HasWeights() {
			s.w, s.b = m.Weights[wi].Data, m.Weights[wi+1].Data
			wi += 2
		}
		switch l.Type {
		case LayerDense:
			shape = []int{l.Out}
		case LayerConv2D:
			s.oh, s.ow = shape[1]+2*l.Pad-l.Kernel+1, shape[2]+2*l.Pad-l.Kernel+1
			if n := l.In * l.Kernel * l.Kernel * s.oh * s.ow; n > c.maxCol {
				c.maxCol = n
			}
			shape = []int{l.Out, s.oh, s.ow}
		case LayerMaxPool:
			s.oh, s.ow = shape[1]/l.Size, shape[2]/l.Size
			shape = []int{shape[0], s.oh, s.ow}
		case LayerFlatten:
			shape = []int{prod(shape)}
		}
		s.outSize = prod(shape)
		if s.outSize > c.maxWidth {
			c.maxWidth = s.outSize
		}
		c.steps = append(c.steps, s)
	}
	return c, nil
}

// Predict runs the network on n rows of raw features (row-major, InputSize()
// values each), after the stored normalisation, and returns n*OutputSize()
// values: class probabilities for classification, predicted values for
// regression. It is safe for concurrent use and allocates only the result
// (scratch buffers are pooled).
func (m *Model) Predict(x []float32, n int) ([]float32, error) {
	c, err := m.compile()
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	if n < 0 || len(x) != n*c.in {
		return nil, fmt.Errorf("predict: %d values for %d rows of %d features (want %d)", len(x), n, c.in, n*c.in)
	}
	out := make([]float32, n*c.out)
	sc := m.scratch.Get().(*scratch)
	defer m.scratch.Put(sc)
	for r := 0; r < n; r += predictChunk {
		k := min(predictChunk, n-r)
		c.forward(sc, x[r*c.in:(r+k)*c.in], k, out[r*c.out:(r+k)*c.out])
	}
	return out, nil
}

// forward computes k rows; dst receives k*c.out values.
func (c *compiled) forward(sc *scratch, x []float32, k int, dst []float32) {
	bufs := [2][]float32{sc.a, sc.b}
	idx := 0
	cur := bufs[0][:k*c.in]
	copy(cur, x)
	if c.scale != nil {
		applyAffine(cur, c.scale, c.shift)
	}
	width := c.in
	for _, s := range c.steps {
		o := bufs[1-idx][:k*s.outSize]
		switch s.layer.Type {
		case LayerDense:
			l := s.layer
			blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
				blas32.General{Rows: k, Cols: l.In, Stride: l.In, Data: cur},
				blas32.General{Rows: l.In, Cols: l.Out, Stride: l.Out, Data: s.w},
				0, blas32.General{Rows: k, Cols: l.Out, Stride: l.Out, Data: o})
			for r := 0; r < k; r++ {
				row := o[r*l.Out : (r+1)*l.Out]
				for j := range row {
					row[j] += s.b[j]
				}
				activate(row, l.Activation)
			}
		case LayerConv2D:
			for r := 0; r < k; r++ {
				conv2d(s, cur[r*width:(r+1)*width], o[r*s.outSize:(r+1)*s.outSize], sc.col)
			}
		case LayerMaxPool:
			for r := 0; r < k; r++ {
				maxpool(s, cur[r*width:(r+1)*width], o[r*s.outSize:(r+1)*s.outSize])
			}
		case LayerFlatten:
			copy(o, cur[:k*width])
		}
		cur, idx, width = o, 1-idx, s.outSize
	}
	copy(dst, cur[:k*c.out])
	switch {
	case c.softmax:
		for r := 0; r < k; r++ {
			softmax(dst[r*c.out : (r+1)*c.out])
		}
	case c.denormTargets:
		for i := range dst {
			dst[i] = dst[i]*c.tStd + c.tMean
		}
	}
}

// conv2d: one sample, im2col then GEMM, the same arithmetic as the training kernel.
func conv2d(s step, in, out, col []float32) {
	l := s.layer
	C, H, W := s.inShape[0], s.inShape[1], s.inShape[2]
	K, P, oh, ow := l.Kernel, l.Pad, s.oh, s.ow
	rows := C * K * K
	col = col[:rows*oh*ow]
	for c := 0; c < C; c++ {
		for ky := 0; ky < K; ky++ {
			for kx := 0; kx < K; kx++ {
				dst := col[((c*K+ky)*K+kx)*oh*ow:]
				for y := 0; y < oh; y++ {
					iy := y + ky - P
					for x := 0; x < ow; x++ {
						ix := x + kx - P
						v := float32(0)
						if iy >= 0 && iy < H && ix >= 0 && ix < W {
							v = in[(c*H+iy)*W+ix]
						}
						dst[y*ow+x] = v
					}
				}
			}
		}
	}
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas32.General{Rows: l.Out, Cols: rows, Stride: rows, Data: s.w},
		blas32.General{Rows: rows, Cols: oh * ow, Stride: oh * ow, Data: col},
		0, blas32.General{Rows: l.Out, Cols: oh * ow, Stride: oh * ow, Data: out})
	for o := 0; o < l.Out; o++ {
		ch := out[o*oh*ow : (o+1)*oh*ow]
		for i := range ch {
			ch[i] += s.b[o]
		}
		activate(ch, l.Activation)
	}
}

func maxpool(s step, in, out []float32) {
	C, H, W := s.inShape[0], s.inShape[1], s.inShape[2]
	S, oh, ow := s.layer.Size, s.oh, s.ow
	for c := 0; c < C; c++ {
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				m := float32(math.Inf(-1))
				for dy := 0; dy < S; dy++ {
					for dx := 0; dx < S; dx++ {
						if v := in[(c*H+y*S+dy)*W+x*S+dx]; v > m {
							m = v
						}
					}
				}
				out[(c*oh+y)*ow+x] = m
			}
		}
	}
}

func activate(v []float32, act string) {
	switch act {
	case ActReLU:
		for i, x := range v {
			if x < 0 {
				v[i] = 0
			}
		}
	case ActTanh:
		for i, x := range v {
			v[i] = float32(math.Tanh(float64(x)))
		}
	case ActSigmoid:
		for i, x := range v {
			v[i] = float32(1 / (1 + math.Exp(-float64(x))))
		}
	}
}

func softmax(v []float32) {
	m := v[0]
	for _, x := range v {
		if x > m {
			m = x
		}
	}
	var s float64
	for i, x := range v {
		e := math.Exp(float64(x - m))
		v[i] = float32(e)
		s += e
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / s)
	}
}
