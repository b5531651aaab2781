// Command data benchmarks runtime/data against a plain buffered scan of the
// same file, in the same run:
//
//	go run ./bench/data -rows 1000000 -cols 20 -reps 5
//
// It writes a numeric CSV (cols-1 features with about 0.5% missing cells, and
// an integer label), warms the page cache (or, with -cold, empties it before
// every measurement), then alternates a bufio line scan
// and a full data.Load (missing = mean, normalize = zscore, an 80/10/10
// split) in child processes, so each one's peak RSS is its own. It prints the
// medians, the throughput ratio (wall clock and CPU seconds) and peak memory
// against the size of the float32 output, and the load average (the figures
// of a shared machine are inflated). LEPTON_BENCH_CPUPROFILE and
// LEPTON_BENCH_TRACE name files for a CPU profile or an execution trace of
// each load.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/leptonml/lepton/runtime/data"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "rows")
	cols := flag.Int("cols", 20, "columns, the label included")
	reps := flag.Int("reps", 5, "repetitions of each measurement")
	dir := flag.String("dir", "", "where to write the CSV (default: a temporary directory)")
	cold := flag.Bool("cold", false, "drop the page cache before every measurement (Linux, root), so both read the file from storage instead of memory")
	child := flag.String("child", "", "internal: run one measurement (scan|load) on -file")
	file := flag.String("file", "", "internal: the CSV")
	flag.Parse()
	if *child != "" {
		if err := runChild(*child, *file); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := run(*rows, *cols, *reps, *dir, *cold); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(rows, cols, reps int, dir string, cold bool) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "lepton-bench-data")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	path := filepath.Join(dir, "bench.csv")
	size, err := generate(path, rows, cols)
	if err != nil {
		return err
	}
	fmt.Printf("file: %d rows x %d columns, %.1f MB; GOMAXPROCS %d, %s; load average %s\n", rows, cols, float64(size)/1e6, runtime.GOMAXPROCS(0), runtime.Version(), loadavg())
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if _, _, err := measure(self, "scan", path); err != nil { // warm the page cache
		return err
	}
	prepare := func() error { return nil }
	if cold {
		prepare = dropCaches
		fmt.Println("cold: the page cache is dropped before each measurement; both read the file from storage")
	}
	var scan, load, scanCPU, loadCPU []float64
	var scanRSS, loadRSS, outMBs []float64
	var last string
	for i := 0; i < reps; i++ {
		if err := prepare(); err != nil {
			return err
		}
		s, rss, cpu, err := measureCPU(self, "scan", path)
		if err != nil {
			return err
		}
		scan, scanRSS, scanCPU = append(scan, s), append(scanRSS, rss), append(scanCPU, cpu)
		if err := prepare(); err != nil {
			return err
		}
		cmd := exec.Command(self, "-child", "load", "-file", path)
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		loadCPU = append(loadCPU, time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds())
		var secs, peakHeap, rssMB, outMB float64
		var n int
		if _, err := fmt.Sscanf(string(out), "%f %f %f %f %d", &secs, &peakHeap, &rssMB, &outMB, &n); err != nil {
			return fmt.Errorf("child output %q: %w", out, err)
		}
		load, loadRSS, outMBs = append(load, secs), append(loadRSS, rssMB), append(outMBs, outMB)
		last = fmt.Sprintf("peak heap %.0f MB, peak RSS %.0f MB = %.2fx the float32 output of %.0f MB, %d rows", peakHeap, rssMB, rssMB/outMB, outMB, n)
	}
	ms, ml := median(scan), median(load)
	fmt.Printf("raw scan (bufio.Scanner, lines): median %.3f s = %.0f MB/s  (runs: %s)\n", ms, float64(size)/1e6/ms, list(scan))
	fmt.Printf("data.Load (read, missing=mean, zscore, 80/10/10 split): median %.3f s = %.0f MB/s  (runs: %s)\n", ml, float64(size)/1e6/ml, list(load))
	fmt.Printf("ratio load/raw throughput (wall clock): %.2f\n", ms/ml)
	fmt.Printf("CPU seconds (user+system, all threads): scan median %.3f (runs: %s), load median %.3f (runs: %s); ratio %.2f\n",
		median(scanCPU), list(scanCPU), median(loadCPU), list(loadCPU), median(scanCPU)/median(loadCPU))
	fmt.Printf("memory of the last load: %s; median peak RSS %.0f MB (scan: %.0f MB)\n", last, median(loadRSS), median(scanRSS))
	fmt.Printf("summary: ratio wall %.3f, ratio CPU %.3f (goal >= 0.3); peak RSS %.2fx the float32 output (goal < 3); load average after the run %s\n",
		ms/ml, median(scanCPU)/median(loadCPU), median(loadRSS)/median(outMBs), loadavg())
	return nil
}

// dropCaches writes dirty pages out and empties the page cache.
func dropCaches() error {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200); err != nil {
		return fmt.Errorf("-cold needs Linux and root to drop the page cache: %w", err)
	}
	return nil
}

// loadavg is the 1, 5 and 15 minute load averages (the machine may be
// shared: figures taken under load are inflated), or "?".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func list(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatFloat(x, 'f', 3, 64)
	}
	return strings.Join(s, " ")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// measure runs a scan child and returns its time and peak RSS in MB.
func measure(self, mode, path string) (float64, float64, error) {
	secs, rss, _, err := measureCPU(self, mode, path)
	return secs, rss, err
}

// measureCPU also returns the child's CPU time (user + system, all threads).
func measureCPU(self, mode, path string) (float64, float64, float64, error) {
	cmd := exec.Command(self, "-child", mode, "-file", path)
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%s: %w", mode, err)
	}
	secs, err := strconv.ParseFloat(strings.Fields(string(out))[0], 64)
	if err != nil {
		return 0, 0, 0, err
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return secs, float64(ru.Maxrss) / 1024, cpu, nil
}

func generate(path string, rows, cols int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for j := 0; j < cols-1; j++ {
		fmt.Fprintf(w, "f%d,", j)
	}
	w.WriteString("label\n")
	var buf []byte
	for i := 0; i < rows; i++ {
		buf = buf[:0]
		for j := 0; j < cols-1; j++ {
			if rng.IntN(200) != 0 { // ~0.5% missing cells
				buf = strconv.AppendFloat(buf, rng.NormFloat64()*10+float64(j), 'f', 4, 64)
			}
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, int64(rng.IntN(5)), 10)
		buf = append(buf, '\n')
		w.Write(buf)
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), f.Close()
}

func runChild(mode, path string) error {
	switch mode {
	case "scan":
		start := time.Now()
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(bufio.NewReaderSize(f, 1<<20))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		lines := 0
		for sc.Scan() {
			lines++
		}
		if err := sc.Err(); err != nil {
			return err
		}
		fmt.Printf("%.4f %d\n", time.Since(start).Seconds(), lines)
		return nil
	case "load":
		var peak atomic.Uint64
		stop := make(chan struct{})
		go func() { // sample the heap (runtime/metrics does not stop the world); the RSS peak comes from getrusage
			sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
			for {
				metrics.Read(sample)
				if v := sample[0].Value.Uint64(); v > peak.Load() {
					peak.Store(v)
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		if prof := os.Getenv("LEPTON_BENCH_CPUPROFILE"); prof != "" {
			pf, err := os.Create(prof)
			if err != nil {
				return err
			}
			pprof.StartCPUProfile(pf)
			defer pprof.StopCPUProfile()
		}
		if tf := os.Getenv("LEPTON_BENCH_TRACE"); tf != "" {
			f, err := os.Create(tf)
			if err != nil {
				return err
			}
			trace.Start(f)
			defer trace.Stop()
		}
		start := time.Now()
		ds, err := data.Load(context.Background(), data.Spec{
			BaseDir: filepath.Dir(path), Source: data.Source{File: filepath.Base(path)}, Label: "label",
			Preprocess: data.Preprocess{Missing: "mean", Normalize: "zscore"},
			Split:      &data.Split{Train: 0.8, Validation: 0.1, Test: 0.1, Seed: 1},
		})
		secs := time.Since(start).Seconds()
		close(stop)
		if err != nil {
			return err
		}
		out := 4 * (len(ds.Train.X) + len(ds.Validation.X) + len(ds.Test.X) + len(ds.Train.Y) + len(ds.Validation.Y) + len(ds.Test.Y) +
			len(ds.Train.Target) + len(ds.Validation.Target) + len(ds.Test.Target))
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		fmt.Printf("%.4f %.1f %.1f %.1f %d\n", secs, float64(peak.Load())/1e6, float64(ru.Maxrss)/1024, float64(out)/1e6, ds.Rows)
		return nil
	}
	return fmt.Errorf("unknown child mode %q", mode)
}
