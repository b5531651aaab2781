package batch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"testing"

	"github.com/leptonml/lepton/runtime/serve/testmodel"
)

// rows yields n rows of the given width, reusing one slice as a reader would.
func rows(n, width int, fail int) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		buf := make([]float32, width)
		for i := range n {
			if i == fail {
				yield(Row{}, errors.New("bad CSV quote"))
				return
			}
			for j := range buf {
				buf[j] = float32((i*31+j*7)%97) / 97
			}
			if !yield(Row{Features: buf}, nil) {
				return
			}
		}
	}
}

func TestScoreClassifier(t *testing.T) {
	m := testmodel.New(4, 6, 5, 3, false)
	var out bytes.Buffer
	res, err := Score(context.Background(), m, rows(100, 6, -1), &out, Options{BatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(out.Bytes())
	if res.Rows != 100 || res.Bytes != int64(out.Len()) || res.Digest != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("result %+v (wrote %d bytes)", res, out.Len())
	}
	recs, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != "id,prediction,p_0,p_1,p_2" || len(recs) != 101 {
		t.Fatalf("header %v, %d records", recs[0], len(recs))
	}
	// Every row must match a one-row Predict on the same input.
	var i int
	for r := range rows(100, 6, -1) {
		want, _ := m.Predict(r.Features, 1)
		rec := recs[i+1]
		if rec[0] != strconv.Itoa(i) || rec[1] != strconv.Itoa(argmax(want)) {
			t.Fatalf("row %d: %v, want class %d", i, rec, argmax(want))
		}
		for k, w := range want {
			got, _ := strconv.ParseFloat(rec[2+k], 32)
			if float32(got) != w {
				t.Fatalf("row %d p_%d: %v want %v", i, k, got, w)
			}
		}
		i++
	}
	// Same input, same bytes: the digest is stable across batch sizes.
	var again bytes.Buffer
	res2, _ := Score(context.Background(), m, rows(100, 6, -1), &again, Options{BatchSize: 7})
	if res2.Digest != res.Digest {
		t.Fatal("digest depends on the batch size")
	}
}

func TestScoreRegressionAndEmpty(t *testing.T) {
	var out bytes.Buffer
	res, err := Score(context.Background(), testmodel.New(1, 4, 3, 2, true), rows(3, 4, -1), &out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(out.String(), "\n"); first != "id,y0,y1" || res.Rows != 3 {
		t.Fatalf("header %q rows %d", first, res.Rows)
	}
	out.Reset()
	res, err = Score(context.Background(), testmodel.New(1, 4, 3, 1, true), rows(0, 4, -1), &out, Options{})
	if err != nil || out.String() != "id,prediction\n" || res.Rows != 0 {
		t.Fatalf("empty: %q %+v %v", out.String(), res, err)
	}
}

func TestScoreErrorsNameTheRow(t *testing.T) {
	m := testmodel.New(1, 4, 3, 2, false)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		ctx  context.Context
		rows iter.Seq2[Row, error]
		want string
	}{
		{context.Background(), rows(10, 5, -1), "row 0 has 5 features, the model expects 4"},
		{context.Background(), rows(10, 4, 6), "reading row 6: bad CSV quote"},
		{cancelled, rows(10, 4, -1), "stopped at row 0: context canceled"},
	} {
		_, err := Score(tc.ctx, m, tc.rows, &bytes.Buffer{}, Options{BatchSize: 4})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, fmt.Errorf("disk full")
	}
	return len(p), nil
}

func TestScoreWriteError(t *testing.T) {
	_, err := Score(context.Background(), testmodel.New(1, 4, 3, 2, false), rows(1000, 4, -1), &failWriter{after: 100}, Options{BatchSize: 8})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v", err)
	}
}

func TestFromMatrix(t *testing.T) {
	m := testmodel.New(2, 3, 4, 2, false)
	x := []float32{1, 2, 3, 4, 5, 6}
	var out bytes.Buffer
	res, err := Score(context.Background(), m, FromMatrix(x, 2, 3), &out, Options{})
	if err != nil || res.Rows != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	_, err = Score(context.Background(), m, FromMatrix(x, 3, 3), &out, Options{})
	if err == nil || !strings.Contains(err.Error(), "reading row 0: matrix holds 6 values, not 3 rows of 3") {
		t.Fatalf("err = %v", err)
	}
}

// BenchmarkScoreMNIST scores 4096 MNIST-shaped rows to CSV; rows/s is
// 4096 / (ns/op) * 1e9.
func BenchmarkScoreMNIST(b *testing.B) {
	m := testmodel.MNIST(1)
	x := make([]float32, 4096*784)
	for i := range x {
		x[i] = float32(i%255) / 255
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Score(context.Background(), m, FromMatrix(x, 4096, 784), io.Discard, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
