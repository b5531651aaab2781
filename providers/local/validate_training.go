package local

import (
	"context"
	"fmt"
	"slices"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/data"
	"github.com/leptonml/lepton/runtime/train"
	"github.com/zclconf/go-cty/cty"
)

// planShape is what a plan can tell of the rows a dataset not yet loaded
// will give a training: their width, exactly when every feature column is
// numeric (a text column is encoded into as many columns as it has values),
// and their image shape.
type planShape struct {
	shape  train.Shape
	exact  bool // shape.Features is the width the rows will have
	header data.Header
	spec   data.Spec
}

// shapeFromSource reads the header of the dataset whose planned value is
// ds; ok is false when its columns cannot be known before it is read.
func shapeFromSource(ctx context.Context, ds cty.Value, env providers.Env) (planShape, bool) {
	if !ds.IsWhollyKnown() && !attr(ds, "source").IsWhollyKnown() {
		return planShape{}, false
	}
	spec, err := SpecFromValue(ds, env.Dir)
	if err != nil {
		return planShape{}, false
	}
	h, err := data.Columns(ctx, spec)
	if err != nil || !h.Known {
		// The dataset's own plan reports a source it cannot read.
		return planShape{}, false
	}
	feats := spec.FeatureColumns(h)
	ps := planShape{header: h, spec: spec, shape: train.Shape{Features: len(feats), Classes: h.Classes}}
	ps.exact = spec.Source.Builtin != "" || len(h.ImageShape) == 3
	if !ps.exact && h.Sampled {
		ps.exact = true
		for _, f := range feats {
			if slices.Contains(h.Text, f) {
				ps.exact = false
				break
			}
		}
	}
	if n := pixels(h.ImageShape); len(h.ImageShape) == 3 && n == len(feats) {
		ps.shape.ImageShape = h.ImageShape
	}
	return ps, true
}

func pixels(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func weightLayers(m *artifact.Model) int {
	n := 0
	if m.Architecture != nil {
		for _, l := range m.Architecture.Layers {
			if l.HasWeights() {
				n++
			}
		}
	}
	return n
}

// checkTrainingInput says, before anything is applied, whether the model can
// take the rows of a dataset that is not loaded yet: a cnn needs image rows,
// a base model's input width must be the rows' width, freeze_layers must
// leave a layer of the base model to train.
func checkTrainingInput(ts trainingSpec, ps planShape, base *artifact.Model) error {
	s := ts.sup
	if s.Model.Kind == "cnn" && len(ps.shape.ImageShape) != 3 {
		return providers.ArgErrorf("model.kind", "model kind \"cnn\" needs image rows (builtin mnist, or IDX image files), but %s gives %d plain feature columns %s", ts.dataset, ps.shape.Features, data.ElideColumns(ps.spec.FeatureColumns(ps.header)))
	}
	if base == nil {
		return nil
	}
	if nw := weightLayers(base); s.FreezeLayers >= nw && nw > 0 {
		return providers.ArgErrorf("freeze_layers", "freeze_layers = %d, but the base model has %d layers with weights: at most %d can be frozen, leaving one to train", s.FreezeLayers, nw, nw-1)
	}
	if ps.exact && base.InputSize() != ps.shape.Features {
		return providers.ArgErrorf("base_model", "the base model takes %d input features (trained on %s), but %s gives %d %s", base.InputSize(), data.ElideColumns(base.Features), ts.dataset, ps.shape.Features, data.ElideColumns(ps.spec.FeatureColumns(ps.header)))
	}
	if !ps.exact {
		return nil
	}
	// The width is known: the whole check runs as it will at apply, with
	// two stand-in classes when the label's values are not known yet.
	sh := ps.shape
	if ts.objective == "classification" && len(sh.Classes) == 0 {
		sh.Classes = []string{"?0", "?1"}
	}
	if err := train.Check(s, sh, base); err != nil {
		return fmt.Errorf("%s: %w", ts.dataset, err)
	}
	return nil
}

// pixelWarning: image pixels kept as raw 0..255 values train a network far
// worse than scaled ones (the quickstart's mnist MLP: 0.936 test accuracy
// instead of 0.979), and nothing else would say why.
func pixelWarning(ts trainingSpec, ps planShape) error {
	if len(ps.shape.ImageShape) != 3 || ps.spec.Preprocess.Normalize != "" && ps.spec.Preprocess.Normalize != "none" {
		return nil
	}
	return providers.ArgErrorf("dataset", "%s's image pixels are not normalised: they reach the model as raw values (0 to 255 for mnist), which trains it much worse (the quickstart's mnist MLP reaches 0.936 test accuracy instead of 0.979). Add preprocess { normalize = \"minmax\" } to %s.", ts.dataset, ts.dataset)
}
