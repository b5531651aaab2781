// Command core measures the lepton binary on the core issue's benchmark:
// configurations of N inline datasets where every 10th depends on the one
// before it; plan from empty, apply from empty (state persisted per
// resource), and a no-op plan after the apply. It prints a Markdown table of
// medians: wall time, CPU time (user+system) and peak resident memory of the
// lepton process, read from the child's rusage.
//
//	go run ./bench/core -bin /tmp/lepton -sizes 1000,10000 -runs 5
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/leptonml/lepton/bench/internal/benchbin"
)

// The figures the issue gives for OpenTofu 1.12 on this kind of machine, for
// 10,000 terraform_data resources (not measured here).
var reference = map[string]struct {
	wall time.Duration
	rss  int64 // bytes; 0 when not given
}{
	"plan from empty":  {32 * time.Second, 0},
	"apply from empty": {50 * time.Second, 0},
	"no-op plan":       {49 * time.Second, 1300 << 20},
}

// Config returns the benchmark configuration of n datasets.
func Config(n int) []byte {
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

// sample is one measured run of the binary.
type sample struct {
	wall, cpu time.Duration
	rss       int64 // bytes
}

type row struct {
	n       int
	op      string
	samples []sample
}

func main() {
	bin := flag.String("bin", "", "the lepton binary (default: build ./cmd/lepton into the work directory)")
	sizes := flag.String("sizes", "1000,10000", "comma-separated numbers of datasets")
	runs := flag.Int("runs", 5, "runs of each measurement (the table shows medians)")
	work := flag.String("work", "", "work directory (default: a new temporary directory, removed at the end)")
	flag.Parse()
	if err := run(*bin, *sizes, *runs, *work); err != nil {
		fmt.Fprintln(os.Stderr, "bench/core:", err)
		os.Exit(1)
	}
}

func run(bin, sizes string, runs int, work string) error {
	if runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	bin, work, cleanup, err := benchbin.Prepare(bin, work, "lepton-bench-core-")
	if err != nil {
		return err
	}
	defer cleanup()
	var ns []int
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("bad size %q", s)
		}
		ns = append(ns, n)
	}
	var rows []row
	for _, n := range ns {
		r, err := measure(bin, filepath.Join(work, fmt.Sprintf("n%d", n)), n, runs)
		if err != nil {
			return fmt.Errorf("%d datasets: %w", n, err)
		}
		rows = append(rows, r...)
	}
	printTable(os.Stdout, rows, runs)
	return nil
}

// measure runs the three operations on n datasets in dir.
func measure(bin, dir string, n, runs int) ([]row, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), Config(n), 0o644); err != nil {
		return nil, err
	}
	fresh := func() error {
		for _, p := range []string{"lepton.state.json", "lepton.state.json.backup", "lepton.state.json.lock", ".lepton"} {
			if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
				return err
			}
		}
		return nil
	}
	planEmpty := row{n: n, op: "plan from empty"}
	apply := row{n: n, op: "apply from empty"}
	noop := row{n: n, op: "no-op plan"}
	for i := 0; i < runs; i++ {
		if err := fresh(); err != nil {
			return nil, err
		}
		s, err := lepton(bin, dir, fmt.Sprintf("Plan: %d to add, 0 to change, 0 to destroy.", n), 0, "plan", "-no-color", "-input=false")
		if err != nil {
			return nil, err
		}
		planEmpty.samples = append(planEmpty.samples, s)
	}
	for i := 0; i < runs; i++ {
		if err := fresh(); err != nil {
			return nil, err
		}
		s, err := lepton(bin, dir, fmt.Sprintf("Apply complete! Resources: %d added, 0 changed, 0 destroyed.", n), 0, "apply", "-auto-approve", "-no-color", "-input=false")
		if err != nil {
			return nil, err
		}
		apply.samples = append(apply.samples, s)
	}
	for i := 0; i < runs; i++ {
		s, err := lepton(bin, dir, "No changes. Your infrastructure matches the configuration.", 0, "plan", "-no-color", "-input=false", "-detailed-exitcode")
		if err != nil {
			return nil, err
		}
		noop.samples = append(noop.samples, s)
	}
	return []row{planEmpty, apply, noop}, nil
}

// lepton runs the binary in dir with stdout to a file (as a pipe to a pager or
// a CI log would take it), checks its exit code and that the output holds want.
func lepton(bin, dir, want string, code int, args ...string) (sample, error) {
	outPath := filepath.Join(dir, "stdout.txt")
	out, err := os.Create(outPath)
	if err != nil {
		return sample{}, err
	}
	defer out.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, &stderr
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return sample{}, err
	}
	if got := cmd.ProcessState.ExitCode(); got != code {
		return sample{}, fmt.Errorf("lepton %s: exit %d, want %d\n%s", strings.Join(args, " "), got, code, stderr.String())
	}
	text, err := os.ReadFile(outPath)
	if err != nil {
		return sample{}, err
	}
	if !bytes.Contains(text, []byte(want)) {
		tail := text[max(0, len(text)-2000):]
		return sample{}, fmt.Errorf("lepton %s: output lacks %q; it ends with:\n%s\n%s", strings.Join(args, " "), want, tail, stderr.String())
	}
	s := sample{wall: wall}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		s.rss = ru.Maxrss * 1024 // kilobytes on Linux
	}
	return s, nil
}

func median[T int64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printTable(w io.Writer, rows []row, runs int) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "lepton core benchmark: %s, %d CPUs (GOMAXPROCS %d), %s, %d runs each, medians\n\n", runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), host, runs)
	fmt.Fprintln(w, "| datasets | operation | wall (median) | wall (min–max) | CPU user+sys (median) | peak RSS (median) | vs OpenTofu 1.12 (10,000, from the issue) |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---|")
	for _, r := range rows {
		var walls, cpus []time.Duration
		var rss []int64
		for _, s := range r.samples {
			walls, cpus, rss = append(walls, s.wall), append(cpus, s.cpu), append(rss, s.rss)
		}
		wall, peak := median(walls), median(rss)
		ratio := ""
		if ref, ok := reference[r.op]; ok && r.n == 10000 {
			ratio = fmt.Sprintf("%.0f× faster (%s)", float64(ref.wall)/float64(wall), ref.wall)
			if ref.rss > 0 && peak > 0 {
				ratio += fmt.Sprintf("; %.1f× less memory (%d MB)", float64(ref.rss)/float64(peak), ref.rss>>20)
			}
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s–%s | %s | %d MB | %s |\n", r.n, r.op, fmtDur(wall), fmtDur(slices.Min(walls)), fmtDur(slices.Max(walls)), fmtDur(median(cpus)), peak>>20, ratio)
	}
}

func fmtDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
