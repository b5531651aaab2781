package artifact

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func randTensor(r *rand.Rand, name string, shape ...int) Tensor {
	d := make([]float32, prod(shape))
	for i := range d {
		d[i] = float32(r.NormFloat64() * 0.5)
	}
	return Tensor{Name: name, Shape: shape, Data: d}
}

func mlpModel() *Model {
	r := rand.New(rand.NewPCG(1, 2))
	return &Model{
		Kind: KindSupervised,
		Architecture: &Architecture{Objective: "classification", ModelKind: "mlp", InputShape: []int{4},
			Layers: []Layer{{Type: LayerDense, In: 4, Out: 5, Activation: ActTanh, Dropout: 0.1}, {Type: LayerDense, In: 5, Out: 3}}},
		Weights:       []Tensor{randTensor(r, "dense0.w", 4, 5), randTensor(r, "dense0.b", 5), randTensor(r, "dense1.w", 5, 3), randTensor(r, "dense1.b", 3)},
		Preprocessing: json.RawMessage(`{"method":"zscore","features":["a","b","c","d"],"mean":[1,2,3,4],"std":[1,0.5,2,0],"missing":"drop"}`),
		Features:      []string{"a", "b", "c", "d"},
		ClassLabels:   []string{"x", "y", "z"},
		Metrics:       map[string]float64{"test_accuracy": 0.93, "train_loss": 0.2},
		Meta:          map[string]string{"seed": "1", "epochs": "3"},
	}
}

func cnnModel() *Model {
	r := rand.New(rand.NewPCG(3, 4))
	return &Model{
		Kind: KindSupervised,
		Architecture: &Architecture{Objective: "classification", ModelKind: "cnn", InputShape: []int{2, 6, 6},
			Layers: []Layer{
				{Type: LayerConv2D, In: 2, Out: 3, Kernel: 3, Pad: 1, Activation: ActReLU},
				{Type: LayerMaxPool, Size: 2},
				{Type: LayerFlatten},
				{Type: LayerDense, In: 27, Out: 4},
			}},
		Weights:       []Tensor{randTensor(r, "conv0.w", 3, 2, 3, 3), randTensor(r, "conv0.b", 3), randTensor(r, "dense3.w", 27, 4), randTensor(r, "dense3.b", 4)},
		Preprocessing: json.RawMessage(`{"method":"minmax","min":[0],"max":[255]}`),
		ClassLabels:   []string{"0", "1", "2", "3"},
	}
}

// naiveForward is an independent, loop-by-loop implementation of the same network.
func naiveForward(m *Model, x []float32) []float64 {
	n, _ := ParseNormalization(m.Preprocessing)
	v := make([]float64, len(x))
	for i, xi := range x {
		v[i] = float64(xi)
		switch n.Method {
		case "zscore":
			s := n.Std[i]
			if s == 0 {
				s = 1
			}
			v[i] = (v[i] - n.Mean[i]) / s
		case "minmax":
			v[i] = (v[i] - n.Min[0]) / (n.Max[0] - n.Min[0])
		}
	}
	shape := m.Architecture.InputShape
	wi := 0
	for _, l := range m.Architecture.Layers {
		switch l.Type {
		case LayerDense:
			w, b := m.Weights[wi].Data, m.Weights[wi+1].Data
			wi += 2
			o := make([]float64, l.Out)
			for j := range o {
				o[j] = float64(b[j])
				for i := 0; i < l.In; i++ {
					o[j] += v[i] * float64(w[i*l.Out+j])
				}
			}
			v, shape = act(o, l.Activation), []int{l.Out}
		case LayerConv2D:
			w, b := m.Weights[wi].Data, m.Weights[wi+1].Data
			wi += 2
			C, H, W, K, P := shape[0], shape[1], shape[2], l.Kernel, l.Pad
			oh, ow := H+2*P-K+1, W+2*P-K+1
			o := make([]float64, l.Out*oh*ow)
			for oc := 0; oc < l.Out; oc++ {
				for y := 0; y < oh; y++ {
					for xx := 0; xx < ow; xx++ {
						s := float64(b[oc])
						for c := 0; c < C; c++ {
							for ky := 0; ky < K; ky++ {
								for kx := 0; kx < K; kx++ {
									iy, ix := y+ky-P, xx+kx-P
									if iy >= 0 && iy < H && ix >= 0 && ix < W {
										s += v[(c*H+iy)*W+ix] * float64(w[((oc*C+c)*K+ky)*K+kx])
									}
								}
							}
						}
						o[(oc*oh+y)*ow+xx] = s
					}
				}
			}
			v, shape = act(o, l.Activation), []int{l.Out, oh, ow}
		case LayerMaxPool:
			C, H, W, S := shape[0], shape[1], shape[2], l.Size
			o := make([]float64, C*(H/S)*(W/S))
			for c := 0; c < C; c++ {
				for y := 0; y < H/S; y++ {
					for xx := 0; xx < W/S; xx++ {
						mx := math.Inf(-1)
						for d := 0; d < S*S; d++ {
							mx = math.Max(mx, v[(c*H+y*S+d/S)*W+xx*S+d%S])
						}
						o[(c*(H/S)+y)*(W/S)+xx] = mx
					}
				}
			}
			v, shape = o, []int{C, H / S, W / S}
		}
	}
	mx := math.Inf(-1)
	for _, z := range v {
		mx = math.Max(mx, z)
	}
	s := 0.0
	for i := range v {
		v[i] = math.Exp(v[i] - mx)
		s += v[i]
	}
	for i := range v {
		v[i] /= s
	}
	return v
}

func act(v []float64, a string) []float64 {
	for i, x := range v {
		switch a {
		case ActReLU:
			v[i] = math.Max(0, x)
		case ActTanh:
			v[i] = math.Tanh(x)
		case ActSigmoid:
			v[i] = 1 / (1 + math.Exp(-x))
		}
	}
	return v
}

func TestPredictMatchesNaive(t *testing.T) {
	for _, c := range []struct {
		name string
		m    *Model
		rows int
		max  float32
	}{{"mlp", mlpModel(), 150, 10}, {"cnn", cnnModel(), 70, 255}} {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(9, 9))
			in, out := c.m.InputSize(), c.m.OutputSize()
			x := make([]float32, c.rows*in)
			for i := range x {
				x[i] = r.Float32() * c.max
			}
			got, err := c.m.Predict(x, c.rows)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < c.rows; i++ {
				want := naiveForward(c.m, x[i*in:(i+1)*in])
				for j := 0; j < out; j++ {
					if d := math.Abs(float64(got[i*out+j]) - want[j]); d > 1e-5 {
						t.Fatalf("row %d class %d: got %v want %v", i, j, got[i*out+j], want[j])
					}
				}
			}
		})
	}
}

func TestPredictConcurrent(t *testing.T) {
	m := cnnModel()
	x := make([]float32, 3*m.InputSize())
	for i := range x {
		x[i] = float32(i % 256)
	}
	want, err := m.Predict(x, 3)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for k := 0; k < 50; k++ {
				got, err := m.Predict(x, 3)
				if err != nil {
					t.Error(err)
					return
				}
				for i := range got {
					if got[i] != want[i] {
						t.Errorf("concurrent predict differs at %d", i)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if _, err := m.Predict(x[:5], 3); err == nil || !strings.Contains(err.Error(), "rows of 72 features") {
		t.Fatalf("bad length: err = %v", err)
	}
}

func TestStoreRoundTrip(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "artifacts")}
	for _, m := range []*Model{mlpModel(), cnnModel(), {Kind: KindQLearning, Payload: json.RawMessage(`{"q":[[0.1,0.2]],"policy":[1]}`), Metrics: map[string]float64{"success_rate": 0.74}, Summary: "policy:\n  > v\n"}} {
		d, err := s.Put(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(d, "sha256:") || len(d) != 71 || m.Digest() != d {
			t.Fatalf("digest %q", d)
		}
		d2, err := s.Put(context.Background(), m)
		if err != nil || d2 != d {
			t.Fatalf("second put: %v %v", d2, err)
		}
		got, err := s.Get(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := Encode(m)
		b, _ := Encode(got)
		if string(a) != string(b) || got.Version() != d {
			t.Fatal("round trip changed the model")
		}
		if string(got.Payload) != string(m.Payload) || string(got.Preprocessing) != string(m.Preprocessing) {
			t.Fatal("opaque fields not kept verbatim")
		}
		if m.Kind == KindQLearning {
			if !strings.HasSuffix(got.Describe(), "payload:   30 bytes\npolicy:\n  > v\n") {
				t.Fatalf("describe:\n%s", got.Describe())
			}
			if _, err := got.Predict(nil, 0); err == nil || !strings.Contains(err.Error(), "q_learning") {
				t.Fatalf("predict on q-table: %v", err)
			}
		}
	}
	entries, _ := os.ReadDir(s.Dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

func TestLoadErrors(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	d, err := s.Put(context.Background(), mlpModel())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Path(d)
	good, _ := os.ReadFile(p)

	put := func(b []byte) string {
		d := DigestOf(b)
		q, _ := s.Path(d)
		if err := os.WriteFile(q, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-3] ^= 0x40
	v2 := append([]byte(nil), good...)
	binary.LittleEndian.PutUint16(v2[8:], 2)
	badMagic := append([]byte("NOTLEPTN"), good[8:]...)
	cut := good[:len(good)-8]

	cases := []struct {
		name   string
		digest func() string
		want   string
		is     error
	}{
		{"corrupted", func() string {
			if err := os.WriteFile(p, flipped, 0o644); err != nil {
				t.Fatal(err)
			}
			return d
		}, "corrupted or modified", ErrDigestMismatch},
		{"version", func() string { return put(v2) }, "unsupported artifact format version 2", ErrVersion},
		{"magic", func() string { return put(badMagic) }, "not a lepton model file", nil},
		{"truncated", func() string { return put(cut) }, "weight values", nil},
		{"missing", func() string { return "sha256:" + strings.Repeat("ab", 32) }, "not in", os.ErrNotExist},
		{"bad reference", func() string { return "md5:abc" }, "want sha256:<64 hex digits>", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Get(context.Background(), c.digest())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("err = %v, want errors.Is %v", err, c.is)
			}
		})
	}
}

func TestEncodeRejectsInconsistent(t *testing.T) {
	m := mlpModel()
	m.Weights[2].Shape = []int{6, 3}
	if _, err := Encode(m); err == nil || !strings.Contains(err.Error(), "shape [6 3]") {
		t.Fatalf("err = %v", err)
	}
	m = mlpModel()
	m.Preprocessing = json.RawMessage(`{"method":"zscore","mean":[1,2],"std":[1]}`)
	if _, err := m.Predict(make([]float32, 4), 1); err == nil || !strings.Contains(err.Error(), "2 means and 1 stds") {
		t.Fatalf("err = %v", err)
	}
}

func TestDescribeGolden(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	m := cnnModel()
	m.Metrics = map[string]float64{"test_accuracy": 0.9871, "val_loss": 0.041}
	m.Meta = map[string]string{"seed": "1", "epochs_completed": "3"}
	if _, err := s.Put(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := m.Describe()
	golden := filepath.Join("testdata", "describe_cnn.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("Describe() =\n%s\nwant\n%s", got, want)
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range []*Model{mlpModel(), cnnModel()} {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(Magic + "\x01\x00\x00\x00\x02\x00\x00\x00{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b, "fuzz")
		if err != nil {
			return
		}
		// Anything Decode accepts must be usable: Predict must not panic and
		// re-encoding must reproduce a decodable file.
		if m.Kind == KindSupervised && m.InputSize() < 1<<16 {
			if _, err := m.Predict(make([]float32, 2*m.InputSize()), 2); err != nil {
				t.Fatalf("decoded model cannot predict: %v", err)
			}
		}
		b2, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded model does not re-encode: %v", err)
		}
		if _, err := Decode(b2, "again"); err != nil {
			t.Fatal(err)
		}
	})
}
