package dataset

import "math"

// Histogram is the distribution of one feature column as training sees it
// (after preprocessing), over every split.
type Histogram struct {
	Column string  `json:"column"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// Counts[i] counts values in [Min + i*w, Min + (i+1)*w), w = (Max-Min)/len(Counts);
	// the last bin includes Max.
	Counts []int `json:"counts"`
}

// Histograms bins every feature column into bins equal-width bins, in two
// passes over the rows (range, then counts).
func (d *Dataset) Histograms(bins int) []Histogram {
	if bins < 1 {
		bins = 1
	}
	splits := []*Matrix{&d.Train, &d.Validation, &d.Test}
	width := len(d.Columns)
	for _, m := range splits {
		if m.N > 0 && m.D > 0 {
			width = m.D
			break
		}
	}
	if width == 0 {
		return nil
	}
	lo, hi := make([]float64, width), make([]float64, width)
	for j := range lo {
		lo[j], hi[j] = math.Inf(1), math.Inf(-1)
	}
	for _, m := range splits {
		if m.D != width {
			continue
		}
		for i := 0; i < m.N; i++ {
			for j, v := range m.X[i*width : (i+1)*width] {
				f := float64(v)
				if math.IsNaN(f) {
					continue
				}
				lo[j], hi[j] = math.Min(lo[j], f), math.Max(hi[j], f)
			}
		}
	}
	out := make([]Histogram, width)
	for j := range out {
		name := ""
		if j < len(d.Columns) {
			name = d.Columns[j]
		}
		n := bins
		if !(hi[j] > lo[j]) {
			n = 1 // a constant column (or none seen): one bin
		}
		if math.IsInf(lo[j], 1) {
			lo[j], hi[j] = 0, 0
		}
		out[j] = Histogram{Column: name, Min: lo[j], Max: hi[j], Counts: make([]int, n)}
	}
	for _, m := range splits {
		if m.D != width {
			continue
		}
		for i := 0; i < m.N; i++ {
			for j, v := range m.X[i*width : (i+1)*width] {
				f := float64(v)
				if math.IsNaN(f) {
					continue
				}
				h := &out[j]
				k := 0
				if len(h.Counts) > 1 {
					k = int((f - h.Min) / (h.Max - h.Min) * float64(len(h.Counts)))
					k = min(max(k, 0), len(h.Counts)-1)
				}
				h.Counts[k]++
			}
		}
	}
	return out
}
