// Package dscache is the processed-dataset snapshot format: the matrices a
// dataset's apply produced, so a training reads them instead of reading and
// processing the source again (MNIST: seconds instead of tens of seconds).
// The local provider keeps one per dataset digest in .lepton/datasets; a
// remote run downloads the same bytes from the run storage.
//
// The format is the magic "LEPDSET1", the JSON header's length (uint64,
// little-endian), the JSON header, then every split's X, Y and Target as
// little-endian float32.
package dscache

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/leptonml/lepton/runtime/data/dataset"
)

// Magic starts every snapshot.
const Magic = "LEPDSET1"

// header is everything but the matrices.
type header struct {
	Digest      string
	Source      string
	Label       string
	Columns     []string
	Schema      map[string]string
	Rows        int
	DroppedRows int
	Classes     []string
	Stats       map[string]dataset.ColumnStats
	Steps       []dataset.StepReport
	Transform   json.RawMessage
	ImageShape  []int
	Shapes      [3][4]int // per split: N, D, len(Y), len(Target)
}

// maxHeader bounds the JSON header a reader accepts.
const maxHeader = 1 << 30

// Encode writes ds in the snapshot format. It streams: a large dataset's
// matrices are not copied into one buffer first.
func Encode(out io.Writer, ds *dataset.Dataset) error {
	splits := []dataset.Matrix{ds.Train, ds.Validation, ds.Test}
	h := header{Digest: ds.Digest, Source: ds.Source, Label: ds.Label, Columns: ds.Columns, Schema: ds.Schema, Rows: ds.Rows,
		DroppedRows: ds.DroppedRows, Classes: ds.Classes, Stats: ds.Stats, Steps: ds.Steps, Transform: ds.Transform, ImageShape: ds.ImageShape}
	for i, m := range splits {
		h.Shapes[i] = [4]int{m.N, m.D, len(m.Y), len(m.Target)}
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	w.WriteString(Magic)
	binary.Write(w, binary.LittleEndian, uint64(len(hb)))
	w.Write(hb)
	for _, m := range splits {
		for _, xs := range [][]float32{m.X, m.Y, m.Target} {
			if err := writeFloats(w, xs); err != nil {
				return err
			}
		}
	}
	return w.Flush()
}

func writeFloats(w io.Writer, xs []float32) error {
	buf := make([]byte, 4*4096)
	for len(xs) > 0 {
		n := min(len(xs), 4096)
		for i, x := range xs[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
		}
		if _, err := w.Write(buf[:4*n]); err != nil {
			return err
		}
		xs = xs[n:]
	}
	return nil
}

// Decode reads a snapshot. A truncated or malformed one is an error, never
// a panic or an allocation its bytes do not justify.
func Decode(in io.Reader) (*dataset.Dataset, error) {
	r := bufio.NewReaderSize(in, 1<<20)
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != Magic {
		return nil, errors.New("dataset cache: bad header")
	}
	var n uint64
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil || n > maxHeader {
		return nil, errors.New("dataset cache: bad header length")
	}
	hb, err := readBytes(r, int(n))
	if err != nil {
		return nil, fmt.Errorf("dataset cache: %w", err)
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("dataset cache: %w", err)
	}
	ds := &dataset.Dataset{Digest: h.Digest, Source: h.Source, Label: h.Label, Columns: h.Columns, Schema: h.Schema, Rows: h.Rows,
		DroppedRows: h.DroppedRows, Classes: h.Classes, Stats: h.Stats, Steps: h.Steps, Transform: h.Transform, ImageShape: h.ImageShape}
	for i, m := range []*dataset.Matrix{&ds.Train, &ds.Validation, &ds.Test} {
		s := h.Shapes[i]
		for _, v := range s {
			if v < 0 || v > 1<<40 {
				return nil, fmt.Errorf("dataset cache: bad shape %v", s)
			}
		}
		m.N, m.D = s[0], s[1]
		if m.X, err = readFloats(r, s[0]*s[1]); err != nil {
			return nil, fmt.Errorf("dataset cache: %w", err)
		}
		if m.Y, err = readFloats(r, s[2]); err != nil {
			return nil, fmt.Errorf("dataset cache: %w", err)
		}
		if m.Target, err = readFloats(r, s[3]); err != nil {
			return nil, fmt.Errorf("dataset cache: %w", err)
		}
	}
	return ds, nil
}

// chunk is the most a reader allocates ahead of the bytes it has read.
const chunk = 1 << 22

func readBytes(r io.Reader, n int) ([]byte, error) {
	if n <= chunk {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err == nil && len(b) < n {
		err = io.ErrUnexpectedEOF
	}
	return b, err
}

func readFloats(r io.Reader, n int) ([]float32, error) {
	if n == 0 {
		return nil, nil
	}
	out := make([]float32, min(n, chunk))
	buf := make([]byte, 4*4096)
	for i := 0; i < n; {
		k := min(n-i, 4096)
		if _, err := io.ReadFull(r, buf[:4*k]); err != nil {
			return nil, err
		}
		if i+k > len(out) {
			out = append(out, make([]float32, min(n, 2*len(out))-len(out))...)
		}
		for j := 0; j < k; j++ {
			out[i+j] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*j:]))
		}
		i += k
	}
	return out, nil
}
