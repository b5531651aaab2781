package train

import (
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// The MLP step benchmarks: the built-in trainer's step (gorgonia forward and
// backward, our Adam) against a plain hand-written step of the same MLP on
// gonum's blas32. Both: 784-128-10, ReLU, batch 64, softmax cross-entropy,
// Adam, float32, the same MNIST rows. Run them in one invocation, e.g.
//
//	go test ./runtime/train -run '^$' -bench 'MLPStep' -count 6
const benchBatch = 64

func benchRows(b *testing.B) (*Data, [][]int) {
	d := mnistData(b, nil, 6400, 10)
	n := d.Train.Rows(784)
	perm := rand.New(rand.NewPCG(1, 1)).Perm(n)
	var batches [][]int
	for i := 0; i+benchBatch <= n; i += benchBatch {
		batches = append(batches, perm[i:i+benchBatch])
	}
	return d, batches
}

// cpuTime is this process's user+system CPU time: on a shared machine it
// shows whether a benchmark computed or waited.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-us/op")
}

func BenchmarkMLPStepBuiltin(b *testing.B) {
	d, batches := benchRows(b)
	s := mlpSpec(128).withDefaults()
	r, err := newRunner(s, d, nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.close()
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := r.trainBatch(batches[i%len(batches)], 0, i); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, c0)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}

func BenchmarkMLPStepBlas32Reference(b *testing.B) {
	d, batches := benchRows(b)
	m := newRefMLP(784, 128, 10, benchBatch)
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		m.step(d, batches[i%len(batches)])
	}
	reportCPU(b, c0)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}

// refMLP is the reference: every buffer preallocated, every product one blas32 call.
type refMLP struct {
	in, hid, out, bs     int
	w1, b1, w2, b2       []float32
	gw1, gb1, gw2, gb2   []float32
	x, h, logits, dl, dh []float32
	adam                 *optimizer
}

func newRefMLP(in, hid, out, bs int) *refMLP {
	r := rand.New(rand.NewPCG(1, 2))
	m := &refMLP{in: in, hid: hid, out: out, bs: bs,
		w1: make([]float32, in*hid), b1: make([]float32, hid), w2: make([]float32, hid*out), b2: make([]float32, out),
		gw1: make([]float32, in*hid), gb1: make([]float32, hid), gw2: make([]float32, hid*out), gb2: make([]float32, out),
		x: make([]float32, bs*in), h: make([]float32, bs*hid), logits: make([]float32, bs*out), dl: make([]float32, bs*out), dh: make([]float32, bs*hid)}
	l1, l2 := math.Sqrt(6/float64(in)), math.Sqrt(6/float64(hid+out))
	for i := range m.w1 {
		m.w1[i] = float32((r.Float64()*2 - 1) * l1)
	}
	for i := range m.w2 {
		m.w2[i] = float32((r.Float64()*2 - 1) * l2)
	}
	m.adam = newOptimizer(OptimizerSpec{Name: "adam", LearningRate: 0.001}, []int{len(m.w1), len(m.b1), len(m.w2), len(m.b2)})
	return m
}

func gen(r, c int, d []float32) blas32.General {
	return blas32.General{Rows: r, Cols: c, Stride: c, Data: d}
}

func (m *refMLP) step(d *Data, rows []int) float32 {
	bs, in, hid, out := m.bs, m.in, m.hid, m.out
	for k, i := range rows {
		copy(m.x[k*in:(k+1)*in], d.Train.X[i*in:(i+1)*in])
	}
	// forward
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, gen(bs, in, m.x), gen(in, hid, m.w1), 0, gen(bs, hid, m.h))
	for r := 0; r < bs; r++ {
		row := m.h[r*hid : (r+1)*hid]
		for j := range row {
			if v := row[j] + m.b1[j]; v > 0 {
				row[j] = v
			} else {
				row[j] = 0
			}
		}
	}
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, gen(bs, hid, m.h), gen(hid, out, m.w2), 0, gen(bs, out, m.logits))
	var loss float64
	for r := 0; r < bs; r++ {
		row, dl := m.logits[r*out:(r+1)*out], m.dl[r*out:(r+1)*out]
		mx := float32(math.Inf(-1))
		for j := range row {
			row[j] += m.b2[j]
			mx = max(mx, row[j])
		}
		var s float64
		for j := range row {
			e := math.Exp(float64(row[j] - mx))
			dl[j] = float32(e)
			s += e
		}
		y := d.Train.Labels[rows[r]]
		for j := range dl {
			dl[j] = float32(float64(dl[j]) / s)
		}
		loss -= math.Log(float64(dl[y]))
		dl[y]--
		for j := range dl {
			dl[j] /= float32(bs)
		}
	}
	// backward
	blas32.Gemm(blas.Trans, blas.NoTrans, 1, gen(bs, hid, m.h), gen(bs, out, m.dl), 0, gen(hid, out, m.gw2))
	clear(m.gb2)
	for r := 0; r < bs; r++ {
		for j := 0; j < out; j++ {
			m.gb2[j] += m.dl[r*out+j]
		}
	}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, gen(bs, out, m.dl), gen(hid, out, m.w2), 0, gen(bs, hid, m.dh))
	clear(m.gb1)
	for r := 0; r < bs; r++ {
		for j := 0; j < hid; j++ {
			if m.h[r*hid+j] <= 0 {
				m.dh[r*hid+j] = 0
			}
			m.gb1[j] += m.dh[r*hid+j]
		}
	}
	blas32.Gemm(blas.Trans, blas.NoTrans, 1, gen(bs, in, m.x), gen(bs, hid, m.dh), 0, gen(in, hid, m.gw1))
	m.adam.begin()
	_ = m.adam.update(0, m.w1, m.gw1)
	_ = m.adam.update(1, m.b1, m.gb1)
	_ = m.adam.update(2, m.w2, m.gw2)
	_ = m.adam.update(3, m.b2, m.gb2)
	return float32(loss / float64(bs))
}

// TestReferenceMLPLearns keeps the benchmark's reference honest: it must
// train (its loss falls), or comparing speeds with it would mean nothing.
func TestReferenceMLPLearns(t *testing.T) {
	d := mnistData(t, nil, 3200, 10)
	m := newRefMLP(784, 128, 10, 64)
	first := m.step(d, seq(0, 64))
	var last float32
	for e := 0; e < 3; e++ {
		for i := 0; i+64 <= 3200; i += 64 {
			last = m.step(d, seq(i, i+64))
		}
	}
	if first < 1.5 || last > 0.5 {
		t.Fatalf("reference MLP loss %v -> %v: not learning", first, last)
	}
}

func seq(a, b int) []int {
	out := make([]int, 0, b-a)
	for i := a; i < b; i++ {
		out = append(out, i)
	}
	return out
}

// Samples per second of whole epochs (batching, steps, evaluation excluded).
func benchEpoch(b *testing.B, s Spec) {
	d := mnistData(b, nil, 6400, 10)
	r, err := newRunner(s.withDefaults(), d, nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.close()
	n := d.Train.Rows(784)
	perm := rand.New(rand.NewPCG(1, 1)).Perm(n)
	b.ResetTimer()
	c0 := cpuTime()
	samples := 0
	for i := 0; i < b.N; i++ {
		k := i % (n / s.BatchSize)
		if _, err := r.trainBatch(perm[k*s.BatchSize:(k+1)*s.BatchSize], 0, i); err != nil {
			b.Fatal(err)
		}
		samples += s.BatchSize
	}
	reportCPU(b, c0)
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
}

func BenchmarkMNISTMLPTrain(b *testing.B) { benchEpoch(b, mlpSpec(128)) }

func BenchmarkMNISTCNNTrain(b *testing.B) {
	s := mlpSpec(128)
	s.Model.Kind = "cnn"
	benchEpoch(b, s)
}

// BenchmarkMLPStepCompare alternates one built-in step and one reference
// step, so both see the same machine load (on a shared machine the load
// changes between two separate benchmarks), and reports both rates and
// their ratio, by wall time and by CPU time.
func BenchmarkMLPStepCompare(b *testing.B) {
	d, batches := benchRows(b)
	r, err := newRunner(mlpSpec(128).withDefaults(), d, nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.close()
	ref := newRefMLP(784, 128, 10, benchBatch)
	var wallB, wallR, cpuB, cpuR time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rows := batches[i%len(batches)]
		t0, c0 := time.Now(), cpuTime()
		if _, err := r.trainBatch(rows, 0, i); err != nil {
			b.Fatal(err)
		}
		t1, c1 := time.Now(), cpuTime()
		ref.step(d, rows)
		t2, c2 := time.Now(), cpuTime()
		wallB += t1.Sub(t0)
		wallR += t2.Sub(t1)
		cpuB += c1 - c0
		cpuR += c2 - c1
	}
	n := float64(b.N)
	b.ReportMetric(n/wallB.Seconds(), "builtin-steps/s")
	b.ReportMetric(n/wallR.Seconds(), "blas32-steps/s")
	b.ReportMetric(wallR.Seconds()/wallB.Seconds(), "ratio-wall")
	b.ReportMetric(cpuR.Seconds()/cpuB.Seconds(), "ratio-cpu")
}

// BenchmarkMLPStepAblation measures what each change to the obvious gorgonia
// code is worth, by turning them off one at a time ("naive": all off).
func BenchmarkMLPStepAblation(b *testing.B) {
	d, batches := benchRows(b)
	for _, v := range []struct {
		name string
		o    graphOpts
	}{
		{"ours", graphOpts{}},
		{"RunAll", graphOpts{runAll: true}},
		{"compile-whole-graph", graphOpts{compileAll: true}},
		{"gorgonia-logsoftmax", graphOpts{gorgoniaLoss: true}},
		{"broadcast-bias", graphOpts{broadcastBias: true}},
		{"naive", graphOpts{runAll: true, compileAll: true, gorgoniaLoss: true, broadcastBias: true}},
	} {
		b.Run(v.name, func(b *testing.B) {
			r, err := newRunner(mlpSpec(128).withDefaults(), d, nil, Options{graph: v.o})
			if err != nil {
				b.Fatal(err)
			}
			defer r.close()
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := r.trainBatch(batches[i%len(batches)], 0, i); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, c0)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
		})
	}
}

func BenchmarkCNNStepAblation(b *testing.B) {
	d, batches := benchRows(b)
	for _, v := range []struct {
		name string
		o    graphOpts
	}{{"ours", graphOpts{}}, {"gorgonia-Conv2d", graphOpts{gorgoniaConv: true}}} {
		b.Run(v.name, func(b *testing.B) {
			s := mlpSpec(128)
			s.Model.Kind = "cnn"
			r, err := newRunner(s.withDefaults(), d, nil, Options{graph: v.o})
			if err != nil {
				b.Fatal(err)
			}
			defer r.close()
			b.ResetTimer()
			c0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := r.trainBatch(batches[i%len(batches)], 0, i); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, c0)
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
