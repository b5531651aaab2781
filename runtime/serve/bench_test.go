package serve

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/leptonml/lepton/runtime/serve/testmodel"
	"github.com/valyala/fastjson"
)

func benchBody(rows int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	inst := make([][]float32, rows)
	for i := range inst {
		inst[i] = make([]float32, 784)
		for j := range inst[i] {
			if r.IntN(5) == 0 {
				inst[i][j] = float32(r.IntN(255)+1) / 255
			}
		}
	}
	b, _ := json.Marshal(map[string]any{"instances": inst})
	return b
}

func BenchmarkDecodeV1(b *testing.B) {
	body := benchBody(1)
	var p fastjson.Parser
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := decodeV1(&p, body, 784); err != nil {
			b.Fatal(err)
		}
	}
}

// mnistLike returns n rows with about 20% non-zero pixels, like MNIST (gonum
// skips zero inputs, so all-zero rows would flatter the forward pass).
func mnistLike(n int) []float32 {
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, n*784)
	for i := range x {
		if r.IntN(5) == 0 {
			x[i] = float32(r.IntN(255)+1) / 255
		}
	}
	return x
}

func BenchmarkPredict1Row(b *testing.B) {
	m := testmodel.MNIST(1)
	x := mnistLike(1)
	for b.Loop() {
		m.Predict(x, 1)
	}
}

// BenchmarkHandlerV1 measures one request through ServeHTTP, without a network.
func BenchmarkHandlerV1(b *testing.B) {
	s, err := New(Config{Name: "digits", Token: "t"}, Loaded{Version: "1", Model: testmodel.MNIST(1)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := string(benchBody(1))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/models/digits:predict", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer t")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}

func BenchmarkDecodeV1Rows32(b *testing.B) {
	body := benchBody(32)
	var p fastjson.Parser
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := decodeV1(&p, body, 784); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPredict32Rows(b *testing.B) {
	m := testmodel.MNIST(1)
	x := mnistLike(32)
	for b.Loop() {
		m.Predict(x, 32)
	}
}

func BenchmarkFastV1(b *testing.B) {
	body := benchBody(1)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, ok := fastV1(body, 784); !ok {
			b.Fatal("fast path refused")
		}
	}
}
