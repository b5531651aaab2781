package prep

import (
	"math"
	"slices"
)

// Moments accumulates count, mean and variance with Welford's method (stable
// for large counts of float32 data) plus min and max.
type Moments struct {
	N        int
	mean, m2 float64
	Min, Max float64
}

// Add includes one value.
func (m *Moments) Add(x float64) {
	m.N++
	if m.N == 1 {
		m.Min, m.Max = x, x
	} else {
		m.Min = math.Min(m.Min, x)
		m.Max = math.Max(m.Max, x)
	}
	d := x - m.mean
	m.mean += d / float64(m.N)
	m.m2 += d * (x - m.mean)
}

// Mean is 0 for no values.
func (m *Moments) Mean() float64 { return m.mean }

// Std is the population standard deviation (0 for fewer than 2 values).
func (m *Moments) Std() float64 {
	if m.N < 2 {
		return 0
	}
	return math.Sqrt(m.m2 / float64(m.N))
}

// Quantile returns the q-quantile of xs (linear interpolation between closest
// ranks); it sorts xs in place.
func Quantile(xs []float32, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	return quantileSorted(xs, q)
}

func quantileSorted(xs []float32, q float64) float64 {
	pos := q * float64(len(xs)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	if lo == hi {
		return float64(xs[lo])
	}
	f := pos - float64(lo)
	return float64(xs[lo])*(1-f) + float64(xs[hi])*f
}

// Quantiles sorts xs in place and returns the quantiles asked for.
func Quantiles(xs []float32, qs ...float64) []float64 {
	out := make([]float64, len(qs))
	if len(xs) == 0 {
		for i := range out {
			out[i] = math.NaN()
		}
		return out
	}
	slices.Sort(xs)
	for i, q := range qs {
		out[i] = quantileSorted(xs, q)
	}
	return out
}

// Stats are the summary of a set of values.
type Stats struct {
	N                   int
	Mean, Std, Min, Max float64
}

// Sums is ChunkStats' first pass: the count, sum, minimum and maximum of the
// values that are not NaN, accumulated in order. A reader can accumulate it
// while the data passes by, and hand it to ChunkStatsWith.
type Sums struct {
	N      int
	Sum    float64
	Lo, Hi float32
}

// NewSums returns empty sums.
func NewSums() Sums {
	return Sums{Lo: float32(math.Inf(1)), Hi: float32(math.Inf(-1))}
}

// Add includes vs, in order.
func (s *Sums) Add(vs []float32) {
	n, sum, lo, hi := s.N, s.Sum, s.Lo, s.Hi
	for _, v := range vs {
		if v != v {
			continue
		}
		n++
		sum += float64(v)
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	s.N, s.Sum, s.Lo, s.Hi = n, sum, lo, hi
}

// ChunkStats summarises chunked float32 data, skipping NaN (missing). Two
// passes (mean, then squared deviations) keep it accurate without a division
// per value.
func ChunkStats(chunks [][]float32) Stats {
	sums := NewSums()
	for _, ch := range chunks {
		sums.Add(ch)
	}
	return ChunkStatsWith(chunks, sums)
}

// ChunkStatsWith is ChunkStats given its first pass over the same values in
// the same order: the result is the same, bit for bit, with one pass less.
func ChunkStatsWith(chunks [][]float32, sums Sums) Stats {
	s := Stats{N: sums.N}
	if s.N == 0 {
		return s
	}
	s.Mean, s.Min, s.Max = sums.Sum/float64(s.N), float64(sums.Lo), float64(sums.Hi)
	var ss float64
	for _, ch := range chunks {
		for _, v := range ch {
			if v == v {
				d := float64(v) - s.Mean
				ss += d * d
			}
		}
	}
	s.Std = math.Sqrt(ss / float64(s.N))
	return s
}
