package chart

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/leptonml/lepton/providers/local"
	"github.com/leptonml/lepton/runtime/rl"
	"github.com/leptonml/lepton/runtime/train"
)

// near reports whether the pixel at (x, y), or one next to it, has the colour.
func near(img image.Image, x, y int, want color.Color) bool {
	wr, wg, wb, _ := want.RGBA()
	for dx := -1; dx <= 1; dx++ {
		for dy := -1; dy <= 1; dy++ {
			r, g, b, _ := img.At(x+dx, y+dy).RGBA()
			d := func(a, b uint32) int { return int(a>>8) - int(b>>8) }
			if abs(d(r, wr))+abs(d(g, wg))+abs(d(b, wb)) < 40 {
				return true
			}
		}
	}
	return false
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestCurvesShowEachEpoch decodes the PNG and finds each epoch's point of
// each series where the plot's own transforms put it.
func TestCurvesShowEachEpoch(t *testing.T) {
	rm := &local.RunMetrics{Objective: "classification", Planned: 6}
	losses := []float64{1.2, 0.9, 0.7, 0.55, 0.5, 0.42}
	for i, l := range losses {
		rm.Epochs = append(rm.Epochs, train.EpochMetrics{Epoch: i + 1, TrainLoss: l, ValLoss: l + 0.1, ValAccuracy: 0.5 + 0.07*float64(i)})
	}
	var buf bytes.Buffer
	if err := Curves(&buf, "training.x", rm); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("the curves are not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != int(width.Points()*dpi/72+0.5) || b.Dy() != int(2*height.Points()*dpi/72+0.5) {
		t.Errorf("image is %dx%d", b.Dx(), b.Dy())
	}
	panels, err := curvePanels("training.x", rm)
	if err != nil {
		t.Fatal(err)
	}
	_, tiles := drawPanels(panels)
	check := func(panel int, name string, col color.Color, ys func(train.EpochMetrics) float64) {
		da := panels[panel].DataCanvas(tiles[panel])
		tx, ty := panels[panel].Transforms(&da)
		for _, e := range rm.Epochs {
			x := int(tx(float64(e.Epoch)).Points() * dpi / 72)
			y := b.Dy() - int(ty(ys(e)).Points()*dpi/72)
			if !near(img, x, y, col) {
				t.Errorf("%s: no point for epoch %d at (%d, %d)", name, e.Epoch, x, y)
			}
		}
	}
	check(0, "train_loss", colors[0], func(e train.EpochMetrics) float64 { return e.TrainLoss })
	check(0, "val_loss", colors[1], func(e train.EpochMetrics) float64 { return e.ValLoss })
	check(1, "val_accuracy", colors[0], func(e train.EpochMetrics) float64 { return e.ValAccuracy })
}

func TestCurvesQLearningAndErrors(t *testing.T) {
	rm := &local.RunMetrics{Objective: "q_learning", Episodes: []rl.Progress{{Episode: 100, MeanReturn: 0.1, Epsilon: 0.9}, {Episode: 200, MeanReturn: 0.4, Epsilon: 0.5}}}
	var buf bytes.Buffer
	if err := Curves(&buf, "training.q", rm); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatal(err)
	}
	if err := Curves(&buf, "training.none", &local.RunMetrics{}); err != ErrNoHistory {
		t.Errorf("no history: %v", err)
	}
	if err := Confusion(&buf, "x", nil, nil); err == nil {
		t.Error("an empty confusion matrix drew")
	}
	if err := Confusion(&buf, "x", [][]int{{1, 2}, {3}}, nil); err == nil {
		t.Error("a ragged confusion matrix drew")
	}
}

func TestConfusion(t *testing.T) {
	var buf bytes.Buffer
	m := [][]int{{10, 0, 0}, {0, 5, 5}, {1, 0, 9}}
	if err := Confusion(&buf, "training.x", m, []string{"setosa", "versicolor", "virginica"}); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("the confusion matrix is not a PNG: %v", err)
	}
	// The darkest cells (the largest counts) are there.
	dark := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			if near(img, x, y, blues(64).Colors()[63]) {
				dark++
			}
		}
	}
	if dark < 100 {
		t.Errorf("found %d dark pixels: the heat map is missing", dark)
	}
}
