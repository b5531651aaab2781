// Package artifact is lepton's model file format and its content-addressed
// store: a versioned header, the architecture, float32 weights, the
// preprocessing parameters the model was trained with, the label classes and
// the metrics, plus an opaque payload for non-neural models (Q-tables).
//
// File layout (all integers little-endian):
//
//	offset 0   8 bytes  magic "LEPTONMD"
//	offset 8   uint16   format version (FormatVersion)
//	offset 10  uint16   reserved, 0
//	offset 12  uint32   header length H
//	offset 16  H bytes  header, JSON (Model minus the weight values)
//	offset 16+H         weight values, float32, tensors in header order
//
// A model's identity is "sha256:<hex>" of the whole file.
package artifact

import (
	"encoding/json"
	"fmt"
	"sync"
)

// Kind says what a model file holds.
type Kind string

const (
	KindSupervised Kind = "supervised"
	KindQLearning  Kind = "q_learning"
)

// Layer types of an Architecture.
const (
	LayerDense   = "dense"   // y = act(x·W + b); W [In, Out], b [Out]
	LayerConv2D  = "conv2d"  // NCHW, W [Out, In, K, K], b [Out], stride 1, padding Pad
	LayerMaxPool = "maxpool" // non-overlapping Size x Size windows
	LayerFlatten = "flatten" // CHW -> vector, in that order
)

// Activations.
const (
	ActNone    = ""
	ActReLU    = "relu"
	ActTanh    = "tanh"
	ActSigmoid = "sigmoid"
)

// Layer is one step of the forward pass.
type Layer struct {
	Type       string `json:"type"`
	In         int    `json:"in,omitempty"`  // dense: input width; conv2d: input channels
	Out        int    `json:"out,omitempty"` // dense: output width; conv2d: output channels
	Kernel     int    `json:"kernel,omitempty"`
	Pad        int    `json:"pad,omitempty"`
	Size       int    `json:"size,omitempty"` // maxpool window
	Activation string `json:"activation,omitempty"`
	// Dropout is the training-time rate after this layer; inference ignores it.
	Dropout float64 `json:"dropout,omitempty"`
}

// HasWeights says whether the layer owns a weight and a bias tensor.
func (l Layer) HasWeights() bool { return l.Type == LayerDense || l.Type == LayerConv2D }

// Architecture describes a feed-forward network.
type Architecture struct {
	Objective  string  `json:"objective"`   // classification | regression
	ModelKind  string  `json:"model_kind"`  // linear | mlp | cnn
	InputShape []int   `json:"input_shape"` // [features] or [C, H, W]
	Layers     []Layer `json:"layers"`
	// Regression targets are standardised for training; Predict undoes it.
	TargetMean float64 `json:"target_mean,omitempty"`
	TargetStd  float64 `json:"target_std,omitempty"`
}

// Tensor is a named float32 array.
type Tensor struct {
	Name  string    `json:"name"`
	Shape []int     `json:"shape"`
	Data  []float32 `json:"-"`
}

// Model is the content of one artifact file. Treat a Model as immutable once
// it has been passed to Put or returned by Get: Predict caches a compiled form.
type Model struct {
	Kind         Kind          `json:"kind"`
	Architecture *Architecture `json:"architecture,omitempty"`
	// Weights: for each layer with weights, in layer order, its W then its b.
	Weights []Tensor `json:"weights,omitempty"`
	// Preprocessing is stored verbatim; Normalization documents the shape that
	// Predict understands.
	Preprocessing json.RawMessage    `json:"preprocessing,omitempty"`
	Features      []string           `json:"features,omitempty"`
	ClassLabels   []string           `json:"classes,omitempty"`
	Metrics       map[string]float64 `json:"metrics,omitempty"`
	// Meta holds run facts worth showing (seed, epochs, base model digest).
	Meta map[string]string `json:"meta,omitempty"`
	// Payload is kind-specific data that is not a network (a Q-table and policy).
	Payload json.RawMessage `json:"payload,omitempty"`
	// Summary is optional text that Describe prints as is (a policy drawn as a grid).
	Summary string `json:"summary,omitempty"`

	digest string

	once    sync.Once
	net     *compiled
	netErr  error
	scratch sync.Pool
}

// Digest is the model's "sha256:<hex>" identity; empty until Put or Get.
func (m *Model) Digest() string { return m.digest }

// Version is an alias of Digest, the name the CLI shows.
func (m *Model) Version() string { return m.digest }

// Classes returns the label classes, in output order (nil for regression).
func (m *Model) Classes() []string { return m.ClassLabels }

// InputSize is the number of raw features one row has.
func (m *Model) InputSize() int {
	if m.Architecture == nil {
		return 0
	}
	n := 1
	for _, d := range m.Architecture.InputShape {
		n *= d
	}
	return n
}

// OutputSize is the number of values Predict returns per row.
func (m *Model) OutputSize() int {
	if m.Architecture == nil {
		return 0
	}
	for i := len(m.Architecture.Layers) - 1; i >= 0; i-- {
		if l := m.Architecture.Layers[i]; l.Type == LayerDense {
			return l.Out
		}
	}
	return 0
}

// WeightShapes lists the shapes of the weight tensors, for compatibility checks.
func (a *Architecture) WeightShapes() [][]int {
	var out [][]int
	for _, l := range a.Layers {
		switch l.Type {
		case LayerDense:
			out = append(out, []int{l.In, l.Out}, []int{l.Out})
		case LayerConv2D:
			out = append(out, []int{l.Out, l.In, l.Kernel, l.Kernel}, []int{l.Out})
		}
	}
	return out
}

// validate checks that the architecture is consistent with the weights and
// with itself, so that a decoded file can never make Predict index out of range.
func (m *Model) validate() error {
	if m.Kind != KindSupervised && m.Kind != KindQLearning {
		return fmt.Errorf("unknown model kind %q", m.Kind)
	}
	if m.Kind != KindSupervised {
		return nil
	}
	a := m.Architecture
	if a == nil {
		return fmt.Errorf("supervised model without an architecture")
	}
	if a.Objective != "classification" && a.Objective != "regression" {
		return fmt.Errorf("unknown objective %q", a.Objective)
	}
	shape := append([]int(nil), a.InputShape...)
	if len(shape) != 1 && len(shape) != 3 {
		return fmt.Errorf("input shape %v: want [features] or [channels, height, width]", shape)
	}
	for _, d := range shape {
		if d < 1 || d > 1<<24 {
			return fmt.Errorf("input shape %v out of range", shape)
		}
	}
	want := a.WeightShapes()
	if len(want) != len(m.Weights) {
		return fmt.Errorf("architecture needs %d weight tensors, file has %d", len(want), len(m.Weights))
	}
	for i, s := range want {
		w := m.Weights[i]
		if !equalInts(s, w.Shape) {
			return fmt.Errorf("weight %d (%s) has shape %v, architecture needs %v", i, w.Name, w.Shape, s)
		}
		if len(w.Data) != prod(s) {
			return fmt.Errorf("weight %d (%s) has %d values, shape %v needs %d", i, w.Name, len(w.Data), s, prod(s))
		}
	}
	for i, l := range a.Layers {
		switch l.Activation {
		case ActNone, ActReLU, ActTanh, ActSigmoid:
		default:
			return fmt.Errorf("layer %d: unknown activation %q", i, l.Activation)
		}
		switch l.Type {
		case LayerDense:
			if len(shape) != 1 || shape[0] != l.In || l.Out < 1 {
				return fmt.Errorf("layer %d: dense %d->%d after shape %v", i, l.In, l.Out, shape)
			}
			shape = []int{l.Out}
		case LayerConv2D:
			if len(shape) != 3 || shape[0] != l.In || l.Out < 1 || l.Kernel < 1 || l.Pad < 0 || l.Pad >= l.Kernel {
				return fmt.Errorf("layer %d: conv2d %d->%d kernel %d pad %d after shape %v", i, l.In, l.Out, l.Kernel, l.Pad, shape)
			}
			h, w := shape[1]+2*l.Pad-l.Kernel+1, shape[2]+2*l.Pad-l.Kernel+1
			if h < 1 || w < 1 {
				return fmt.Errorf("layer %d: conv2d kernel %d does not fit %v", i, l.Kernel, shape)
			}
			shape = []int{l.Out, h, w}
		case LayerMaxPool:
			if len(shape) != 3 || l.Size < 1 || shape[1] < l.Size || shape[2] < l.Size {
				return fmt.Errorf("layer %d: maxpool %d after shape %v", i, l.Size, shape)
			}
			shape = []int{shape[0], shape[1] / l.Size, shape[2] / l.Size}
		case LayerFlatten:
			shape = []int{prod(shape)}
		default:
			return fmt.Errorf("layer %d: unknown layer type %q", i, l.Type)
		}
	}
	if len(shape) != 1 {
		return fmt.Errorf("network ends with shape %v, want a vector", shape)
	}
	if a.Objective == "classification" && len(m.ClassLabels) > 0 && len(m.ClassLabels) != shape[0] {
		return fmt.Errorf("network has %d outputs for %d classes", shape[0], len(m.ClassLabels))
	}
	return nil
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
