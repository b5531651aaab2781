// Package chart draws a training's curves and confusion matrix as PNG images
// with gonum.org/v1/plot, for pull-request comments and reports (`lepton
// show training.NAME -png FILE` and `-confusion FILE`).
package chart

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/leptonml/lepton/providers/local"
)

// Size of the images, in points (at 96 dpi: 1200 x 900 pixels for curves).
const (
	width  = 9 * vg.Inch
	height = 3.4 * vg.Inch // per panel
)

var colors = []color.Color{
	color.RGBA{0x3a, 0x5b, 0xd9, 0xff},
	color.RGBA{0xe0, 0x76, 0x2b, 0xff},
	color.RGBA{0x23, 0x94, 0x5a, 0xff},
}

// ErrNoHistory is returned for a run that recorded no epochs or episodes.
var ErrNoHistory = errors.New("the run recorded no per-epoch metrics (it has not run here, or ran before lepton recorded them): apply it again with -replace to record them")

type series struct {
	name string
	xys  plotter.XYs
}

// Curves draws the run's curves as a PNG: loss per epoch and, for a
// classifier, validation accuracy per epoch below it; for Q-learning, mean
// return and exploration rate per progress report.
func Curves(w io.Writer, title string, rm *local.RunMetrics) error {
	panels, err := curvePanels(title, rm)
	if err != nil {
		return err
	}
	c, _ := drawPanels(panels)
	_, err = (vgimg.PngCanvas{Canvas: c}).WriteTo(w)
	return err
}

// drawPanels draws the panels one above the other and returns the canvas and
// each panel's tile.
func drawPanels(panels []*plot.Plot) (*vgimg.Canvas, []draw.Canvas) {
	c := vgimg.NewWith(vgimg.UseWH(width, height*vg.Length(len(panels))), vgimg.UseDPI(dpi))
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(10), PadY: vg.Points(10)}
	var out []draw.Canvas
	for i, p := range panels {
		t := tiles.At(dc, 0, i)
		p.Draw(t)
		out = append(out, t)
	}
	return c, out
}

const dpi = 96

func curvePanels(title string, rm *local.RunMetrics) ([]*plot.Plot, error) {
	var panels []*plot.Plot
	switch {
	case len(rm.Epochs) > 0:
		// A run has a validation split when any epoch has a validation loss
		// (an accuracy of 0 is recorded as absent).
		hasVal := false
		for _, e := range rm.Epochs {
			hasVal = hasVal || e.ValLoss != 0
		}
		var loss, vloss, acc plotter.XYs
		for _, e := range rm.Epochs {
			x := float64(e.Epoch)
			loss = append(loss, plotter.XY{X: x, Y: e.TrainLoss})
			if hasVal {
				vloss = append(vloss, plotter.XY{X: x, Y: e.ValLoss})
				acc = append(acc, plotter.XY{X: x, Y: e.ValAccuracy})
			}
		}
		p, err := panel(title+": loss per epoch", "epoch", "loss", []series{{"train_loss", loss}, {"val_loss", vloss}})
		if err != nil {
			return nil, err
		}
		panels = append(panels, p)
		if rm.Objective == "classification" && len(acc) > 0 {
			p, err := panel(title+": validation accuracy per epoch", "epoch", "accuracy", []series{{"val_accuracy", acc}})
			if err != nil {
				return nil, err
			}
			panels = append(panels, p)
		}
	case len(rm.Episodes) > 0:
		var ret, eps plotter.XYs
		for _, e := range rm.Episodes {
			ret = append(ret, plotter.XY{X: float64(e.Episode), Y: e.MeanReturn})
			eps = append(eps, plotter.XY{X: float64(e.Episode), Y: e.Epsilon})
		}
		p, err := panel(title+": mean return", "episode", "mean return", []series{{"mean_return", ret}})
		if err != nil {
			return nil, err
		}
		q, err := panel(title+": exploration rate", "episode", "epsilon", []series{{"epsilon", eps}})
		if err != nil {
			return nil, err
		}
		panels = append(panels, p, q)
	default:
		return nil, ErrNoHistory
	}
	return panels, nil
}

func panel(title, xLabel, yLabel string, ss []series) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	for i, s := range ss {
		if len(s.xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return nil, fmt.Errorf("drawing %s: %w", s.name, err)
		}
		l.Color = colors[i%len(colors)]
		l.Width = vg.Points(2)
		pts.Color = l.Color
		pts.Shape = draw.CircleGlyph{}
		pts.Radius = vg.Points(2.5)
		if len(s.xys) > 200 {
			pts.Radius = 0
		}
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	if xLabel == "epoch" {
		p.X.Tick.Marker = integerTicks{}
	}
	return p, nil
}

// integerTicks puts ticks on whole epochs only.
type integerTicks struct{}

func (integerTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	step := math.Max(1, math.Ceil((max-min)/10))
	for v := math.Ceil(min); v <= max; v += step {
		out = append(out, plot.Tick{Value: v, Label: fmt.Sprint(v)})
	}
	return out
}

// Confusion draws the confusion matrix (rows: true class, columns:
// predicted) as a PNG heat map with the counts written in each cell.
func Confusion(w io.Writer, title string, matrix [][]int, labels []string) error {
	n := len(matrix)
	if n == 0 {
		return errors.New("the run recorded no confusion matrix: it needs a classification with a test split")
	}
	for i, row := range matrix {
		if len(row) != n {
			return fmt.Errorf("confusion matrix row %d has %d columns, want %d", i, len(row), n)
		}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprint(i)
		if i < len(labels) {
			names[i] = labels[i]
		}
	}
	p := plot.New()
	p.Title.Text = title + ": confusion matrix on the test split"
	p.X.Label.Text = "predicted"
	p.Y.Label.Text = "true class"
	g := grid(matrix)
	hm := plotter.NewHeatMap(g, blues(64))
	p.Add(hm)
	var cells plotter.XYLabels
	maxV := g.max()
	var dark, light []int
	for r := 0; r < n; r++ {
		for c := 0; c < n; c++ {
			v := matrix[r][c]
			cells.XYs = append(cells.XYs, plotter.XY{X: float64(c), Y: float64(n - 1 - r)})
			cells.Labels = append(cells.Labels, fmt.Sprint(v))
			if float64(v) > maxV/2 {
				dark = append(dark, len(cells.Labels)-1)
			} else {
				light = append(light, len(cells.Labels)-1)
			}
		}
	}
	for _, set := range []struct {
		idx []int
		col color.Color
	}{{light, color.Black}, {dark, color.White}} {
		var part plotter.XYLabels
		for _, i := range set.idx {
			part.XYs = append(part.XYs, cells.XYs[i])
			part.Labels = append(part.Labels, cells.Labels[i])
		}
		if len(part.XYs) == 0 {
			continue
		}
		lb, err := plotter.NewLabels(part)
		if err != nil {
			return err
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i].Color = set.col
			lb.TextStyle[i].XAlign = draw.XCenter
			lb.TextStyle[i].YAlign = draw.YCenter
		}
		p.Add(lb)
	}
	rev := make([]string, n)
	for i := range names {
		rev[n-1-i] = names[i]
	}
	p.NominalX(names...)
	p.NominalY(rev...)
	side := vg.Length(120+40*n) * vg.Points(1)
	side = max(side, 5*vg.Inch)
	c := vgimg.NewWith(vgimg.UseWH(side+vg.Inch, side), vgimg.UseDPI(dpi))
	p.Draw(draw.New(c))
	_, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(w)
	return err
}

// grid adapts a matrix to plotter.GridXYZ: column c is predicted class c,
// row r (from the bottom) is true class n-1-r, so the first class is on top.
type grid [][]int

func (g grid) Dims() (c, r int)   { return len(g), len(g) }
func (g grid) Z(c, r int) float64 { return float64(g[len(g)-1-r][c]) }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }
func (g grid) Min() float64       { return 0 }
func (g grid) max() float64 {
	m := 0
	for _, row := range g {
		for _, v := range row {
			m = max(m, v)
		}
	}
	return float64(max(m, 1))
}
func (g grid) Max() float64 { return g.max() }

// blues is a white-to-blue palette.
type blues int

func (b blues) Colors() []color.Color {
	out := make([]color.Color, b)
	for i := range out {
		t := float64(i) / float64(b-1)
		mix := func(a, z float64) uint8 { return uint8(a + (z-a)*t) }
		out[i] = color.RGBA{mix(247, 33), mix(251, 80), mix(255, 170), 255}
	}
	return out
}
