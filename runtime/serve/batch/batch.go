// Package batch scores a stream of rows with a model and writes one CSV line
// of predictions per row, in bounded memory, with a sha256 digest of the
// output. batch_inference uses it over a dataset reader.
package batch

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"iter"
	"strconv"

	"github.com/leptonml/lepton/runtime/data/dataset"
	"github.com/leptonml/lepton/runtime/serve"
)

// Row is one input row. ID becomes the first CSV column; empty means the
// row's 0-based position in the stream.
type Row struct {
	ID       string
	Features []float32
}

// Options tune Score.
type Options struct {
	BatchSize int // rows per Predict call; default 256
}

// Result describes the written CSV.
type Result struct {
	Rows   int64
	Bytes  int64
	Digest string // "sha256:<hex>" of exactly the bytes written
}

// header returns the CSV header Score writes for m: id, prediction, then
// p_<label> per class for a classifier, or id, y0..y<k-1> for a regression
// with k > 1 outputs (k is known once the first batch is scored).
func header(m serve.Model, outDim int) []string {
	h := []string{"id", "prediction"}
	if cls := m.Classes(); cls != nil {
		for _, c := range cls {
			h = append(h, "p_"+c)
		}
		return h
	}
	if outDim > 1 {
		h = h[:1]
		for i := range outDim {
			h = append(h, "y"+strconv.Itoa(i))
		}
	}
	return h
}

// Score reads rows, scores them in batches of opt.BatchSize and writes CSV
// to w. A row with the wrong number of features, an error from rows, a
// model error or a cancelled ctx stops it with an error naming the row;
// what was written so far stays written (callers write to a temporary
// object and publish it only on success). Features are copied, so the
// iterator may reuse its slice.
func Score(ctx context.Context, m serve.Model, rows iter.Seq2[Row, error], w io.Writer, opt Options) (Result, error) {
	if opt.BatchSize <= 0 {
		opt.BatchSize = 256
	}
	in := m.InputSize()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	out := csv.NewWriter(cw)
	var (
		res       Result
		ids       = make([]string, 0, opt.BatchSize)
		x         = make([]float32, 0, opt.BatchSize*in)
		wroteHead bool
		record    []string
	)
	flush := func() error {
		n := len(ids)
		if n == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("batch scoring stopped at row %d: %w", res.Rows, err)
		}
		y, err := m.Predict(x, n)
		if err != nil {
			return fmt.Errorf("batch scoring rows %d-%d: %w", res.Rows, res.Rows+int64(n)-1, err)
		}
		if len(y) == 0 || len(y)%n != 0 {
			return fmt.Errorf("batch scoring rows %d-%d: model returned %d values for %d rows", res.Rows, res.Rows+int64(n)-1, len(y), n)
		}
		dim := len(y) / n
		cls := m.Classes()
		if cls != nil && dim != len(cls) {
			return fmt.Errorf("batch scoring: model returned %d values per row for %d classes", dim, len(cls))
		}
		if !wroteHead {
			if err := out.Write(header(m, dim)); err != nil {
				return err
			}
			wroteHead = true
		}
		for i := range n {
			v := y[i*dim : (i+1)*dim]
			record = append(record[:0], ids[i])
			switch {
			case cls != nil:
				record = append(record, cls[argmax(v)])
				for _, p := range v {
					record = append(record, formatFloat(p))
				}
			default:
				for _, p := range v {
					record = append(record, formatFloat(p))
				}
			}
			if err := out.Write(record); err != nil {
				return fmt.Errorf("batch scoring: write row %d: %w", res.Rows, err)
			}
			res.Rows++
		}
		out.Flush()
		if err := out.Error(); err != nil {
			return fmt.Errorf("batch scoring: write: %w", err)
		}
		ids, x = ids[:0], x[:0]
		return nil
	}
	var pos int64
	for r, err := range rows {
		if err != nil {
			return res, fmt.Errorf("batch scoring: reading row %d: %w", pos, err)
		}
		if len(r.Features) != in {
			return res, fmt.Errorf("batch scoring: row %d has %d features, the model expects %d", pos, len(r.Features), in)
		}
		id := r.ID
		if id == "" {
			id = strconv.FormatInt(pos, 10)
		}
		ids = append(ids, id)
		x = append(x, r.Features...)
		pos++
		if len(ids) == opt.BatchSize {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	if !wroteHead { // no rows: still a well-formed CSV with a header
		if err := out.Write(header(m, 1)); err != nil {
			return res, err
		}
		out.Flush()
		if err := out.Error(); err != nil {
			return res, fmt.Errorf("batch scoring: write: %w", err)
		}
	}
	res.Bytes = cw.n
	res.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return res, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func formatFloat(f float32) string { return strconv.FormatFloat(float64(f), 'g', -1, 32) }

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// FromMatrix yields the n rows of a row-major n x d matrix (such as the
// splits of a loaded dataset), without copying it.
func FromMatrix(x []float32, n, d int) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		if len(x) != n*d {
			yield(Row{}, fmt.Errorf("matrix holds %d values, not %d rows of %d", len(x), n, d))
			return
		}
		for i := range n {
			if !yield(Row{Features: x[i*d : (i+1)*d : (i+1)*d]}, nil) {
				return
			}
		}
	}
}

// FromDataset yields every row of ds: train, validation and test in that
// order (a batch inference reads its dataset raw, all splits together).
func FromDataset(ds *dataset.Dataset) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		for _, m := range []dataset.Matrix{ds.Train, ds.Validation, ds.Test} {
			for r, err := range FromMatrix(m.X, m.N, m.D) {
				if !yield(r, err) {
					return
				}
			}
		}
	}
}
