// Package train runs supervised training (classification and regression with
// linear, MLP and CNN models) on gorgonia, with checkpoints every epoch,
// exact resume, early stopping and transfer from a base model. The trained
// model is an artifact.Model.
package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/leptonml/lepton/runtime/artifact"
)

// Spec is a training block of the configuration, as plain values.
type Spec struct {
	Objective     string         `json:"objective"` // classification | regression
	Model         ModelSpec      `json:"model"`
	Optimizer     OptimizerSpec  `json:"optimizer"`
	Epochs        int            `json:"epochs"`
	BatchSize     int            `json:"batch_size"`
	Seed          int64          `json:"seed"`
	EarlyStopping *EarlyStopping `json:"early_stopping,omitempty"`
	// FreezeLayers: with a base model, the first N weight layers (dense or
	// conv2d, counted from the input) keep the base's weights.
	FreezeLayers int `json:"freeze_layers,omitempty"`
	// Average says which weights the model keeps: "ema" (the default), an
	// exponential moving average of the weights over the steps (decay 0.999
	// with a warm-up), or "none", the last step's weights. Evaluation, early
	// stopping and the artifact all use the kept weights.
	Average string `json:"average,omitempty"`
}

// ModelSpec chooses the network.
type ModelSpec struct {
	Kind string `json:"kind"` // linear | mlp | cnn
	// Hidden are the dense hidden widths (mlp; cnn: after the conv stack).
	// nil means [128]; an empty, non-nil slice means none.
	Hidden     []int   `json:"hidden"`
	Activation string  `json:"activation"` // relu | tanh | sigmoid; default relu
	Dropout    float64 `json:"dropout"`    // after each hidden dense layer, 0 <= p < 1
	// Filters are the cnn's conv2d output channels, one 3x3 conv + ReLU + 2x2
	// max-pool block each; default [8, 16].
	Filters []int `json:"filters,omitempty"`
}

// OptimizerSpec chooses the update rule.
type OptimizerSpec struct {
	Name         string  `json:"name"` // adam | sgd | rmsprop
	LearningRate float64 `json:"learning_rate"`
	Momentum     float64 `json:"momentum"`     // sgd momentum; rmsprop momentum
	WeightDecay  float64 `json:"weight_decay"` // L2 penalty added to the gradient
}

// EarlyStopping stops when Metric has not improved for Patience epochs, and
// keeps the best epoch's weights.
type EarlyStopping struct {
	Metric   string `json:"metric"` // val_loss | val_accuracy
	Patience int    `json:"patience"`
}

// Shape is what Check needs to know of the data: it can be known at plan
// time from the dataset's schema, before any row is read.
type Shape struct {
	Features   int
	ImageShape []int    // [C,H,W] when rows are images; required by cnn
	Classes    []string // distinct label values (classification)
	TrainRows  int      // 0 when unknown at plan time
	ValRows    int      // 0 when unknown, or no validation split
}

// ErrInvalid is wrapped by every Check error.
var ErrInvalid = errors.New("invalid training")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// withDefaults fills what a configuration may leave out.
func (s Spec) withDefaults() Spec {
	if s.Model.Kind == "" {
		s.Model.Kind = "mlp"
	}
	if s.Model.Activation == "" {
		s.Model.Activation = artifact.ActReLU
	}
	if s.Model.Hidden == nil && (s.Model.Kind == "mlp" || s.Model.Kind == "cnn") {
		s.Model.Hidden = []int{128}
	}
	if s.Model.Kind == "cnn" && len(s.Model.Filters) == 0 {
		s.Model.Filters = []int{8, 16}
	}
	if s.Optimizer.Name == "" {
		s.Optimizer.Name = "adam"
	}
	if s.Optimizer.LearningRate == 0 {
		switch s.Optimizer.Name {
		case "sgd":
			s.Optimizer.LearningRate = 0.01
		default:
			s.Optimizer.LearningRate = 0.001
		}
	}
	if s.Objective == "" {
		s.Objective = "classification"
	}
	if s.Average == "" {
		s.Average = "ema"
	}
	return s
}

// Check validates a spec against the data's shape and an optional base model
// before any work starts. It returns every problem found, joined.
func Check(spec Spec, data Shape, base *artifact.Model) error {
	s := spec.withDefaults()
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, invalid(format, a...)) }

	switch s.Objective {
	case "classification":
		switch len(data.Classes) {
		case 0:
			add("classification needs a label column, and the dataset has no classes")
		case 1:
			add("the label column has a single class %q: classification needs at least two", data.Classes[0])
		}
	case "regression":
	case "q_learning":
		add("objective q_learning is trained by the reinforcement-learning runtime, not by supervised training")
	default:
		add("unknown objective %q (classification, regression)", s.Objective)
	}
	if s.Epochs < 1 {
		add("epochs is %d: it must be at least 1", s.Epochs)
	}
	if s.BatchSize < 1 {
		add("batch_size is %d: it must be at least 1", s.BatchSize)
	}
	if data.Features < 1 {
		add("the dataset has no feature columns")
	}
	switch s.Model.Kind {
	case "linear", "mlp":
	case "cnn":
		if len(data.ImageShape) != 3 {
			add("model kind cnn needs image rows (a dataset with an image shape such as mnist's [1,28,28]); this dataset has %d plain features", data.Features)
		} else if n := data.ImageShape[0] * data.ImageShape[1] * data.ImageShape[2]; n != data.Features {
			add("image shape %v has %d pixels but the dataset has %d features", data.ImageShape, n, data.Features)
		} else {
			h, w := data.ImageShape[1], data.ImageShape[2]
			for range s.Model.Filters {
				h, w = h/2, w/2
			}
			if h < 1 || w < 1 {
				add("%d conv blocks halve %v below one pixel", len(s.Model.Filters), data.ImageShape)
			}
		}
		for _, f := range s.Model.Filters {
			if f < 1 {
				add("model filters %v: every count must be at least 1", s.Model.Filters)
				break
			}
		}
	default:
		add("unknown model kind %q (linear, mlp, cnn)", s.Model.Kind)
	}
	if s.Model.Kind == "linear" && len(s.Model.Hidden) > 0 {
		add("model kind linear has no hidden layers (hidden = %v); use kind mlp", s.Model.Hidden)
	}
	for _, h := range s.Model.Hidden {
		if h < 1 {
			add("model hidden %v: every width must be at least 1", s.Model.Hidden)
			break
		}
	}
	switch s.Model.Activation {
	case artifact.ActReLU, artifact.ActTanh, artifact.ActSigmoid:
	default:
		add("unknown activation %q (relu, tanh, sigmoid)", s.Model.Activation)
	}
	if s.Model.Dropout < 0 || s.Model.Dropout >= 1 {
		add("dropout %g: it must be in [0, 1)", s.Model.Dropout)
	}
	switch s.Optimizer.Name {
	case "adam", "sgd", "rmsprop":
	default:
		add("unknown optimizer %q (adam, sgd, rmsprop)", s.Optimizer.Name)
	}
	if s.Optimizer.LearningRate <= 0 {
		add("learning_rate %g: it must be positive", s.Optimizer.LearningRate)
	}
	if s.Optimizer.Momentum < 0 || s.Optimizer.Momentum >= 1 {
		add("momentum %g: it must be in [0, 1)", s.Optimizer.Momentum)
	}
	if s.Optimizer.WeightDecay < 0 {
		add("weight_decay %g: it must not be negative", s.Optimizer.WeightDecay)
	}
	if es := s.EarlyStopping; es != nil {
		if es.Metric != "val_loss" && es.Metric != "val_accuracy" {
			add("early_stopping metric %q (val_loss, val_accuracy)", es.Metric)
		}
		if es.Metric == "val_accuracy" && s.Objective == "regression" {
			add("early_stopping on val_accuracy needs objective classification")
		}
		if es.Patience < 1 {
			add("early_stopping patience %d: it must be at least 1", es.Patience)
		}
	}
	if s.Average != "ema" && s.Average != "none" {
		add("unknown average %q (ema, none)", s.Average)
	}
	if s.FreezeLayers < 0 {
		add("freeze_layers %d: it must not be negative", s.FreezeLayers)
	}
	if s.FreezeLayers > 0 && base == nil {
		add("freeze_layers = %d needs a base_model to take the frozen weights from", s.FreezeLayers)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	arch, err := buildArchitecture(s, data)
	if err != nil {
		return invalid("%v", err)
	}
	if base != nil {
		if err := checkBase(s, arch, data, base); err != nil {
			return err
		}
	} else if s.FreezeLayers > 0 {
		return invalid("freeze_layers without a base model")
	}
	return nil
}

// checkBase says whether the base model's layers fit the network the spec
// builds: every layer but the output one must match exactly; the output layer
// is reused when its classes match, else it is a new head.
func checkBase(s Spec, arch *artifact.Architecture, data Shape, base *artifact.Model) error {
	ref := base.Digest()
	if ref == "" {
		ref = "base model"
	}
	if base.Kind != artifact.KindSupervised || base.Architecture == nil {
		return invalid("%s is a %s model, not a network to fine-tune", ref, base.Kind)
	}
	ba := base.Architecture
	if ba.Objective != s.Objective {
		return invalid("%s was trained for %s, this run is %s", ref, ba.Objective, s.Objective)
	}
	if base.InputSize() != data.Features {
		return invalid("%s takes %d input features (shape %v), the dataset has %d", ref, base.InputSize(), ba.InputShape, data.Features)
	}
	if len(ba.Layers) != len(arch.Layers) {
		return invalid("%s has %d layers (%s), this model has %d (%s)", ref, len(ba.Layers), layerList(ba.Layers), len(arch.Layers), layerList(arch.Layers))
	}
	for i := range arch.Layers {
		a, b := arch.Layers[i], ba.Layers[i]
		last := i == len(arch.Layers)-1
		if last && a.Type == artifact.LayerDense && b.Type == artifact.LayerDense && a.In == b.In {
			continue // the head may be replaced
		}
		if a.Type != b.Type || a.In != b.In || a.Out != b.Out || a.Kernel != b.Kernel || a.Pad != b.Pad || a.Size != b.Size || a.Activation != b.Activation {
			return invalid("%s layer %d is %s, this model's is %s: a base model must have the same shape", ref, i, layerList(ba.Layers[i:i+1]), layerList(arch.Layers[i:i+1]))
		}
	}
	nw := 0
	for _, l := range arch.Layers {
		if l.HasWeights() {
			nw++
		}
	}
	if s.FreezeLayers >= nw {
		return invalid("freeze_layers = %d freezes every one of the %d weight layers: nothing would train", s.FreezeLayers, nw)
	}
	return nil
}

func layerList(ls []artifact.Layer) string {
	var parts []string
	for _, l := range ls {
		switch l.Type {
		case artifact.LayerDense:
			parts = append(parts, fmt.Sprintf("dense %d->%d %s", l.In, l.Out, l.Activation))
		case artifact.LayerConv2D:
			parts = append(parts, fmt.Sprintf("conv2d %d->%d k%d %s", l.In, l.Out, l.Kernel, l.Activation))
		default:
			parts = append(parts, l.Type)
		}
	}
	return strings.TrimSpace(strings.Join(parts, ", "))
}

// buildArchitecture turns a spec into layers.
func buildArchitecture(s Spec, d Shape) (*artifact.Architecture, error) {
	out := 1
	if s.Objective == "classification" {
		out = len(d.Classes)
	}
	a := &artifact.Architecture{Objective: s.Objective, ModelKind: s.Model.Kind}
	width := d.Features
	switch s.Model.Kind {
	case "cnn":
		a.InputShape = slices.Clone(d.ImageShape)
		c, h, w := d.ImageShape[0], d.ImageShape[1], d.ImageShape[2]
		for _, f := range s.Model.Filters {
			a.Layers = append(a.Layers,
				artifact.Layer{Type: artifact.LayerConv2D, In: c, Out: f, Kernel: 3, Pad: 1, Activation: artifact.ActReLU},
				artifact.Layer{Type: artifact.LayerMaxPool, Size: 2})
			c, h, w = f, h/2, w/2
		}
		a.Layers = append(a.Layers, artifact.Layer{Type: artifact.LayerFlatten})
		width = c * h * w
	default:
		a.InputShape = []int{d.Features}
	}
	if s.Model.Kind != "linear" {
		for _, h := range s.Model.Hidden {
			a.Layers = append(a.Layers, artifact.Layer{Type: artifact.LayerDense, In: width, Out: h, Activation: s.Model.Activation, Dropout: s.Model.Dropout})
			width = h
		}
	}
	a.Layers = append(a.Layers, artifact.Layer{Type: artifact.LayerDense, In: width, Out: out})
	return a, nil
}

// fingerprint identifies a spec for checkpoint matching.
func (s Spec) fingerprint() []byte {
	b, _ := json.Marshal(s.withDefaults())
	return b
}
