package train

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/leptonml/lepton/runtime/data/dataset"
)

// Data is a dataset ready for training: rows already preprocessed (the
// network's input), split into train, validation and test.
type Data struct {
	Features   []string
	Classes    []string // classification: label index i means Classes[i]
	ImageShape []int    // [C,H,W] when rows are images, else nil
	Train      Split
	Validation Split // may be empty
	Test       Split // may be empty
	// Preprocessing is stored verbatim in the artifact so that Predict applies
	// to raw rows what was applied to these (see artifact.Normalization).
	Preprocessing json.RawMessage
}

// FromDataset is a processed dataset's rows as a training with objective
// (classification or regression) takes them: class indexes as labels, or
// the numeric label (Target when the label also has classes) as targets.
// The local provider and the node agent both train on what it returns.
func FromDataset(ds *dataset.Dataset, objective string) *Data {
	split := func(m dataset.Matrix) Split {
		s := Split{X: m.X}
		if objective == "classification" {
			s.Labels = make([]int, len(m.Y))
			for i, y := range m.Y {
				s.Labels[i] = int(y)
			}
		} else if m.Target != nil {
			s.Targets = m.Target
		} else {
			s.Targets = m.Y
		}
		return s
	}
	d := &Data{Features: ds.Columns, ImageShape: ds.ImageShape, Train: split(ds.Train), Validation: split(ds.Validation), Test: split(ds.Test), Preprocessing: ds.Transform}
	if objective == "classification" {
		d.Classes = ds.Classes
	}
	return d
}

// Split is a block of rows.
type Split struct {
	X       []float32 // row-major, Rows()*len(Features)
	Labels  []int     // classification: class index per row
	Targets []float32 // regression: target per row
}

// Rows is the number of rows of a split whose rows are width wide.
func (s Split) Rows(width int) int {
	if width == 0 {
		return 0
	}
	return len(s.X) / width
}

// Shape summarises the data for Check: the classes are the ones that really
// occur in the training split.
func (d *Data) Shape() Shape {
	sh := Shape{Features: len(d.Features), ImageShape: d.ImageShape,
		TrainRows: d.Train.Rows(len(d.Features)), ValRows: d.Validation.Rows(len(d.Features))}
	if len(d.Classes) > 0 {
		seen := make([]bool, len(d.Classes))
		for _, l := range d.Train.Labels {
			if l >= 0 && l < len(seen) {
				seen[l] = true
			}
		}
		for i, ok := range seen {
			if ok {
				sh.Classes = append(sh.Classes, d.Classes[i])
			}
		}
	}
	return sh
}

// validate checks the rows themselves (sizes, label ranges, finite values).
func (d *Data) validate(objective string) error {
	w := len(d.Features)
	for _, sp := range []struct {
		name string
		s    Split
	}{{"train", d.Train}, {"validation", d.Validation}, {"test", d.Test}} {
		s := sp.s
		if w == 0 || len(s.X)%w != 0 {
			return invalid("%s split: %d values is not a whole number of %d-feature rows", sp.name, len(s.X), w)
		}
		n := len(s.X) / w
		for i, v := range s.X {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return invalid("%s split row %d feature %s is %v: fill or drop missing values first", sp.name, i/w, d.Features[i%w], v)
			}
		}
		switch objective {
		case "classification":
			if len(s.Labels) != n {
				return invalid("%s split: %d rows but %d labels", sp.name, n, len(s.Labels))
			}
			for i, l := range s.Labels {
				if l < 0 || l >= len(d.Classes) {
					return invalid("%s split row %d: label index %d outside the %d classes", sp.name, i, l, len(d.Classes))
				}
			}
		case "regression":
			if len(s.Targets) != n {
				return invalid("%s split: %d rows but %d targets", sp.name, n, len(s.Targets))
			}
			for i, t := range s.Targets {
				if math.IsNaN(float64(t)) || math.IsInf(float64(t), 0) {
					return invalid("%s split row %d: target is %v", sp.name, i, t)
				}
			}
		}
	}
	if d.Train.Rows(w) == 0 {
		return invalid("the training split is empty")
	}
	return nil
}

func (d *Data) String() string {
	w := len(d.Features)
	return fmt.Sprintf("%d features, %d/%d/%d train/validation/test rows", w, d.Train.Rows(w), d.Validation.Rows(w), d.Test.Rows(w))
}
