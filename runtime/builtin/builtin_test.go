package builtin

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	cases := []struct {
		name       string
		rows       int
		trainRows  int
		features   int
		classes    []string
		firstLabel string
		shape      []int
		license    string
	}{
		{"mnist", 70000, 60000, 784, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, "5", []int{1, 28, 28}, "CC BY-SA 3.0"},
		{"iris", 150, 0, 4, []string{"setosa", "versicolor", "virginica"}, "setosa", nil, "CC BY 4.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb, err := Load(c.name)
			if err != nil {
				t.Fatal(err)
			}
			if tb.Rows != c.rows || len(tb.Labels) != c.rows || len(tb.X) != c.rows*c.features || len(tb.Features) != c.features {
				t.Fatalf("rows %d labels %d X %d features %d", tb.Rows, len(tb.Labels), len(tb.X), len(tb.Features))
			}
			if tb.TrainRows != c.trainRows {
				t.Errorf("TrainRows = %d, want %d", tb.TrainRows, c.trainRows)
			}
			if got := tb.Classes(); !slices.Equal(got, c.classes) {
				t.Errorf("classes %v, want %v", got, c.classes)
			}
			if tb.Labels[0] != c.firstLabel {
				t.Errorf("first label %q, want %q", tb.Labels[0], c.firstLabel)
			}
			if !slices.Equal(tb.ImageShape, c.shape) {
				t.Errorf("shape %v, want %v", tb.ImageShape, c.shape)
			}
			if tb.License != c.license || tb.Source == "" {
				t.Errorf("license %q source %q", tb.License, tb.Source)
			}
		})
	}
}

func TestMNISTPixels(t *testing.T) {
	tb, err := Load("mnist")
	if err != nil {
		t.Fatal(err)
	}
	if tb.Features[0] != "pixel0" || tb.Features[783] != "pixel783" {
		t.Fatalf("feature names %q..%q", tb.Features[0], tb.Features[783])
	}
	var max float32
	var sum float64
	for _, v := range tb.Row(0) {
		if v < 0 || v > 255 {
			t.Fatalf("pixel %v out of 0..255", v)
		}
		max = max32(max, v)
		sum += float64(v)
	}
	// The first training image is a "5": raw bytes, so it must reach 255 and cover
	// a fair part of the frame, not be normalised to 0..1.
	if max != 255 || sum < 10000 {
		t.Fatalf("first image max %v sum %v: not raw MNIST bytes", max, sum)
	}
	// Label counts of the standard test split (LeCun's page): 980 zeros, 1135 ones.
	zeros, ones := 0, 0
	for _, l := range tb.Labels[tb.TrainRows:] {
		switch l {
		case "0":
			zeros++
		case "1":
			ones++
		}
	}
	if zeros != 980 || ones != 1135 {
		t.Fatalf("test split has %d zeros and %d ones, want 980 and 1135", zeros, ones)
	}
}

func max32(a, b float32) float32 {
	if a > b {
		return a
	}
	return b
}

func TestIrisValues(t *testing.T) {
	tb, err := Load("iris")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sepal_length", "sepal_width", "petal_length", "petal_width"}; !slices.Equal(tb.Features, want) {
		t.Fatalf("features %v", tb.Features)
	}
	if got := tb.Row(0); !slices.Equal(got, []float32{5.1, 3.5, 1.4, 0.2}) {
		t.Fatalf("row 0 = %v", got)
	}
	if tb.Labels[149] != "virginica" {
		t.Fatalf("last label %q", tb.Labels[149])
	}
}

func TestUnknown(t *testing.T) {
	_, err := Load("cifar")
	if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "cifar") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(Attribution(), "Yann LeCun and Corinna Cortes") {
		t.Fatal("attribution lost")
	}
}

func TestParseIDXErrors(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"short", []byte{0, 0, 8}, "too short"},
		{"magic", []byte{0, 0, 8, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7}, "magic"},
		{"size", []byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 7}, "header says 2 images"},
	}
	for _, c := range cases {
		_, _, _, err := ParseIDXImages(c.b, "x.idx")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "x.idx") {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
	if _, err := ParseIDXLabels([]byte{0, 0, 8, 1, 0, 0, 0, 3, 1}, "l.idx"); err == nil || !strings.Contains(err.Error(), "3 labels") {
		t.Errorf("labels: err = %v", err)
	}
}

func FuzzParseIDX(f *testing.F) {
	f.Add([]byte{0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7})
	f.Add([]byte{0, 0, 8, 1, 0, 0, 0, 1, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		if px, r, c, err := ParseIDXImages(b, "f"); err == nil && len(px)%(r*c) != 0 {
			t.Fatalf("%d bytes for %dx%d images", len(px), r, c)
		}
		_, _ = ParseIDXLabels(b, "f")
	})
}

// TestDescribeMatchesLoad: the plan-time description of each built-in
// dataset is what loading it gives.
func TestDescribeMatchesLoad(t *testing.T) {
	for _, name := range Names() {
		in, err := Describe(name)
		if err != nil {
			t.Fatal(err)
		}
		tab, err := Load(name)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(in.Features) != fmt.Sprint(tab.Features) || fmt.Sprint(in.Classes) != fmt.Sprint(tab.Classes()) || fmt.Sprint(in.ImageShape) != fmt.Sprint(tab.ImageShape) ||
			in.Rows != tab.Rows || in.TrainRows != tab.TrainRows || in.Source != tab.Source || in.License != tab.License {
			t.Errorf("%s: Describe = %v/%v/%v, Load = %d features %v/%v", name, len(in.Features), in.Classes, in.ImageShape, len(tab.Features), tab.Classes(), tab.ImageShape)
		}
	}
	if _, err := Describe("nope"); err == nil {
		t.Error("Describe(nope) succeeded")
	}
}
