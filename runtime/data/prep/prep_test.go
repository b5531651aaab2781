package prep

import (
	"math"
	"testing"

	"github.com/leptonml/lepton/runtime/artifact"
)

func TestTransformApply(t *testing.T) {
	for _, tc := range []struct {
		name string
		tr   Transform
		in   []float32
		want []float32
	}{
		{"zscore", Transform{Method: "zscore", Features: []string{"a", "b"}, Mean: []float64{1, 10}, Std: []float64{2, 0}}, []float32{3, 10, -1, 12}, []float32{1, 0, -1, 2}},
		{"minmax", Transform{Method: "minmax", Features: []string{"a", "b"}, Min: []float64{0, 5}, Max: []float64{10, 5}}, []float32{5, 5, 10, 6}, []float32{0.5, 0, 1, 1}},
		{"none", Transform{Method: "none", Features: []string{"a"}}, []float32{7}, []float32{7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := append([]float32(nil), tc.in...)
			if err := tc.tr.Apply(x, len(x)/len(tc.tr.Features)); err != nil {
				t.Fatal(err)
			}
			for i := range x {
				if math.Abs(float64(x[i]-tc.want[i])) > 1e-6 {
					t.Fatalf("got %v want %v", x, tc.want)
				}
			}
			// The artifact reads the same JSON and must transform identically:
			// serving normalises exactly as the dataset did.
			n, err := artifact.ParseNormalization(tc.tr.JSON())
			if err != nil {
				t.Fatal(err)
			}
			y := append([]float32(nil), tc.in...)
			if err := n.Apply(y, len(tc.tr.Features)); err != nil {
				t.Fatal(err)
			}
			for i := range y {
				if math.Abs(float64(y[i]-x[i])) > 1e-6 {
					t.Fatalf("artifact gives %v, prep gives %v", y, x)
				}
			}
			back, err := ParseTransform(tc.tr.JSON())
			if err != nil || back.Method != tc.tr.Method || len(back.Features) != len(tc.tr.Features) {
				t.Fatalf("round trip: %+v %v", back, err)
			}
		})
	}
	bad := Transform{Method: "zscore", Features: []string{"a", "b"}, Mean: []float64{1}, Std: []float64{1}}
	if err := bad.Apply(make([]float32, 2), 1); err == nil {
		t.Fatal("mismatched parameters accepted")
	}
	if _, err := ParseTransform([]byte(`{"method":"log","features":["a"]}`)); err == nil {
		t.Fatal("unknown method accepted")
	}
	ok := Transform{Method: "none", Features: []string{"a", "b"}}
	if err := ok.Apply(make([]float32, 3), 2); err == nil {
		t.Fatal("wrong length accepted")
	}
}

func TestStats(t *testing.T) {
	nan := float32(math.NaN())
	s := ChunkStats([][]float32{{1, 2, nan}, {3, 4}})
	if s.N != 4 || s.Mean != 2.5 || math.Abs(s.Std-math.Sqrt(1.25)) > 1e-12 || s.Min != 1 || s.Max != 4 {
		t.Fatalf("%+v", s)
	}
	if s := ChunkStats([][]float32{{nan}}); s.N != 0 {
		t.Fatalf("%+v", s)
	}
	var m Moments
	for _, v := range []float64{1, 2, 3, 4} {
		m.Add(v)
	}
	if m.Mean() != 2.5 || math.Abs(m.Std()-math.Sqrt(1.25)) > 1e-12 || m.Min != 1 || m.Max != 4 {
		t.Fatalf("moments %+v", m)
	}
	q := Quantiles([]float32{4, 1, 3, 2, 5}, 0.25, 0.5, 0.75)
	if q[0] != 2 || q[1] != 3 || q[2] != 4 {
		t.Fatalf("quantiles %v", q)
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Fatal("quantile of nothing")
	}
}
