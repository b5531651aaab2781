// Command bigfile measures a no-op plan over a file dataset of several
// gigabytes: with the plan's hash cache (size, mtime, ctime and inode
// unchanged since the last hash, as git's index checks) the plan does not
// read the file again; without it (the cache removed) it hashes every byte.
//
//	go run ./bench/bigfile -bin /tmp/lepton -gb 2 -runs 3
//
// It writes the CSV into a temporary directory (removed at the end; never
// committed), applies a dataset over it once (which reads it all), then times
// `lepton plan` runs that must say "No changes": first with the cache as the
// apply's plan left it, then each after removing the cache. It prints a
// Markdown table of medians with each run's wall and CPU time.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "", "the lepton binary (required)")
	gb := flag.Float64("gb", 2, "size of the generated CSV in GB (10^9 bytes)")
	runs := flag.Int("runs", 3, "runs of each measurement")
	work := flag.String("work", "", "work directory (default: a new temporary directory, removed at the end)")
	flag.Parse()
	if err := run(*bin, *gb, *runs, *work); err != nil {
		fmt.Fprintln(os.Stderr, "bench/bigfile:", err)
		os.Exit(1)
	}
}

const config = `dataset "big" {
  source {
    file = "big.csv"
  }
  label    = "label"
  features = ["x"]
}
`

func run(bin string, gb float64, runs int, work string) error {
	if bin == "" {
		return errors.New("-bin is required (go build -o /tmp/lepton ./cmd/lepton)")
	}
	if runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	if work == "" {
		dir, err := os.MkdirTemp("", "lepton-bigfile-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	size, err := generate(filepath.Join(work, "big.csv"), int64(gb*1e9))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "main.lep.hcl"), []byte(config), 0o644); err != nil {
		return err
	}
	applyS, err := lepton(bin, work, "Apply complete! Resources: 1 added", "apply", "-auto-approve", "-no-color", "-input=false")
	if err != nil {
		return err
	}
	noop := "No changes. Your infrastructure matches the configuration."
	var warm, cold []sample
	for i := 0; i < runs; i++ {
		s, err := lepton(bin, work, noop, "plan", "-no-color", "-input=false", "-detailed-exitcode")
		if err != nil {
			return err
		}
		warm = append(warm, s)
	}
	for i := 0; i < runs; i++ {
		if err := os.RemoveAll(filepath.Join(work, ".lepton", "filehash")); err != nil {
			return err
		}
		s, err := lepton(bin, work, noop, "plan", "-no-color", "-input=false", "-detailed-exitcode")
		if err != nil {
			return err
		}
		cold = append(cold, s)
	}
	fmt.Printf("lepton no-op plan over a %.2f GB CSV file dataset: %s/%s, %d CPUs, %d runs each, medians\n\n", float64(size)/1e9, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runs)
	fmt.Println("| operation | wall (median) | wall (all runs) | CPU user+sys (median) |")
	fmt.Println("|---|---:|---|---:|")
	fmt.Printf("| apply (reads the file once) | %s | %s | %s |\n", secs(applyS.wall), secs(applyS.wall), secs(applyS.cpu))
	for _, r := range []struct {
		name string
		s    []sample
	}{{"no-op plan, hash cache valid", warm}, {"no-op plan, hash cache removed (hashes every byte)", cold}} {
		walls, cpus := make([]time.Duration, len(r.s)), make([]time.Duration, len(r.s))
		var all []string
		for i, s := range r.s {
			walls[i], cpus[i] = s.wall, s.cpu
			all = append(all, secs(s.wall))
		}
		fmt.Printf("| %s | %s | %s | %s |\n", r.name, secs(median(walls)), strings.Join(all, ", "), secs(median(cpus)))
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("\nload average at the end: %s", load)
	}
	return nil
}

// generate writes a CSV of about size bytes: a feature x, a 0/1 label and a
// text column the dataset does not use, so loading it once at apply keeps
// little in memory while the file is as large as asked.
func generate(path string, size int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	pad := strings.Repeat("abcdefghij", 100)
	var n int64
	k, _ := w.WriteString("x,label,pad\n")
	n += int64(k)
	for i := 0; n < size; i++ {
		k, err := fmt.Fprintf(w, "%d.%d,%d,%s\n", i%1000, i%7, i%2, pad)
		if err != nil {
			f.Close()
			return 0, err
		}
		n += int64(k)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return n, f.Close()
}

type sample struct{ wall, cpu time.Duration }

func lepton(bin, dir, want string, args ...string) (sample, error) {
	var out, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &stderr
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("lepton %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), stderr.String())
	}
	if !strings.Contains(out.String(), want) {
		return sample{}, fmt.Errorf("lepton %s: output lacks %q:\n%s", strings.Join(args, " "), want, out.String())
	}
	s := sample{wall: wall}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }
