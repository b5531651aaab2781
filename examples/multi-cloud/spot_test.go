package multicloud_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Compute for one run (resources { } instead of a cluster) and spot
// recovery, through the built binaries against the sandbox: a node
// preempted in the middle of a spot training is replaced, the run resumes
// from its last checkpoint and ends with the model an uninterrupted run
// makes; and the run's nodes are gone once it ends, whether it succeeded or
// failed.

// spotProject is the example's training with a resources block (or none:
// this machine) and epochs epochs.
func spotProject(t *testing.T, resources string, epochs int, extra string) string {
	t.Helper()
	dir := project(t, "")
	hcl := filepath.Join(dir, "main.lep.hcl")
	b, err := os.ReadFile(hcl)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	// Only the dataset and the training: no endpoint.
	cfg = cfg[:strings.Index(cfg, "endpoint \"flowers\"")] + "output \"model\" {\n  value = training.flowers.model\n}\n"
	cfg = strings.Replace(cfg, "epochs = 200", "epochs = "+strconv.Itoa(epochs), 1)
	if resources != "" {
		cfg = cloudBlocks["aws"] + cfg
		cfg = strings.Replace(cfg, "  seed   = 7\n", "  seed   = 7\n"+resources, 1)
	}
	if err := os.WriteFile(hcl, []byte(cfg+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const spotResources = `  resources {
    gpu  = "A100:8"
    spot = true
  }
`

// live lists the sandbox's running instances.
func (sb *sandbox) live(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command(filepath.Join(sb.bin, "lepton-sandbox"), "-dir", sb.dir, "status", "-json").CombinedOutput()
	if err != nil {
		t.Fatalf("lepton-sandbox status -json: %v\n%s", err, out)
	}
	var st struct {
		Nodes []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("lepton-sandbox status -json: %v\n%s", err, out)
	}
	var ids []string
	for _, n := range st.Nodes {
		if n.State == "running" || n.State == "pending" {
			ids = append(ids, n.ID)
		}
	}
	return ids
}

func TestSpotPreemptionResumesFromCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and boots nodes: not in -short")
	}
	sb := startSandbox(t)
	env := offlineEnv(t, sb.env...)

	// The uninterrupted run, on this machine, with the same seed.
	localDir := spotProject(t, "", 4000, "")
	sb.must(t, env, localDir, "apply", "-auto-approve")
	want := outputs(t, sb, env, localDir)["model"]
	if !strings.HasPrefix(want, "sha256:") {
		t.Fatalf("the local run's model output is %q", want)
	}

	dir := spotProject(t, spotResources, 4000, "")
	plan := sb.must(t, env, dir, "plan")
	for _, s := range []string{"# offer: aws ", "spot", "while the run goes"} {
		if !strings.Contains(plan, s) {
			t.Errorf("plan lacks %q:\n%s", s, plan)
		}
	}
	js := sb.must(t, env, dir, "plan", "-json")
	if !strings.Contains(js, `"compute"`) || !strings.Contains(js, `"address": "training.flowers"`) {
		t.Errorf("the JSON plan carries no lepton.compute for training.flowers:\n%.2000s", js)
	}

	out, preempted := sb.applyPreempting(t, env, dir)
	for _, s := range []string{"restart 1 of at most 3", "(attempt 1)", "from the last checkpoint", "deleted 1 node(s) of the run"} {
		if !strings.Contains(out, s) {
			t.Errorf("apply output lacks %q:\n%s", s, tail(out))
		}
	}
	if got := outputs(t, sb, env, dir)["model"]; got != want {
		t.Errorf("the model after a preemption is %s; uninterrupted, with the same seed: %s", got, want)
	}
	st := sb.must(t, env, dir, "status")
	if !strings.Contains(st, "1 restart (") || !strings.Contains(st, preempted) {
		t.Errorf("status shows no restart of the preempted %s:\n%s", preempted, st)
	}
	if live := sb.live(t); len(live) != 0 {
		t.Errorf("instances left running after the run: %v", live)
	}
	// The resumed run started from a checkpoint, not from epoch 1.
	logs, _ := filepath.Glob(filepath.Join(sb.dir, "nodes", "*", "runs", "training.flowers-*", "log"))
	resumed := false
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		resumed = resumed || strings.Contains(string(b), "resuming from checkpoint: epoch")
	}
	if !resumed {
		t.Errorf("no node log says the run resumed from a checkpoint (%d logs)", len(logs))
	}
	if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "No changes") {
		t.Errorf("plan after the run:\n%s", plan)
	}
	sb.must(t, env, dir, "destroy", "-auto-approve")
	sb.noneRunning(t)
	noSecrets(t, sb, out)
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	var keep []string
	for _, l := range lines {
		if !epochLine.MatchString(l) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// With resources, the run's nodes are deleted when it ends: after a
// success, and after a failure (a program that exits 3 on the node).
func TestResourcesLeaveNoInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and boots nodes: not in -short")
	}
	sb := startSandbox(t)
	env := offlineEnv(t, sb.env...)

	dir := spotProject(t, spotResources, 50, "")
	out := sb.must(t, env, dir, "apply", "-auto-approve")
	if !strings.Contains(out, "deleted 1 node(s) of the run") {
		t.Errorf("apply output:\n%s", tail(out))
	}
	if live := sb.live(t); len(live) != 0 {
		t.Errorf("instances left running after a successful run: %v", live)
	}
	if !strings.HasPrefix(outputs(t, sb, env, dir)["model"], "sha256:") {
		t.Errorf("no model recorded")
	}

	failing := `
training "fails" {
  run {
    command = ["sh", "-c", "echo giving up; exit 3"]
  }
  resources {
    gpu = "A100:8"
  }
  max_restarts = 1
}
`
	fdir := spotProject(t, spotResources, 50, failing)
	out, err := sb.lepton(t, env, fdir, "apply", "-auto-approve")
	if err == nil {
		t.Fatalf("apply of a failing program succeeded:\n%s", out)
	}
	if !strings.Contains(out, "node 0") || !strings.Contains(out, "3") {
		t.Errorf("the failure does not name the node and its exit code:\n%s", tail(out))
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(sb.live(t)) != 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if live := sb.live(t); len(live) != 0 {
		t.Errorf("instances left running after a failed run: %v", live)
	}
	sb.must(t, env, fdir, "destroy", "-auto-approve")
	sb.must(t, env, dir, "destroy", "-auto-approve")
	sb.noneRunning(t)
}

// An apply killed in the middle of a run on its own nodes leaves them
// recorded in state: the next apply waits for the same run on the same
// node (no second instance), and destroy leaves nothing.
func TestResourcesKilledApply(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and boots nodes: not in -short")
	}
	sb := startSandbox(t)
	env := offlineEnv(t, sb.env...)
	dir := spotProject(t, spotResources, 4000, "")
	cmd := exec.Command(filepath.Join(sb.bin, "lepton"), "-chdir="+dir, "apply", "-auto-approve")
	stdout := startMerged(t, cmd, env)
	var printed strings.Builder
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if m := epochLine.FindStringSubmatch(sc.Text()); m != nil && len(m[1]) >= 2 {
			cmd.Process.Kill()
			killed = true
			break
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("apply ended before the training was under way:\n%s", printed.String())
	}
	before := sb.live(t)
	if len(before) != 1 {
		t.Fatalf("running instances after the kill: %v", before)
	}
	out := sb.must(t, env, dir, "apply", "-auto-approve")
	if !strings.Contains(out, "waiting for run training.flowers-") || strings.Contains(out, "created 1 node(s)") {
		t.Errorf("the second apply did not wait for the first run on its node:\n%s", tail(out))
	}
	if n := sb.started(t, "training.flowers"); n != 1 {
		t.Errorf("the nodes started training.flowers %d times, want 1", n)
	}
	if live := sb.live(t); len(live) != 0 {
		t.Errorf("instances left running after the run: %v", live)
	}
	sb.must(t, env, dir, "destroy", "-auto-approve")
	sb.noneRunning(t)
}

// applyPreempting runs apply in dir and preempts the run's only instance
// once the training printed its 100th epoch; it returns what apply printed
// and the preempted instance. Apply must succeed (the run recovers).
func (sb *sandbox) applyPreempting(t *testing.T, env []string, dir string) (out, preempted string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(sb.bin, "lepton"), "-chdir="+dir, "apply", "-auto-approve")
	stdout := startMerged(t, cmd, env)
	var printed strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if m := epochLine.FindStringSubmatch(sc.Text()); m != nil && len(m[1]) >= 3 && preempted == "" {
			live := sb.live(t)
			if len(live) != 1 {
				t.Fatalf("%d instances running during the run, want 1: %v", len(live), live)
			}
			preempted = live[0]
			out, err := exec.Command(filepath.Join(sb.bin, "lepton-sandbox"), "-dir", sb.dir, "preempt", preempted).CombinedOutput()
			if err != nil {
				t.Fatalf("preempt: %v\n%s", err, out)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("apply: %v\n%s", err, printed.String())
	}
	out = printed.String()
	if preempted == "" {
		t.Fatalf("apply ended before the training was under way:\n%s", out)
	}
	return out, preempted
}
