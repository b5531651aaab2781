package dataset

import (
	"slices"
	"testing"
)

func TestHistograms(t *testing.T) {
	d := &Dataset{
		Columns: []string{"a", "const"},
		Train:   Matrix{X: []float32{0, 5, 1, 5, 2, 5, 3, 5}, N: 4, D: 2},
		Test:    Matrix{X: []float32{4, 5}, N: 1, D: 2},
	}
	hs := d.Histograms(4)
	if len(hs) != 2 {
		t.Fatalf("%d histograms, want 2", len(hs))
	}
	a := hs[0]
	if a.Column != "a" || a.Min != 0 || a.Max != 4 || !slices.Equal(a.Counts, []int{1, 1, 1, 2}) {
		t.Errorf("column a: %+v", a)
	}
	c := hs[1]
	if c.Column != "const" || c.Min != 5 || c.Max != 5 || !slices.Equal(c.Counts, []int{5}) {
		t.Errorf("constant column: %+v", c)
	}
	if got := (&Dataset{}).Histograms(4); got != nil {
		t.Errorf("an empty dataset has histograms %+v", got)
	}
}
