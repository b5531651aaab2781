// Package prep holds the numeric building blocks of preprocessing that other
// packages need too: the normalisation transform stored with a dataset and
// its models, and column statistics.
package prep

import (
	"encoding/json"
	"fmt"
)

// Transform is the normalisation computed on the training split. Its JSON is
// the shape runtime/artifact's Normalization reads (method, features, mean/std
// or min/max), one entry per feature column after encoding; columns that are
// not normalised (one-hot, bool, flags) carry the identity (mean 0, std 1 or
// min 0, max 1). Categories records the encoding, for people and for serving
// code that wants to encode raw categorical input:
//
//	{"method":"zscore","features":["a","color=red"],"mean":[1.5,0],"std":[2,1],
//	 "categories":{"color":["blue","red"]},"encode":"onehot"}
//
// A zero spread is stored as 1 so that constant columns map to 0, not NaN.
type Transform struct {
	Method     string              `json:"method"`
	Features   []string            `json:"features"`
	Mean       []float64           `json:"mean,omitempty"`
	Std        []float64           `json:"std,omitempty"`
	Min        []float64           `json:"min,omitempty"`
	Max        []float64           `json:"max,omitempty"`
	Encode     string              `json:"encode,omitempty"`
	Categories map[string][]string `json:"categories,omitempty"`
}

// Affine returns x' = x*scale + shift per feature, or nil for the identity.
func (t *Transform) Affine() (scale, shift []float32, err error) {
	d := len(t.Features)
	var a, b []float64
	switch t.Method {
	case "", "none":
		return nil, nil, nil
	case "zscore":
		a, b = t.Mean, t.Std
	case "minmax":
		a = t.Min
		b = make([]float64, len(t.Max))
		for i := range b {
			if i < len(t.Min) {
				b[i] = t.Max[i] - t.Min[i]
			}
		}
	default:
		return nil, nil, fmt.Errorf("transform: unknown method %q", t.Method)
	}
	if len(a) != d || len(b) != d {
		return nil, nil, fmt.Errorf("transform %s: %d features but %d/%d parameters", t.Method, d, len(a), len(b))
	}
	scale, shift = make([]float32, d), make([]float32, d)
	for i := range d {
		s := b[i]
		if s == 0 {
			s = 1
		}
		scale[i] = float32(1 / s)
		shift[i] = float32(-a[i] / s)
	}
	return scale, shift, nil
}

// Apply normalises n rows of row-major x in place.
func (t *Transform) Apply(x []float32, n int) error {
	d := len(t.Features)
	if len(x) != n*d {
		return fmt.Errorf("transform: %d values for %d rows of %d features", len(x), n, d)
	}
	scale, shift, err := t.Affine()
	if err != nil || scale == nil {
		return err
	}
	for r := 0; r < n; r++ {
		row := x[r*d : (r+1)*d]
		for i, v := range row {
			row[i] = v*scale[i] + shift[i]
		}
	}
	return nil
}

// JSON encodes the transform for Dataset.Transform.
func (t *Transform) JSON() json.RawMessage {
	b, err := json.Marshal(t)
	if err != nil {
		panic(err) // only numbers, strings and maps of them
	}
	return b
}

// ParseTransform reads a Transform back from its JSON.
func ParseTransform(raw json.RawMessage) (*Transform, error) {
	var t Transform
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("transform: %w", err)
	}
	if _, _, err := t.Affine(); err != nil {
		return nil, err
	}
	return &t, nil
}
