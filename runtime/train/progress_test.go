package train

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestProgressPlain(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, false, 2, 4, 64)
	p.every = 0 // a line per batch
	p.startEpoch(1, 1)
	for b := 2; b <= 4; b++ {
		p.batch(b, 0.5)
	}
	p.endEpoch("epoch 2/2 train_loss=0.5000")
	p.finish()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	re := regexp.MustCompile(`^epoch 2/2 batch [234]/4 loss 0\.5000 \d+ samples/s eta \d+(\.\d+)?[mµn]?s$`)
	for _, l := range lines[:3] {
		if !re.MatchString(l) {
			t.Errorf("line %q does not match %s", l, re)
		}
	}
	if !regexp.MustCompile(`^epoch 2/2 train_loss=0\.5000 \(\d+\.\ds, \d+ samples/s\)$`).MatchString(lines[3]) {
		t.Errorf("epoch line %q", lines[3])
	}
	if strings.Contains(buf.String(), "\r") || strings.Contains(buf.String(), "\x1b") {
		t.Error("plain output has terminal control characters")
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, true, 3, 10, 32)
	p.redraw = 0
	p.startEpoch(0, 0)
	for b := 1; b <= 10; b++ {
		p.batch(b, 0.25)
	}
	p.endEpoch("epoch 1/3 train_loss=0.2500")
	p.finish()
	out := buf.String()
	for _, want := range []string{"epoch 1/3 batch", "loss 0.2500", "samples", "\r", "epoch 1/3 train_loss=0.2500"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar output lacks %q:\n%q", want, out)
		}
	}
}
