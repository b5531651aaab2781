package train

import (
	"reflect"
	"testing"

	"github.com/leptonml/lepton/runtime/data/dataset"
)

func TestFromDataset(t *testing.T) {
	ds := &dataset.Dataset{Columns: []string{"a"}, Classes: []string{"x", "y"}, ImageShape: nil,
		Train:     dataset.Matrix{X: []float32{1, 2}, Y: []float32{0, 1}, Target: []float32{10, 20}, N: 2, D: 1},
		Test:      dataset.Matrix{X: []float32{3}, Y: []float32{1}, N: 1, D: 1},
		Transform: []byte(`{"normalize":"none"}`)}
	for _, tc := range []struct {
		objective string
		want      *Data
	}{
		{"classification", &Data{Features: []string{"a"}, Classes: []string{"x", "y"}, Preprocessing: ds.Transform,
			Train: Split{X: []float32{1, 2}, Labels: []int{0, 1}}, Validation: Split{Labels: []int{}}, Test: Split{X: []float32{3}, Labels: []int{1}}}},
		// Regression trains on Target when the label also has classes, else on Y.
		{"regression", &Data{Features: []string{"a"}, Preprocessing: ds.Transform,
			Train: Split{X: []float32{1, 2}, Targets: []float32{10, 20}}, Test: Split{X: []float32{3}, Targets: []float32{1}}}},
	} {
		if got := FromDataset(ds, tc.objective); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.objective, got, tc.want)
		}
	}
}
