package agent

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/leptonml/lepton/runtime/runspec"
)

func TestLineWriter(t *testing.T) {
	var got []string
	w := &lineWriter{line: func(s string) { got = append(got, s) }}
	for _, p := range []string{"epoch 1/2 ", "loss 0.5\r\nepoch 2/2", " loss 0.4\n", "partial"} {
		w.Write([]byte(p))
	}
	if want := []string{"epoch 1/2 loss 0.5", "epoch 2/2 loss 0.4"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lines %q, want %q", got, want)
	}
}

// TestLogAndLinesBounded: the status keeps the last MaxLines lines and
// counts them all; the log object holds the last 4 MiB, from a line's start.
func TestLogAndLinesBounded(t *testing.T) {
	r := &run{a: &Agent{opts: Options{}}, kick: make(chan struct{}, 1)}
	line := strings.Repeat("x", 1000)
	for i := range 6000 {
		r.line(fmt.Sprintf("%05d %s", i, line))
	}
	if r.st.LineSeq != 6000 || len(r.st.Lines) != runspec.MaxLines || !strings.HasPrefix(r.st.Lines[runspec.MaxLines-1], "05999 ") {
		t.Errorf("line_seq %d, %d lines", r.st.LineSeq, len(r.st.Lines))
	}
	b := logTail(r.log)
	if len(r.log) > maxLog+maxLog/4 || len(b) > maxLog || len(b) < maxLog-2000 || !bytes.HasSuffix(b, []byte("05999 "+line+"\n")) || b[0] != '0' {
		t.Errorf("log of %d bytes (kept %d)", len(b), len(r.log))
	}
}
