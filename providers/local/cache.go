package local

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/leptonml/lepton/runtime/data"
	"github.com/leptonml/lepton/runtime/runstore"
)

// The processed-dataset cache lets a training read the matrices a dataset's
// apply produced instead of reading and processing the source again (MNIST:
// seconds instead of tens of seconds). It is keyed by the dataset's digest,
// so a changed source or spec never reads a stale cache.

const cacheMagic = "LEPDSET1"

func cacheKey(digest string) string {
	return "datasets/" + strings.TrimPrefix(digest, "sha256:") + ".bin"
}

// cacheHeader is everything but the matrices.
type cacheHeader struct {
	Digest      string
	Source      string
	Label       string
	Columns     []string
	Schema      map[string]string
	Rows        int
	DroppedRows int
	Classes     []string
	Stats       map[string]data.ColumnStats
	Steps       []data.StepReport
	Transform   json.RawMessage
	ImageShape  []int
	Shapes      [3][4]int // per split: N, D, len(Y), len(Target)
}

func writeCache(ctx context.Context, dataDir string, ds *data.Dataset) error {
	s, key := storeOf(dataDir), cacheKey(ds.Digest)
	if ok, _ := runstore.Exists(ctx, s, key); ok {
		return nil
	}
	// The cache streams into the store as it is encoded: a large dataset's
	// matrices are not copied into one buffer first.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(encodeCache(pw, ds)) }()
	err := s.Put(ctx, key, pr)
	pr.CloseWithError(err) // stops the encoder if Put gave up early
	return err
}

// encodeCache writes the cache format: magic, header length, JSON header,
// then every split's matrices as little-endian float32.
func encodeCache(out io.Writer, ds *data.Dataset) error {
	splits := []data.Matrix{ds.Train, ds.Validation, ds.Test}
	h := cacheHeader{Digest: ds.Digest, Source: ds.Source, Label: ds.Label, Columns: ds.Columns, Schema: ds.Schema, Rows: ds.Rows,
		DroppedRows: ds.DroppedRows, Classes: ds.Classes, Stats: ds.Stats, Steps: ds.Steps, Transform: ds.Transform, ImageShape: ds.ImageShape}
	for i, m := range splits {
		h.Shapes[i] = [4]int{m.N, m.D, len(m.Y), len(m.Target)}
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	w.WriteString(cacheMagic)
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

func readFloats(r io.Reader, n int) ([]float32, error) {
	if n == 0 {
		return nil, nil
	}
	out := make([]float32, n)
	buf := make([]byte, 4*4096)
	for i := 0; i < n; {
		k := min(n-i, 4096)
		if _, err := io.ReadFull(r, buf[:4*k]); err != nil {
			return nil, err
		}
		for j := 0; j < k; j++ {
			out[i+j] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*j:]))
		}
		i += k
	}
	return out, nil
}

// readCache returns the cached dataset with that digest, or an error
// (os.ErrNotExist when there is none).
func readCache(ctx context.Context, dataDir, digest string) (*data.Dataset, error) {
	f, err := storeOf(dataDir).Get(ctx, cacheKey(digest))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	magic := make([]byte, len(cacheMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != cacheMagic {
		return nil, errors.New("dataset cache: bad header")
	}
	var n uint64
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil || n > 1<<30 {
		return nil, errors.New("dataset cache: bad header length")
	}
	hb := make([]byte, n)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, err
	}
	var h cacheHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("dataset cache: %w", err)
	}
	if h.Digest != digest {
		return nil, fmt.Errorf("dataset cache holds %s, not %s", h.Digest, digest)
	}
	ds := &data.Dataset{Digest: h.Digest, Source: h.Source, Label: h.Label, Columns: h.Columns, Schema: h.Schema, Rows: h.Rows,
		DroppedRows: h.DroppedRows, Classes: h.Classes, Stats: h.Stats, Steps: h.Steps, Transform: h.Transform, ImageShape: h.ImageShape}
	for i, m := range []*data.Matrix{&ds.Train, &ds.Validation, &ds.Test} {
		s := h.Shapes[i]
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
