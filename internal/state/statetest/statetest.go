// Package statetest is the conformance suite every state.Backend must pass:
// reads and writes round-trip, stale and foreign writes are refused, the lock
// excludes another process and names its holder, force-unlock clears a lock
// left by a killed process, and a process killed at any instant while it
// writes leaves the previous or the next state, never a torn one.
//
// A backend's test calls Run with a Factory:
//
//	func TestConformance(t *testing.T) {
//		url := statetest.Shared(t, "url", func() string { return startServer(t) })
//		statetest.Run(t, func(t testing.TB, key string) state.Backend { return open(url, key) })
//	}
//
// The suite re-executes the test binary to run the other process; in that
// child, the same test function runs again, Shared returns the parent's value
// instead of starting anything, and Run plays the child's part and exits.
package statetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/leptonml/lepton/internal/state"
)

// Factory returns a Backend on the store named key. Calls with the same key,
// in this process or in a child, must reach the same stored state (as two
// checkouts of one project do); different keys, independent states.
type Factory func(t testing.TB, key string) state.Backend

const (
	envRole   = "LEPTON_STATETEST_ROLE"
	envKey    = "LEPTON_STATETEST_KEY"
	envShared = "LEPTON_STATETEST_SHARED_"
	envDir    = "LEPTON_STATETEST_DIR"
)

// Shared returns a value the test's processes share: in the parent, start's
// result (start runs once); in a child, the parent's value. Use it for a
// fake server's address.
func Shared(t testing.TB, name string, start func() string) string {
	if os.Getenv(envRole) != "" {
		return os.Getenv(envShared + name)
	}
	v := start()
	t.Setenv(envShared+name, v)
	return v
}

// Dir is a directory shared by the test's processes (the local backend's
// files live there).
func Dir(t testing.TB) string {
	return Shared(t, "DIR", func() string { return t.TempDir() })
}

// Run runs the suite against the backends f makes (or, in a child, the
// child's part).
func Run(t *testing.T, f Factory) {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(child(t, f, role, os.Getenv(envKey)))
	}
	ctx := context.Background()
	run := uuid.NewString()[:8]
	key := func(t *testing.T) string {
		return "statetest-" + run + "/" + strings.ReplaceAll(t.Name(), "/", "-")
	}

	t.Run("ReadEmpty", func(t *testing.T) {
		st, err := f(t, key(t)).Read(ctx)
		if err != nil || st != nil {
			t.Fatalf("Read of an empty store = %v, %v; want nil, nil", st, err)
		}
	})

	t.Run("RoundTrip", func(t *testing.T) {
		k := key(t)
		be := f(t, k)
		s := sample(1, 3)
		write(t, be, s, state.WriteOptions{})
		got := read(t, f(t, k)) // another Backend on the same store: another checkout
		if !bytes.Equal(enc(t, got), enc(t, s)) {
			t.Fatalf("read back differs:\n%s\nwant\n%s", enc(t, got), enc(t, s))
		}
		s.Serial = 2
		s.Resources = s.Resources[:1]
		write(t, be, s, state.WriteOptions{})
		if got := read(t, be); got.Serial != 2 || len(got.Resources) != 1 {
			t.Fatalf("after a second write: serial %d, %d resources", got.Serial, len(got.Resources))
		}
		if be.String() == "" {
			t.Error("String is empty")
		}
	})

	t.Run("StaleSerialRefused", func(t *testing.T) {
		k := key(t)
		a, b := f(t, k), f(t, k)
		s := sample(5, 1)
		write(t, a, s, state.WriteOptions{})
		old := s.Clone()
		old.Serial = 4
		old.Resources = nil
		err := state.Write(ctx, b, old, state.WriteOptions{})
		if !errors.Is(err, state.ErrStaleSerial) || !strings.Contains(err.Error(), "serial 4 is older") {
			t.Fatalf("writing serial 4 over 5: %v, want a refusal naming the serials", err)
		}
		if got := read(t, a); got.Serial != 5 || len(got.Resources) != 1 {
			t.Fatalf("a refused write changed the state: serial %d", got.Serial)
		}
		// The same serial again is a retry, and is allowed; -force overrides.
		write(t, b, s, state.WriteOptions{})
		write(t, b, old, state.WriteOptions{Force: true})
		if got := read(t, a); got.Serial != 4 {
			t.Fatalf("forced write: serial %d, want 4", got.Serial)
		}
	})

	t.Run("ForeignLineageRefused", func(t *testing.T) {
		k := key(t)
		a, b := f(t, k), f(t, k)
		s := sample(1, 1)
		write(t, a, s, state.WriteOptions{})
		other := sample(9, 2) // another lineage, a higher serial
		err := state.Write(ctx, b, other, state.WriteOptions{})
		if !errors.Is(err, state.ErrLineage) || !strings.Contains(err.Error(), other.Lineage) || !strings.Contains(err.Error(), s.Lineage) {
			t.Fatalf("writing a foreign lineage: %v, want a refusal naming both lineages", err)
		}
		if got := read(t, a); got.Lineage != s.Lineage {
			t.Fatalf("a refused write changed the lineage to %s", got.Lineage)
		}
		write(t, b, other, state.WriteOptions{Force: true})
		if got := read(t, a); got.Lineage != other.Lineage {
			t.Fatalf("forced write: lineage %s", got.Lineage)
		}
	})

	t.Run("LockExcludesAnotherProcess", func(t *testing.T) {
		k := key(t)
		be := f(t, k)
		h := startChild(t, "hold", k)
		holder := h.lockInfo(t)
		t0 := time.Now()
		_, err := be.Lock(ctx, state.LockInfo{Operation: "apply", Version: "test"}, 0)
		var le *state.LockError
		if !errors.As(err, &le) {
			t.Fatalf("Lock while another process holds it: %v, want a *state.LockError", err)
		}
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("a refused Lock took %v; it must fail at once", d)
		}
		if le.Info.ID != holder.ID || le.Info.PID != h.cmd.Process.Pid || le.Info.Operation != "statetest-hold" || le.Info.Who != state.Who() {
			t.Errorf("refusal names %+v, want the holder %+v (pid %d)", le.Info, holder, h.cmd.Process.Pid)
		}
		for _, w := range []string{holder.ID, `"statetest-hold"`, state.Who(), holder.Created.Format(time.RFC3339)} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("refusal lacks %q:\n%v", w, err)
			}
		}
		if err := be.ForceUnlock(ctx, "not-the-id"); err == nil {
			t.Error("ForceUnlock with a wrong ID succeeded")
		}
		// A waiting Lock gets it once the holder lets go.
		go h.release()
		info, err := be.Lock(ctx, state.LockInfo{Operation: "apply", Version: "test"}, 30*time.Second)
		if err != nil {
			t.Fatalf("Lock with a timeout after the holder released: %v", err)
		}
		if err := h.wait(); err != nil {
			t.Fatalf("holder: %v", err)
		}
		// Now this process holds it: a child is refused, and told who holds it.
		tr := startChild(t, "try", k)
		out, err := tr.finish()
		if code := exitCode(err); code != 2 || !strings.Contains(out, info.ID) {
			t.Fatalf("child Lock while this process holds it: exit %d, output %q; want 2 naming %s", code, out, info.ID)
		}
		if err := be.Unlock(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
		tr = startChild(t, "try", k)
		if out, err := tr.finish(); err != nil {
			t.Fatalf("child Lock after Unlock: %v: %s", err, out)
		}
	})

	t.Run("ForceUnlockAfterKill", func(t *testing.T) {
		k := key(t)
		h := startChild(t, "hold", k)
		holder := h.lockInfo(t)
		h.kill()
		be := f(t, k)
		if err := be.ForceUnlock(ctx, holder.ID+"x"); err == nil {
			t.Fatal("ForceUnlock with a wrong ID succeeded")
		}
		if err := be.ForceUnlock(ctx, holder.ID); err != nil {
			t.Fatalf("ForceUnlock of a killed holder's lock: %v", err)
		}
		info, err := be.Lock(ctx, state.LockInfo{Operation: "apply", Version: "test"}, 0)
		if err != nil {
			t.Fatalf("Lock after force-unlock: %v", err)
		}
		if err := be.Unlock(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
		if err := be.ForceUnlock(ctx, info.ID); err == nil {
			t.Error("ForceUnlock of an unlocked state succeeded")
		}
	})

	t.Run("KillLeavesPreviousOrNext", func(t *testing.T) {
		k := key(t)
		be := f(t, k)
		write(t, be, sample(1, 1), state.WriteOptions{})
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
		for round := range 6 {
			w := startChild(t, "write", k)
			// The child reports each serial once its write returned.
			last := uint64(0)
			lines := make(chan uint64, 1024)
			go func() {
				sc := bufio.NewScanner(w.stdout)
				for sc.Scan() {
					if n, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "wrote "), 10, 64); err == nil {
						lines <- n
					}
				}
				close(lines)
			}()
			// Wait for the first write, then kill at a random instant.
			select {
			case last = <-lines:
			case <-time.After(60 * time.Second):
				w.kill()
				t.Fatal("the writer wrote nothing in 60s")
			}
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
			w.kill()
			for n := range lines {
				last = n
			}
			got, err := be.Read(ctx)
			if err != nil {
				t.Fatalf("round %d: after a kill the state does not read: %v", round, err)
			}
			if got == nil || (got.Serial != last && got.Serial != last+1) {
				t.Fatalf("round %d: after a kill the state is %v; the writer last finished serial %d, so want %d or %d", round, got, last, last, last+1)
			}
			if len(got.Resources) != 1 || got.Find(`dataset.payload`) == nil {
				t.Fatalf("round %d: serial %d has %d resources", round, got.Serial, len(got.Resources))
			}
		}
	})
}

// sample is a state with n resources at serial, on a fresh lineage.
func sample(serial uint64, n int) *state.State {
	s := state.New("statetest")
	s.Serial = serial
	for i := range n {
		s.Put(&state.Resource{Address: fmt.Sprintf("dataset.d%d", i), Kind: "dataset", Name: fmt.Sprintf("d%d", i), Provider: "local", Status: state.StatusReady,
			Attributes: json.RawMessage(fmt.Sprintf(`{"rows":%d,"path":"data/%d.csv"}`, i*10, i))})
	}
	s.Outputs["rows"] = state.Output{Value: json.RawMessage(`3`), Type: json.RawMessage(`"number"`)}
	return s
}

func enc(t testing.TB, s *state.State) []byte {
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t testing.TB, be state.Backend, s *state.State, o state.WriteOptions) {
	t.Helper()
	if err := state.Write(context.Background(), be, s, o); err != nil {
		t.Fatalf("write serial %d: %v", s.Serial, err)
	}
}

func read(t testing.TB, be state.Backend) *state.State {
	t.Helper()
	s, err := be.Read(context.Background())
	if err != nil || s == nil {
		t.Fatalf("Read = %v, %v", s, err)
	}
	return s
}

// proc is a child process of the suite.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	out    *bufio.Reader
	stderr bytes.Buffer
}

func startChild(t *testing.T, role, key string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+strings.Split(t.Name(), "/")[0]+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), envRole+"="+role, envKey+"="+key)
	p := &proc{cmd: cmd}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if p.stdout, err = cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	p.out = bufio.NewReader(p.stdout)
	return p
}

// lockInfo reads the line where a holder reports its lock.
func (p *proc) lockInfo(t *testing.T) state.LockInfo {
	t.Helper()
	line, err := p.out.ReadString('\n')
	if err != nil {
		p.cmd.Wait()
		t.Fatalf("the holder reported no lock: %v; stderr:\n%s", err, p.stderr.String())
	}
	var info state.LockInfo
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "locked ")), &info); err != nil || info.ID == "" {
		t.Fatalf("holder said %q (%v); stderr:\n%s", line, err, p.stderr.String())
	}
	return info
}

func (p *proc) release() { p.stdin.Close() }

func (p *proc) wait() error {
	io.Copy(io.Discard, p.out)
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("%w; stderr:\n%s", err, p.stderr.String())
	}
	return nil
}

func (p *proc) finish() (string, error) {
	p.stdin.Close()
	b, _ := io.ReadAll(p.out)
	err := p.cmd.Wait()
	return string(b) + p.stderr.String(), err
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// child plays a role and returns the exit code.
func child(t *testing.T, f Factory, role, key string) int {
	ctx := context.Background()
	be := f(t, key)
	switch role {
	case "hold":
		// Take the lock, say so, hold it until stdin closes, release it.
		info, err := be.Lock(ctx, state.LockInfo{Operation: "statetest-hold", Version: "test"}, 30*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		b, _ := json.Marshal(info)
		fmt.Printf("locked %s\n", b)
		io.Copy(io.Discard, os.Stdin)
		if err := be.Unlock(ctx, info.ID); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "try":
		// Try the lock once: exit 2 (printing the refusal) when it is held.
		info, err := be.Lock(ctx, state.LockInfo{Operation: "statetest-try", Version: "test"}, 0)
		var le *state.LockError
		if errors.As(err, &le) {
			fmt.Println(err)
			return 2
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := be.Unlock(ctx, info.ID); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "write":
		// Write state in a loop, each version a little different and large
		// enough that a kill often lands inside a write, until killed.
		s, err := be.Read(ctx)
		if err != nil || s == nil {
			fmt.Fprintln(os.Stderr, "read:", err)
			return 1
		}
		pad := strings.Repeat("x", 256<<10)
		for {
			s.Serial++
			s.Resources = []*state.Resource{{Address: "dataset.payload", Kind: "dataset", Name: "payload", Provider: "local", Status: state.StatusReady,
				Attributes: json.RawMessage(fmt.Sprintf(`{"serial":%d,"pad":%q}`, s.Serial, pad[:len(pad)-int(s.Serial%1000)]))}}
			if err := state.Write(ctx, be, s, state.WriteOptions{}); err != nil {
				fmt.Fprintln(os.Stderr, "write:", err)
				return 1
			}
			fmt.Printf("wrote %d\n", s.Serial)
		}
	}
	fmt.Fprintln(os.Stderr, "unknown statetest role", role)
	return 1
}
