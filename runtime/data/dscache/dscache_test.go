package dscache

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/leptonml/lepton/runtime/data/dataset"
)

func sample() *dataset.Dataset {
	return &dataset.Dataset{
		Digest: "sha256:abc", Source: "file data.csv", Label: "y", Columns: []string{"a", "b"},
		Schema: map[string]string{"a": "number", "b": "number", "y": "string"}, Rows: 3, DroppedRows: 1,
		Classes: []string{"no", "yes"}, Stats: map[string]dataset.ColumnStats{"a": {Type: "number", Count: 3, Mean: 1.5}},
		Steps:     []dataset.StepReport{{Step: "read", RowsIn: 4, RowsOut: 3, Dropped: 1, DroppedBy: map[string]int{"a": 1}}},
		Transform: json.RawMessage(`{"normalize":"standard"}`), ImageShape: []int{1, 1, 2},
		Train:      dataset.Matrix{X: []float32{1, 2, 3, 4}, Y: []float32{0, 1}, Target: []float32{5, 6}, N: 2, D: 2},
		Validation: dataset.Matrix{X: []float32{-1.5, 7}, Y: []float32{1}, N: 1, D: 2},
	}
}

func TestRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := Encode(&b, sample()); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if want := sample(); !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestBad(t *testing.T) {
	var b bytes.Buffer
	if err := Encode(&b, sample()); err != nil {
		t.Fatal(err)
	}
	whole := b.Bytes()
	hugeShape := strings.Replace(string(whole), `"Shapes":[[2,2,2,2]`, `"Shapes":[[9999999999,2,2,2]`, 1)
	for name, in := range map[string][]byte{
		"empty":       nil,
		"magic":       []byte("LEPDSET2" + string(whole[8:])),
		"truncated":   whole[:len(whole)-3],
		"header":      whole[:20],
		"huge shape":  []byte(hugeShape),
		"negative":    []byte(strings.Replace(string(whole), `"Shapes":[[2,2,2,2]`, `"Shapes":[[-2,2,2,2]`, 1)),
		"header json": append(append([]byte(Magic), 2, 0, 0, 0, 0, 0, 0, 0), '{', '['),
	} {
		if _, err := Decode(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "dataset cache") {
			t.Errorf("%s: %v, want an error naming the dataset cache", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	var b bytes.Buffer
	Encode(&b, sample())
	f.Add(b.Bytes())
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, in []byte) {
		ds, err := Decode(bytes.NewReader(in))
		if err != nil {
			return
		}
		var again bytes.Buffer
		if err := Encode(&again, ds); err != nil {
			t.Fatal(err)
		}
	})
}
