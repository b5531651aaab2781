package planner_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/local"
)

// The benchmarks of the core issue, in process: N inline datasets where every
// 10th depends on the one before it (bench/core runs the same shape through
// the built binary). Run with
//
//	go test -run '^$' -bench . -benchmem ./planner/
//
// LEPTON_BENCH_SIZES=2000,4000 replaces the sizes (to see how a cost scales).
var benchSizes = sizesFromEnv([]int{1000, 10000})

func sizesFromEnv(def []int) []int {
	v := os.Getenv("LEPTON_BENCH_SIZES")
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			panic(fmt.Sprintf("LEPTON_BENCH_SIZES: bad size %q", f))
		}
		out = append(out, n)
	}
	return out
}

// benchConfig is the generated configuration (the same text as bench/core's).
func benchConfig(n int) []byte {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "dataset \"d%05d\" {\n", i)
		if i%10 == 9 {
			fmt.Fprintf(&b, "  depends_on = [dataset.d%05d]\n", i-1)
		}
		fmt.Fprintf(&b, "  source {\n    inline = {\n      x = [%d, 2, 3]\n      y = [0, 1, 0]\n    }\n  }\n}\n\n", i)
	}
	return []byte(b.String())
}

func benchLoad(tb testing.TB, dir string, n int) *lang.Config {
	tb.Helper()
	cfg, d := lang.LoadSources(dir, []string{"main.lep.hcl"}, map[string][]byte{"main.lep.hcl": benchConfig(n)})
	if d.HasErrors() {
		tb.Fatalf("load: %v", d)
	}
	return cfg
}

func benchPlanner(cfg *lang.Config, dir string) *planner.Planner {
	return &planner.Planner{
		Config:    cfg,
		Scope:     lang.NewScope(cfg, nil),
		Providers: providers.NewRegistry(local.New()),
		Env:       providers.Env{Dir: dir, DataDir: filepath.Join(dir, ".lepton")},
	}
}

// cpuTime is the user+system CPU time of this process so far. The machine
// these run on is shared: wall time per op swings with the neighbours' load,
// CPU time per op much less.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds a cpu-ms/op metric for the loop that started at start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// countingWriter keeps the last state written and counts the writes, so the
// benchmark shows how few writes the persister groups 10,000 changes into.
type countingWriter struct {
	mu     sync.Mutex
	writes int
	bytes  int
	last   []byte
}

func (w *countingWriter) WriteBytes(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	w.bytes += len(b)
	w.last = append(w.last[:0], b...) // b is the persister's buffer, reused
	return nil
}

// benchApply plans and applies from empty and returns the written state.
func benchApply(tb testing.TB, p *planner.Planner, w *countingWriter) []byte {
	tb.Helper()
	ctx := context.Background()
	plan, d := p.Plan(ctx, nil, planner.Options{Refresh: true, Parallelism: 10})
	if d.HasErrors() {
		tb.Fatalf("plan: %v", d)
	}
	pers := state.NewPersister(w, state.New("bench"))
	res, d := p.Apply(ctx, plan, pers, planner.ApplyOptions{Parallelism: 10})
	if err := pers.Close(); err != nil {
		tb.Fatal(err)
	}
	if d.HasErrors() {
		tb.Fatalf("apply: %v", d)
	}
	if res.Added != len(p.Config.Resources) {
		tb.Fatalf("apply added %d, want %d", res.Added, len(p.Config.Resources))
	}
	return w.last
}

func BenchmarkLoad(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			src := map[string][]byte{"main.lep.hcl": benchConfig(n)}
			dir := b.TempDir()
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			for b.Loop() {
				if _, d := lang.LoadSources(dir, []string{"main.lep.hcl"}, src); d.HasErrors() {
					b.Fatal(d)
				}
			}
		})
	}
}

func BenchmarkPlanFromEmpty(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			p := benchPlanner(benchLoad(b, dir, n), dir)
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			for b.Loop() {
				plan, d := p.Plan(context.Background(), nil, planner.Options{Refresh: true, Parallelism: 10})
				if d.HasErrors() || len(plan.Changes) != n {
					b.Fatalf("plan: %d changes, %v", len(plan.Changes), d)
				}
			}
		})
	}
}

func BenchmarkApplyFromEmpty(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			p := benchPlanner(benchLoad(b, dir, n), dir)
			var writes int
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			for b.Loop() {
				w := &countingWriter{}
				benchApply(b, p, w)
				writes += w.writes
			}
			b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
		})
	}
}

// BenchmarkNoopPlan parses the state written by an apply and plans again, as
// `lepton plan` does after `lepton apply`.
func BenchmarkNoopPlan(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			p := benchPlanner(benchLoad(b, dir, n), dir)
			raw := benchApply(b, p, &countingWriter{})
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			for b.Loop() {
				st, err := state.Parse(raw)
				if err != nil {
					b.Fatal(err)
				}
				plan, d := p.Plan(context.Background(), st, planner.Options{Refresh: true, Parallelism: 10})
				if d.HasErrors() || plan.HasChanges() {
					b.Fatalf("no-op plan has changes or errors: %v", d)
				}
			}
		})
	}
}

func BenchmarkRenderHumanCreates(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			p := benchPlanner(benchLoad(b, dir, n), dir)
			plan, d := p.Plan(context.Background(), nil, planner.Options{Refresh: true, Parallelism: 10})
			if d.HasErrors() {
				b.Fatal(d)
			}
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			for b.Loop() {
				planner.RenderHuman(io.Discard, plan, planner.Colors{})
			}
		})
	}
}

func BenchmarkStateEncode(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			p := benchPlanner(benchLoad(b, dir, n), dir)
			st, err := state.Parse(benchApply(b, p, &countingWriter{}))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			for b.Loop() {
				if _, err := st.Encode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
