//go:build linux || darwin

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/leptonml/lepton/internal/state"
)

// slowProject is a project of n datasets, each read from a named pipe that
// the test feeds slowly, so that every read of a source (at plan and again at
// apply) takes about delay: long operations without test-only knobs in the
// product.
type slowProject struct {
	dir    string
	n      int
	delay  time.Duration
	active atomic.Int64 // feeders between open and close
	stop   atomic.Bool
	wg     sync.WaitGroup
}

func newSlowProject(t *testing.T, n int, delay time.Duration) *slowProject {
	t.Helper()
	p := &slowProject{dir: t.TempDir(), n: n, delay: delay}
	// Separate blocks rather than count: the planner plans a resource's
	// instances one after the other, blocks in parallel.
	var cfg, refs strings.Builder
	fmt.Fprintf(&cfg, "# %d datasets read from named pipes fed slowly by the test.\n", n)
	for i := range n {
		fmt.Fprintf(&cfg, "\ndataset \"d%d\" {\n  source {\n    file = \"data/p%d.csv\"\n  }\n}\n", i, i)
		fmt.Fprintf(&refs, "dataset.d%d.rows, ", i)
	}
	fmt.Fprintf(&cfg, "\noutput \"rows\" {\n  value = sum([%s])\n}\n", refs.String())
	write(t, p.dir, "main.lep.hcl", cfg.String())
	if err := os.MkdirAll(filepath.Join(p.dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		path := p.pipe(i)
		if err := syscall.Mkfifo(path, 0o644); err != nil {
			t.Fatalf("mkfifo: %v", err)
		}
		p.wg.Add(1)
		go p.feed(path, i)
	}
	t.Cleanup(p.close)
	return p
}

func (p *slowProject) pipe(i int) string {
	return filepath.Join(p.dir, "data", fmt.Sprintf("p%d.csv", i))
}

// feed serves every open of the pipe with the same content, in three chunks
// delay/3 apart. A reader killed mid-way makes a write fail (EPIPE); the
// feeder then starts over for the next reader.
func (p *slowProject) feed(path string, i int) {
	defer p.wg.Done()
	chunks := []string{"x,y\n", fmt.Sprintf("%d,1\n", i), fmt.Sprintf("%d,2\n", i+1)}
	for !p.stop.Load() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0) // blocks until a reader opens
		if err != nil {
			return
		}
		// A reader sees EOF only when no writer holds the pipe: reopening
		// the same pipe for the next round could join this round to the
		// next one in a slow reader. So the next reader gets a new pipe,
		// renamed into place atomically; this one ends with this round.
		next := path + ".next"
		if err := syscall.Mkfifo(next, 0o644); err == nil {
			os.Rename(next, path)
		}
		p.active.Add(1)
		for _, c := range chunks {
			if p.stop.Load() {
				break
			}
			time.Sleep(p.delay / 3)
			if _, err := f.WriteString(c); err != nil {
				break
			}
		}
		f.Close()
		p.active.Add(-1)
	}
}

// quiesce waits until no feeder is still writing to a reader that is gone.
func (p *slowProject) quiesce(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.active.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d pipe feeders still busy 10s after the reader died", p.active.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *slowProject) close() {
	p.stop.Store(true)
	// Release feeders blocked in open by opening each pipe for reading.
	for i := range p.n {
		if f, err := os.OpenFile(p.pipe(i), os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			time.Sleep(time.Millisecond)
			f.Close()
		}
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// running is a lepton process whose output lines are collected as they come.
type running struct {
	cmd      *exec.Cmd
	mu       sync.Mutex
	lines    []string
	stderr   strings.Builder
	started  chan struct{} // closed at the first "Creating..." line
	done     chan struct{} // closed when stdout reaches EOF
	onceStrt sync.Once
}

func start(t *testing.T, dir string, args ...string) *running {
	t.Helper()
	r := &running{cmd: cmdIn(dir, nil, args...), started: make(chan struct{}), done: make(chan struct{})}
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stderr = &syncWriter{mu: &r.mu, w: &r.stderr}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			r.mu.Lock()
			r.lines = append(r.lines, line)
			r.mu.Unlock()
			if strings.HasSuffix(line, ": Creating...") {
				r.onceStrt.Do(func() { close(r.started) })
			}
		}
		io.Copy(io.Discard, out)
	}()
	return r
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// waitStarted waits for the first "Creating..." line; the test fails if the
// process ends first.
func waitStarted(t *testing.T, r *running) {
	t.Helper()
	select {
	case <-r.started:
	case <-r.done:
		select {
		case <-r.started:
			return
		default:
		}
		code := r.wait(t)
		out, errOut := r.output()
		t.Fatalf("lepton ended (exit %d) before creating anything:\n%s\n%s", code, out, errOut)
	}
}

// wait waits for the process and its output; it returns the exit code.
func (r *running) wait(t *testing.T) int {
	t.Helper()
	<-r.done
	err := r.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	}
	t.Fatalf("waiting for lepton: %v", err)
	return -1
}

func (r *running) output() (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n"), r.stderr.String()
}

// completed lists the addresses whose "Creation complete" line was printed.
func (r *running) completed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.lines {
		if addr, _, ok := strings.Cut(l, ": Creation complete"); ok {
			out = append(out, addr)
		}
	}
	return out
}

// checkState checks that the state file (if any) parses and holds every
// address in done as ready; it returns how many resources it holds.
func checkState(t *testing.T, dir string, done []string) int {
	t.Helper()
	p := filepath.Join(dir, "lepton.state.json")
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		if len(done) > 0 {
			t.Fatalf("no state file, yet %d creations were reported complete", len(done))
		}
		return 0
	}
	st := readState(t, dir)
	for _, a := range done {
		res := st.Find(a)
		if res == nil {
			t.Fatalf("%s was reported complete but is not in state (serial %d, %d resources)", a, st.Serial, len(st.Resources))
		}
		if res.Status != "ready" {
			t.Fatalf("%s was reported complete but has status %q", a, res.Status)
		}
	}
	if b, err := os.ReadFile(p + ".backup"); err == nil {
		if _, err := state.Parse(b); err != nil {
			t.Fatalf("the state backup does not parse: %v", err)
		}
	}
	return len(st.Resources)
}

// converge runs apply to the end and checks that a plan then has nothing to do.
func converge(t *testing.T, p *slowProject, n int) {
	t.Helper()
	r := start(t, p.dir, "apply", "-auto-approve", "-parallelism=20")
	code := r.wait(t)
	out, errOut := r.output()
	if code != 0 || !strings.Contains(out, "Apply complete!") && !strings.Contains(out, "No changes.") {
		t.Fatalf("re-apply after the kills: exit %d\n%s\n%s", code, out, errOut)
	}
	p.quiesce(t)
	if got := ok(t, p.dir, "output", "-raw", "rows").stdout; got != fmt.Sprint(2*n) {
		t.Errorf("after the re-apply, output rows = %q, want %d", got, 2*n)
	}
	r = start(t, p.dir, "plan", "-detailed-exitcode")
	code = r.wait(t)
	out, errOut = r.output()
	if code != 0 || !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after the re-apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := checkState(t, p.dir, nil); got != n {
		t.Fatalf("state holds %d resources after converging, want %d", got, n)
	}
	p.quiesce(t)
}

// TestKillDuringApply SIGKILLs apply at random moments, at least 50 times.
// After each kill the state parses and holds every resource whose creation
// was reported complete; the next apply continues from there (and is killed
// again), and every few kills a full apply converges to "No changes.".
func TestKillDuringApply(t *testing.T) {
	const n = 200
	p := newSlowProject(t, n, 24*time.Millisecond)
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d", seed)

	// Calibrate: how long a full apply runs after its first "Creating...".
	t0 := time.Now()
	r := start(t, p.dir, "apply", "-auto-approve", "-parallelism=20")
	waitStarted(t, r)
	applyStart := time.Now()
	if code := r.wait(t); code != 0 {
		out, errOut := r.output()
		t.Fatalf("calibration apply: exit %d\n%s\n%s", code, out, errOut)
	}
	window := time.Since(applyStart)
	t.Logf("a full apply of %d slow datasets: %v (%v after the first create)", n, time.Since(t0).Round(time.Millisecond), window.Round(time.Millisecond))
	checkState(t, p.dir, r.completed())
	p.quiesce(t)

	reset := func() {
		for _, f := range []string{"lepton.state.json", "lepton.state.json.backup"} {
			os.Remove(filepath.Join(p.dir, f))
		}
		os.RemoveAll(filepath.Join(p.dir, ".lepton"))
	}
	kills, finished, converged := 0, 0, 0
	for kills < 50 {
		// From an empty state, up to three applies in a row are killed,
		// each resuming from what the previous one left; then one runs to
		// the end and a plan must find nothing to do.
		reset()
		held := 0
		for k := 0; k < 3 && kills < 50; k++ {
			r := start(t, p.dir, "apply", "-auto-approve", "-parallelism=20")
			// Most kills land in the apply phase; some during the plan.
			if rng.IntN(10) > 0 {
				select {
				case <-r.started:
				case <-r.done:
				}
			}
			left := float64(n-held) / float64(n)
			time.Sleep(time.Duration(rng.Float64() * left * float64(window)))
			killed := r.cmd.Process.Signal(syscall.SIGKILL) == nil
			code := r.wait(t)
			p.quiesce(t)
			held = checkState(t, p.dir, r.completed())
			if code == -int(syscall.SIGKILL) && killed {
				kills++
				continue
			}
			if code != 0 {
				out, errOut := r.output()
				t.Fatalf("apply ended with exit %d before the kill:\n%s\n%s", code, out, errOut)
			}
			finished++
			break
		}
		converge(t, p, n)
		converged++
	}
	t.Logf("%d kills, %d applies finished before their kill, %d convergences", kills, finished, converged)
}

// TestConcurrentApplies: while one apply runs, a second fails at once naming
// the lock holder; a third with -lock-timeout waits for it and succeeds.
func TestConcurrentApplies(t *testing.T) {
	p := newSlowProject(t, 60, 60*time.Millisecond)
	first := start(t, p.dir, "apply", "-auto-approve")
	select {
	case <-first.started:
	case <-first.done:
		out, errOut := first.output()
		t.Fatalf("the first apply ended early:\n%s\n%s", out, errOut)
	}
	t0 := time.Now()
	second := lep(t, p.dir, "apply", "-auto-approve")
	if second.code != 1 {
		t.Fatalf("second apply: want exit 1, got\n%s", second)
	}
	if time.Since(t0) > 10*time.Second {
		t.Errorf("the second apply took %v to fail: it should fail at once", time.Since(t0))
	}
	who := state.Who()
	contains(t, second.stderr, "locked", who, `"apply"`, "since "+time.Now().UTC().Format("2006-01-02T"), fmt.Sprintf("pid %d", first.cmd.Process.Pid))
	plan := lep(t, p.dir, "plan")
	if plan.code != 1 || !strings.Contains(plan.stderr, "locked") {
		t.Errorf("plan during an apply: want exit 1 naming the lock, got\n%s", plan)
	}

	third := start(t, p.dir, "apply", "-auto-approve", "-lock-timeout=120s")
	if code := first.wait(t); code != 0 {
		out, errOut := first.output()
		t.Fatalf("first apply: exit %d\n%s\n%s", code, out, errOut)
	}
	code := third.wait(t)
	out, errOut := third.output()
	if code != 0 || !strings.Contains(out, "No changes.") {
		t.Fatalf("apply with -lock-timeout: exit %d\n%s\n%s", code, out, errOut)
	}
	checkState(t, p.dir, first.completed())
}

// TestInterrupt: one Ctrl-C stops scheduling, lets running work finish,
// persists and exits 1; two stop at once. State parses either way and a
// re-apply converges.
func TestInterrupt(t *testing.T) {
	const n = 120
	p := newSlowProject(t, n, 60*time.Millisecond)
	r := start(t, p.dir, "apply", "-auto-approve")
	waitStarted(t, r)
	time.Sleep(300 * time.Millisecond)
	before := len(r.completed())
	if err := r.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	code := r.wait(t)
	out, errOut := r.output()
	if code != 1 {
		t.Fatalf("apply after Ctrl-C: want exit 1, got %d\n%s\n%s", code, out, errOut)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("apply took %v to stop after Ctrl-C", d)
	}
	contains(t, errOut, "Interrupt received", "Apply interrupted")
	lacks(t, out, "Apply complete!")
	done := r.completed()
	held := checkState(t, p.dir, done)
	if held >= n {
		t.Errorf("Ctrl-C did not stop the apply: all %d resources were created", n)
	}
	// Work that was running when Ctrl-C came finished and was recorded.
	if len(done) < before {
		t.Errorf("%d creations reported before Ctrl-C, %d after", before, len(done))
	}
	starts := strings.Count(out, ": Creating...")
	if starts != len(done) {
		t.Errorf("%d creates started but %d completed: running work must finish after one Ctrl-C\n%s", starts, len(done), out)
	}
	p.quiesce(t)

	// Two Ctrl-C: stop at once, state still parses.
	os.Remove(filepath.Join(p.dir, "lepton.state.json"))
	r = start(t, p.dir, "apply", "-auto-approve")
	waitStarted(t, r)
	time.Sleep(200 * time.Millisecond)
	r.cmd.Process.Signal(os.Interrupt)
	time.Sleep(20 * time.Millisecond)
	r.cmd.Process.Signal(os.Interrupt)
	t0 = time.Now()
	code = r.wait(t)
	out, errOut = r.output()
	if code != 1 {
		t.Fatalf("apply after two Ctrl-C: want exit 1, got %d\n%s\n%s", code, out, errOut)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("apply took %v to stop after two Ctrl-C", d)
	}
	contains(t, errOut, "Stopping now")
	checkState(t, p.dir, r.completed())
	p.quiesce(t)
	converge(t, p, n)
}
