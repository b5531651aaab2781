package source

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
)

// idxReader reads one IDX file (the MNIST format): a 1-D file is one column
// named "label"; an N-D file is one row per item with columns pixel_0.. over
// the remaining dimensions (their shape is reported by ImageShape).
type idxReader struct {
	name  string
	r     *bufio.Reader
	typ   byte
	size  int
	dims  []int
	items int
	width int
	cols  []string
	vals  []Value
	buf   []byte
	n     int
}

func newIDXReader(r io.Reader, name string) (*idxReader, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<20)
	}
	var magic [4]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil {
		return nil, fmt.Errorf("%s: not an IDX file (short header): %w", name, err)
	}
	if magic[0] != 0 || magic[1] != 0 || magic[3] == 0 {
		return nil, fmt.Errorf("%s: not an IDX file (bad magic % x)", name, magic)
	}
	sizes := map[byte]int{0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}
	size, ok := sizes[magic[2]]
	if !ok {
		return nil, fmt.Errorf("%s: unknown IDX element type 0x%02x", name, magic[2])
	}
	x := &idxReader{name: name, r: br, typ: magic[2], size: size, width: 1}
	for i := 0; i < int(magic[3]); i++ {
		var d uint32
		if err := binary.Read(br, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("%s: short IDX header: %w", name, err)
		}
		x.dims = append(x.dims, int(d))
	}
	x.items = x.dims[0]
	for _, d := range x.dims[1:] {
		x.width *= d
	}
	if x.width > 1<<24 {
		return nil, fmt.Errorf("%s: IDX item of %d values is too large", name, x.width)
	}
	if len(x.dims) == 1 {
		x.cols = []string{"label"}
	} else {
		x.cols = make([]string, x.width)
		for i := range x.cols {
			x.cols[i] = "pixel_" + strconv.Itoa(i)
		}
	}
	x.vals = make([]Value, x.width)
	x.buf = make([]byte, x.width*size)
	return x, nil
}

func (x *idxReader) Columns() []string { return x.cols }

func (x *idxReader) ImageShape() []int {
	if len(x.dims) < 2 {
		return nil
	}
	return append([]int(nil), x.dims[1:]...)
}

func (x *idxReader) Next() ([]Value, Position, error) {
	if x.n >= x.items {
		return nil, Position{}, io.EOF
	}
	x.n++
	pos := Position{x.name, "item", int64(x.n)}
	if _, err := io.ReadFull(x.r, x.buf); err != nil {
		return nil, pos, &Error{Pos: pos, Err: fmt.Errorf("truncated IDX file (header says %d items): %v", x.items, err)}
	}
	for i := range x.vals {
		b := x.buf[i*x.size:]
		var f float64
		switch x.typ {
		case 0x08:
			f = float64(b[0])
		case 0x09:
			f = float64(int8(b[0]))
		case 0x0B:
			f = float64(int16(binary.BigEndian.Uint16(b)))
		case 0x0C:
			f = float64(int32(binary.BigEndian.Uint32(b)))
		case 0x0D:
			f = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
		case 0x0E:
			f = math.Float64frombits(binary.BigEndian.Uint64(b))
		}
		x.vals[i] = Value{Kind: Number, Num: f}
	}
	return x.vals, pos, nil
}

func (x *idxReader) Digest() (string, error) {
	return "", errors.New("idx: the digest is computed by the enclosing reader")
}
func (x *idxReader) Close() error { return nil }

// idxFiles zips IDX files: the i-th N-D file (in name order) is paired with
// the i-th 1-D file, so a glob over MNIST's four files gives the t10k images
// with their labels, then the train images with theirs.
type idxFiles struct {
	ctx    context.Context
	o      Options
	all    []string
	pairs  [][2]*idxReader
	files  []*os.File
	closes []func() error
	cur    int
	cols   []string
	vals   []Value
	shape  []int
}

func openIDXFiles(ctx context.Context, files []string, o Options) (Reader, error) {
	x := &idxFiles{ctx: ctx, o: o, all: files}
	var images, labels []*idxReader
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			x.Close()
			return nil, fmt.Errorf("file %s: %w", display(f, o.BaseDir), err)
		}
		x.files = append(x.files, fh)
		dr, closeZ, err := decompress(fh, display(f, o.BaseDir))
		if err != nil {
			x.Close()
			return nil, err
		}
		x.closes = append(x.closes, closeZ)
		r, err := newIDXReader(dr, display(f, o.BaseDir))
		if err != nil {
			x.Close()
			return nil, err
		}
		if len(r.dims) == 1 {
			labels = append(labels, r)
		} else {
			images = append(images, r)
		}
	}
	switch {
	case len(images) == 0:
		for _, l := range labels {
			x.pairs = append(x.pairs, [2]*idxReader{l, nil})
		}
	case len(labels) != 0 && len(labels) != len(images):
		x.Close()
		return nil, fmt.Errorf("idx: %d image files but %d label files; give pairs", len(images), len(labels))
	default:
		for i, im := range images {
			p := [2]*idxReader{im, nil}
			if len(labels) > 0 {
				p[1] = labels[i]
				if labels[i].items != im.items {
					x.Close()
					return nil, fmt.Errorf("idx: %s has %d items but %s has %d", im.name, im.items, labels[i].name, labels[i].items)
				}
			}
			if i > 0 && im.width != images[0].width {
				x.Close()
				return nil, fmt.Errorf("idx: %s has items of %d values but %s has %d", im.name, im.width, images[0].name, images[0].width)
			}
			x.pairs = append(x.pairs, p)
		}
	}
	first := x.pairs[0]
	x.cols = append(x.cols, first[0].cols...)
	if first[1] != nil {
		x.cols = append(x.cols, "label")
	}
	x.shape = first[0].ImageShape()
	x.vals = make([]Value, len(x.cols))
	return x, nil
}

func (x *idxFiles) Columns() []string { return x.cols }
func (x *idxFiles) ImageShape() []int { return x.shape }

func (x *idxFiles) Next() ([]Value, Position, error) {
	for x.cur < len(x.pairs) {
		p := x.pairs[x.cur]
		v, pos, err := p[0].Next()
		if err == io.EOF {
			x.cur++
			if err := x.ctx.Err(); err != nil {
				return nil, Position{}, err
			}
			continue
		}
		if err != nil {
			return nil, pos, err
		}
		copy(x.vals, v)
		if p[1] != nil {
			l, _, err := p[1].Next()
			if err != nil {
				return nil, pos, err
			}
			x.vals[len(x.vals)-1] = l[0]
		}
		return x.vals, pos, nil
	}
	return nil, Position{}, io.EOF
}

// Digest re-hashes the files: they are read interleaved, so the sequential
// hash that Fingerprint computes cannot be accumulated while reading.
func (x *idxFiles) Digest() (string, error) {
	h, err := fingerprintList(x.ctx, x.all, x.o)
	return h, err
}

func (x *idxFiles) Close() error {
	for _, c := range x.closes {
		c()
	}
	var err error
	for _, f := range x.files {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	x.files, x.closes = nil, nil
	return err
}
