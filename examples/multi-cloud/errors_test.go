package multicloud_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/runstore"
)

// A run on a named cluster that goes wrong in the ways the run storage and
// the nodes can, through the binaries and the sandbox: a node that stops
// heartbeating (its processes frozen with SIGSTOP: the instance is still
// up, its agent says nothing), a status object that is not JSON, and a
// model object that is gone when apply downloads it. Each is an error that
// names the node or the object; the state file stays whole, with every
// resource, and a run that may still be fine stays recorded so that the
// next apply waits for it instead of starting it again.

// errorsProject is the example's cluster and training (no endpoint), long
// enough to be caught in the middle of. max_restarts = 0: a lost node is
// an error, not a recovery.
func errorsProject(t *testing.T) string {
	t.Helper()
	dir := project(t, "aws")
	hcl := filepath.Join(dir, "main.lep.hcl")
	b, err := os.ReadFile(hcl)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	cfg = cfg[:strings.Index(cfg, "endpoint \"flowers\"")] + "output \"model\" {\n  value = training.flowers.model\n}\n"
	cfg = strings.Replace(cfg, "epochs = 200", "epochs = 4000", 1)
	cfg = strings.Replace(cfg, "  seed   = 7\n", "  seed   = 7\n  max_restarts = 0\n", 1)
	if err := os.WriteFile(hcl, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

var startedRun = regexp.MustCompile(`started run (training\.flowers-\S+) on`)

// applyUntil runs apply and calls atEpoch(run, kill) once the training
// printed its tenth epoch or later (atStart: once it started the run);
// kill is a SIGKILL of apply, which gets no chance to clean up. It returns
// what apply printed and how it ended.
func (sb *sandbox) applyUntil(t *testing.T, env []string, dir string, atStart bool, atEpoch func(run string, kill func())) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(sb.bin, "lepton"), "-chdir="+dir, "apply", "-auto-approve")
	stdout := startMerged(t, cmd, env)
	var printed strings.Builder
	run, fired := "", false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		printed.WriteString(line + "\n")
		if m := startedRun.FindStringSubmatch(line); m != nil {
			run = m[1]
		}
		if m := epochLine.FindStringSubmatch(line); (atStart && run != "" || m != nil && len(m[1]) >= 2) && !fired {
			fired = true
			if run == "" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("a training's progress before it was started:\n%s", printed.String())
			}
			atEpoch(run, func() { cmd.Process.Kill() })
		}
	}
	err := cmd.Wait()
	if !fired {
		t.Fatalf("apply ended before the training was under way (%v):\n%s", err, printed.String())
	}
	return printed.String(), err
}

// freeze stops (SIGSTOP) or resumes (SIGCONT) every process of the only
// running instance: a stuck machine, still up for its cloud.
func (sb *sandbox) freeze(t *testing.T, sig syscall.Signal) {
	t.Helper()
	live := sb.live(t)
	if len(live) != 1 {
		t.Fatalf("running instances: %v, want 1", live)
	}
	var n struct {
		PID int `json:"pid"`
	}
	b, err := os.ReadFile(filepath.Join(sb.dir, "nodes", live[0], "node.json"))
	if err == nil {
		err = json.Unmarshal(b, &n)
	}
	if err != nil || n.PID <= 0 {
		t.Fatalf("node.json of %s: %v %s", live[0], err, b)
	}
	// The node's processes are one process group, led by its pid.
	if err := syscall.Kill(-n.PID, sig); err != nil {
		t.Fatalf("signal %v to the node's processes: %v", sig, err)
	}
	if sig == syscall.SIGSTOP {
		t.Cleanup(func() { syscall.Kill(-n.PID, syscall.SIGCONT) })
	}
}

// wholeState checks that the state file parses and still has every
// resource, and returns training.flowers's status.
func wholeState(t *testing.T, dir, after string) string {
	t.Helper()
	st := readState(t, dir)
	for _, a := range []string{"cluster.gpu", "dataset.flowers", "training.flowers"} {
		if st.resource(a) == nil {
			t.Errorf("after %s, %s is not in state", after, a)
		}
	}
	return st.status("training.flowers")
}

func TestRunErrorsOnSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and boots nodes: not in -short")
	}
	sb := startSandbox(t)
	env := offlineEnv(t, sb.env...)
	dir := errorsProject(t)
	ctx := context.Background()

	// A node that stops heartbeating in the middle of the run.
	start, frozen := time.Time{}, ""
	out, err := sb.applyUntil(t, env, dir, false, func(run string, _ func()) {
		sb.freeze(t, syscall.SIGSTOP)
		start, frozen = time.Now(), run
	})
	if err == nil {
		t.Fatalf("apply succeeded on a frozen node:\n%s", tail(out))
	}
	took := time.Since(start)
	if !regexp.MustCompile(`node 0 \(127\.0\.0\.\d+\) stopped reporting on run training\.flowers-\S+ at \S+ \(\d+s ago\)`).MatchString(out) {
		t.Errorf("the error does not name the node and how long since it last reported:\n%s", tail(out))
	}
	t.Logf("a frozen node was an error after %s", took.Round(time.Second))
	// The run failed: tainted, the next apply trains again (below).
	if status := wholeState(t, dir, "a heartbeat timeout"); status != "tainted" {
		t.Errorf("training.flowers is %q in state after a heartbeat timeout, want tainted", status)
	}
	if st := sb.must(t, env, dir, "status"); !strings.Contains(st, frozen) {
		t.Errorf("status after a heartbeat timeout does not name run %s:\n%s", frozen, st)
	}
	// What the run printed before is kept.
	if logs := sb.must(t, env, dir, "logs", "training.flowers"); !strings.Contains(logs, "downloaded dataset") {
		t.Errorf("logs training.flowers after a heartbeat timeout:\n%s", logs)
	}
	sb.freeze(t, syscall.SIGCONT)

	// A status object that is not JSON while the node is stuck: after the
	// grace an agent's rewrite would have ended it, an error naming the
	// object; the run may be fine, so it stays recorded.
	store := runStorage(t, sb, dir)
	var corrupted string
	out, err = sb.applyUntil(t, env, dir, false, func(run string, _ func()) {
		sb.freeze(t, syscall.SIGSTOP)
		corrupted = run
		// A status PUT the agent sent just before it froze lands first.
		time.Sleep(time.Second)
		if err := store.Put(ctx, runspec.StatusKey(run, 0), strings.NewReader(`{"state": "runn`)); err != nil {
			t.Error(err)
		}
	})
	if err == nil {
		t.Fatalf("apply succeeded with a corrupt status:\n%s", tail(out))
	}
	for _, s := range []string{"the status of run " + corrupted + " node 0", store.Where(runspec.StatusKey(corrupted, 0)), "is not valid", "the run is left as it is"} {
		if !strings.Contains(out, s) {
			t.Errorf("the error lacks %q:\n%s", s, tail(out))
		}
	}
	if status := wholeState(t, dir, "a corrupt status"); status != "running" {
		t.Errorf("training.flowers is %q in state after a corrupt status, want running", status)
	}
	if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "is still running on cluster.gpu; apply waits for it") {
		t.Errorf("plan after a corrupt status:\n%s", plan)
	}
	// The node resumes, its agent writes the status again, and the next
	// apply waits for the same run.
	sb.freeze(t, syscall.SIGCONT)
	out = sb.must(t, env, dir, "apply", "-auto-approve")
	if !strings.Contains(out, "waiting for run "+corrupted) || strings.Contains(out, "started run") {
		t.Errorf("the apply after a corrupt status did not wait for run %s:\n%s", corrupted, tail(out))
	}
	if m := outputs(t, sb, env, dir)["model"]; !strings.HasPrefix(m, "sha256:") {
		t.Errorf("model output %q", m)
	}

	// The run's model object gone when apply comes to download it: the
	// apply is killed once it started a new (short) run, the run ends on
	// the node, and its model object is deleted.
	hcl := filepath.Join(dir, "main.lep.hcl")
	b, _ := os.ReadFile(hcl)
	cfg := strings.Replace(string(b), "seed   = 7", "seed   = 8", 1)
	os.WriteFile(hcl, []byte(strings.Replace(cfg, "epochs = 4000", "epochs = 200", 1)), 0o644)
	var killed string
	sb.applyUntil(t, env, dir, true, func(run string, kill func()) {
		killed = run
		kill()
	})
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var st runspec.Status
		b, err := runstore.ReadAll(ctx, store, runspec.StatusKey(killed, 0))
		if err == nil && json.Unmarshal(b, &st) == nil && runspec.Terminal(st.State) {
			if st.State != runspec.StateSucceeded {
				t.Fatalf("run %s ended %s: %s", killed, st.State, st.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s has not ended on its node within 3 minutes (%v)", killed, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	modelKey := runspec.ModelKey(killed)
	if err := store.Delete(ctx, modelKey); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Stat(ctx, modelKey); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s after its deletion: %v", modelKey, err)
	}
	out, err = sb.lepton(t, env, dir, "apply", "-auto-approve")
	if err == nil {
		t.Fatalf("apply succeeded without the run's model object:\n%s", tail(out))
	}
	for _, s := range []string{"waiting for run " + killed, "its model " + store.Where(modelKey) + " is missing", "the next apply trains again"} {
		if !strings.Contains(out, s) {
			t.Errorf("the error lacks %q:\n%s", s, tail(out))
		}
	}
	if status := wholeState(t, dir, "a missing model object"); status != "tainted" {
		t.Errorf("training.flowers is %q in state after its model object went missing, want tainted", status)
	}
	out = sb.must(t, env, dir, "apply", "-auto-approve")
	if !strings.Contains(out, "started run training.flowers-") {
		t.Errorf("the apply after a missing model did not train again:\n%s", tail(out))
	}
	if m := outputs(t, sb, env, dir)["model"]; !strings.HasPrefix(m, "sha256:") {
		t.Errorf("model output %q", m)
	}
	if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "No changes") {
		t.Errorf("plan at the end:\n%s", plan)
	}
	sb.must(t, env, dir, "destroy", "-auto-approve")
	sb.noneRunning(t)
}
