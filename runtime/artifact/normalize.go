package artifact

import (
	"encoding/json"
	"fmt"
)

// Normalization is the preprocessing shape that Predict applies to raw
// feature rows before the network. The data pipeline writes it (as JSON, into
// Model.Preprocessing) and serving relies on Predict applying it, so training
// and serving normalise identically. Fields other than these are kept in the
// artifact verbatim and ignored here.
//
//	{"method":"zscore","features":["a","b"],"mean":[..],"std":[..]}   x' = (x-mean)/std
//	{"method":"minmax","features":["a","b"],"min":[..],"max":[..]}    x' = (x-min)/(max-min)
//	{"method":"none"} or {}                                            x' = x
//
// Each of mean/std/min/max has one value per feature, or a single value that
// applies to every feature (MNIST scaled by 255: {"method":"minmax","min":[0],"max":[255]}).
// A zero std or max == min leaves the centred value unscaled, so constant
// columns (MNIST's border pixels) become 0 rather than NaN.
type Normalization struct {
	Method   string    `json:"method,omitempty"`
	Features []string  `json:"features,omitempty"`
	Mean     []float64 `json:"mean,omitempty"`
	Std      []float64 `json:"std,omitempty"`
	Min      []float64 `json:"min,omitempty"`
	Max      []float64 `json:"max,omitempty"`
}

// ParseNormalization reads the Normalization part of a preprocessing document.
func ParseNormalization(raw json.RawMessage) (*Normalization, error) {
	var n Normalization
	if len(raw) == 0 || string(raw) == "null" {
		return &n, nil
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fmt.Errorf("preprocessing parameters: %w", err)
	}
	switch n.Method {
	case "", "none":
	case "zscore":
		if len(n.Mean) == 0 || len(n.Mean) != len(n.Std) {
			return nil, fmt.Errorf("preprocessing zscore: %d means and %d stds", len(n.Mean), len(n.Std))
		}
	case "minmax":
		if len(n.Min) == 0 || len(n.Min) != len(n.Max) {
			return nil, fmt.Errorf("preprocessing minmax: %d minimums and %d maximums", len(n.Min), len(n.Max))
		}
	default:
		return nil, fmt.Errorf("preprocessing: unknown normalisation method %q (zscore, minmax or none)", n.Method)
	}
	return &n, nil
}

// affine turns the normalisation into x' = x*scale + shift per feature, or nil
// for the identity. width is the row width, for checking the parameter count.
func (n *Normalization) affine(width int) (scale, shift []float32, err error) {
	var a, b []float64 // x' = (x - a) / b
	switch n.Method {
	case "zscore":
		a, b = n.Mean, n.Std
	case "minmax":
		a = n.Min
		b = make([]float64, len(n.Max))
		for i := range b {
			b[i] = n.Max[i] - n.Min[i]
		}
	default:
		return nil, nil, nil
	}
	if len(a) != 1 && len(a) != width {
		return nil, nil, fmt.Errorf("preprocessing %s has %d parameters for %d features", n.Method, len(a), width)
	}
	scale, shift = make([]float32, width), make([]float32, width)
	for i := 0; i < width; i++ {
		ai, bi := a[0], b[0]
		if len(a) > 1 {
			ai, bi = a[i], b[i]
		}
		if bi == 0 {
			bi = 1
		}
		scale[i] = float32(1 / bi)
		shift[i] = float32(-ai / bi)
	}
	return scale, shift, nil
}

// Apply normalises rows (row-major, width values each) in place.
func (n *Normalization) Apply(x []float32, width int) error {
	scale, shift, err := n.affine(width)
	if err != nil || scale == nil {
		return err
	}
	applyAffine(x, scale, shift)
	return nil
}

func applyAffine(x, scale, shift []float32) {
	w := len(scale)
	for r := 0; r+w <= len(x); r += w {
		row := x[r : r+w]
		for i, v := range row {
			row[i] = v*scale[i] + shift[i]
		}
	}
}
