package train

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress reports a run: a bar per epoch on a terminal, else a plain line
// every plainEvery and at each epoch's end (for logs and CI).
type progress struct {
	w       io.Writer
	tty     bool
	epochs  int
	batches int
	size    int
	bar     *progressbar.ProgressBar
	epoch   int
	start   time.Time
	last    time.Time
	first   int
	every   time.Duration // plain mode: minimum time between lines
	redraw  time.Duration // bar mode: minimum time between redraws
}

const plainEvery = 5 * time.Second

func newProgress(w io.Writer, tty bool, epochs, batches, size int) *progress {
	return &progress{w: w, tty: tty, epochs: epochs, batches: batches, size: size, every: plainEvery, redraw: 100 * time.Millisecond}
}

func (p *progress) startEpoch(epoch, fromBatch int) {
	if p.w == nil {
		return
	}
	p.epoch, p.first = epoch, fromBatch
	p.start, p.last = time.Now(), time.Now()
	if p.tty {
		p.bar = progressbar.NewOptions(p.batches*p.size,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", epoch+1, p.epochs)),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("samples"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(p.redraw),
			progressbar.OptionClearOnFinish(),
		)
		_ = p.bar.Set(fromBatch * p.size)
	}
}

func (p *progress) batch(done int, loss float64) {
	if p.w == nil {
		return
	}
	if p.tty {
		p.bar.Describe(fmt.Sprintf("epoch %d/%d batch %d/%d loss %.4f", p.epoch+1, p.epochs, done, p.batches, loss))
		_ = p.bar.Add(p.size)
		return
	}
	now := time.Now()
	if now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	el := now.Sub(p.start).Seconds()
	rate := float64((done-p.first)*p.size) / max(el, 1e-9)
	eta := time.Duration(float64((p.batches-done)*p.size) / rate * float64(time.Second))
	fmt.Fprintf(p.w, "epoch %d/%d batch %d/%d loss %.4f %.0f samples/s eta %s\n",
		p.epoch+1, p.epochs, done, p.batches, loss, rate, eta.Round(time.Second))
}

func (p *progress) endEpoch(line string) {
	if p.w == nil {
		return
	}
	el := time.Since(p.start)
	rate := float64((p.batches-p.first)*p.size) / max(el.Seconds(), 1e-9)
	if p.tty && p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
	fmt.Fprintf(p.w, "%s (%.1fs, %.0f samples/s)\n", line, el.Seconds(), rate)
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Exit()
	}
}
