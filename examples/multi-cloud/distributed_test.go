package multicloud_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// examples/distributed on the sandbox (its test lives here, beside the
// sandbox harness it shares): a training's run block runs train.py on both
// nodes of a two-node cluster; the ranks meet at MASTER_ADDR:MASTER_PORT
// (node 0's own loopback address), node 0's output comes back and its digest
// is recorded, each node's log is read with -node, and a rank that fails
// makes the training fail naming that node and its exit code.

// distributedProject copies examples/distributed into a fresh folder.
func distributedProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"main.lep.hcl", "src/train.py"} {
		b, err := os.ReadFile(filepath.Join("..", "distributed", f))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func editConfig(t *testing.T, dir, old, new string) {
	t.Helper()
	p := filepath.Join(dir, "main.lep.hcl")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("main.lep.hcl has no %q", old)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func TestDistributedRunOnSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and boots nodes: not in -short")
	}
	sb := startSandbox(t)
	env := offlineEnv(t, sb.env...)
	dir := distributedProject(t)

	plan := sb.must(t, env, dir, "plan")
	if !strings.Contains(plan, "# runs python3 train.py on each of the 2 nodes of cluster.gpu") {
		t.Errorf("plan does not say what runs where:\n%s", plan)
	}
	out := sb.must(t, env, dir, "apply", "-auto-approve")
	for _, want := range []string{"started run training.ddp-", "on 2 node(s) of cluster.gpu", "node 0: rank 0 met 'rank 1'", "node 1: rank 1 met rank 0: welcome"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	digest := outputs(t, sb, env, dir)["outputs"]
	if !digestRE.MatchString(digest) {
		t.Fatalf("outputs = %q, want a digest", digest)
	}
	b, err := os.ReadFile(filepath.Join(dir, ".lepton", "runs", "training.ddp", "outputs", "result.json"))
	if err != nil {
		t.Fatalf("node 0's output was not downloaded: %v", err)
	}
	var res struct {
		Rank, Nodes int
		Master      string
		Heard       []string
	}
	if err := json.Unmarshal(b, &res); err != nil || res.Rank != 0 || res.Nodes != 2 || len(res.Heard) != 1 || res.Heard[0] != "rank 1" ||
		!strings.HasPrefix(res.Master, "127.0.0.") || !strings.HasSuffix(res.Master, ":29500") {
		t.Errorf("result.json %s (%v): want rank 0 of 2 having heard rank 1 at a node's :29500", b, err)
	}
	if st := sb.must(t, env, dir, "status"); !strings.Contains(st, "outputs "+digest) || !strings.Contains(st, "ranks_met") {
		t.Errorf("status:\n%s", st)
	}
	if l := sb.must(t, env, dir, "logs", "training.ddp"); !strings.Contains(l, "rank 0 of 2") || strings.Contains(l, "rank 1 of 2") {
		t.Errorf("logs training.ddp (node 0):\n%s", l)
	}
	if l := sb.must(t, env, dir, "logs", "training.ddp", "-node", "1"); !strings.Contains(l, "rank 1 of 2") || !strings.Contains(l, "stay on the node") {
		t.Errorf("logs training.ddp -node 1:\n%s", l)
	}
	if l, err := sb.lepton(t, env, dir, "logs", "training.ddp", "-node", "2"); err == nil || !strings.Contains(l, "there is no node 2") {
		t.Errorf("logs -node 2: %v\n%s", err, l)
	}
	if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "No changes") {
		t.Errorf("plan after apply:\n%s", plan)
	}
	// New content in the work folder runs the program again.
	f, _ := os.OpenFile(filepath.Join(dir, "src", "train.py"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("# changed\n")
	f.Close()
	if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "training.ddp must be replaced") || !strings.Contains(plan, "the content of run.workdir changed") {
		t.Errorf("plan after train.py changed:\n%s", plan)
	}

	// Rank 1 fails: the training fails naming node 1 and its exit code.
	editConfig(t, dir, `STEPS = "3"`, `STEPS = "3"
      FAIL_RANK = "1"`)
	out, err = sb.lepton(t, env, dir, "apply", "-auto-approve")
	t.Logf("apply with FAIL_RANK = 1:\n%s", out)
	if err == nil {
		t.Fatalf("apply with a failing rank succeeded:\n%s", out)
	}
	if !regexp.MustCompile(`failed on node 1 \(127\.0\.0\.\d+\): the command exited with code 3`).MatchString(out) {
		t.Errorf("the failure does not name node 1 and its exit code:\n%s", out)
	}
	sb.must(t, env, dir, "destroy", "-auto-approve")
	sb.noneRunning(t)
	noSecrets(t, sb, out)
}

// A kill -9 of apply while the program runs leaves the run going on both
// nodes: the next plan shows it, the next apply waits for it, and each node
// started it once.
func TestDistributedKilledApply(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and boots nodes: not in -short")
	}
	sb := startSandbox(t)
	env := offlineEnv(t, sb.env...)
	dir := distributedProject(t)
	editConfig(t, dir, `STEPS = "3"`, `STEPS = "40"
      STEP_SECONDS = "0.2"`)
	cmd := exec.Command(filepath.Join(sb.bin, "lepton"), "-chdir="+dir, "apply", "-auto-approve")
	stdout := startMerged(t, cmd, env)
	var printed strings.Builder
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "node 1: rank 1: step 2") {
			cmd.Process.Kill()
			killed = true
			break
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("apply ended before the program was under way:\n%s", printed.String())
	}
	if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "# (is still running on cluster.gpu; apply waits for it)") || !strings.Contains(plan, "# node 1 (127.0.0.") {
		t.Errorf("plan after the kill:\n%s", plan)
	}
	out := sb.must(t, env, dir, "apply", "-auto-approve")
	if !strings.Contains(out, "waiting for run training.ddp-") || strings.Contains(out, "started run") {
		t.Errorf("the second apply did not wait for the first run:\n%s", out)
	}
	if n := sb.started(t, "training.ddp"); n != 2 {
		t.Errorf("the nodes started training.ddp %d times, want 2 (once each)", n)
	}
	if got := outputs(t, sb, env, dir)["outputs"]; !digestRE.MatchString(got) {
		t.Errorf("outputs %q after the wait", got)
	}
	sb.must(t, env, dir, "destroy", "-auto-approve")
	sb.noneRunning(t)
}

// TestDistributedOnThisMachine: without a cluster, the run block's program
// runs here as a 1-node run.
func TestDistributedOnThisMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries: not in -short")
	}
	bins, err := sandboxBins()
	if err != nil {
		t.Fatal(err)
	}
	sb := &sandbox{bin: bins}
	env := offlineEnv(t)
	dir := distributedProject(t)
	cfg := `training "ddp" {
  run {
    command        = ["python3", "train.py"]
    workdir        = "src"
    checkpoint_dir = "checkpoints"
    env = {
      STEPS = "3"
    }
  }
}

output "outputs" {
  value = training.ddp.outputs
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "# runs python3 train.py on this machine as a 1-node run (NODE_RANK 0, NUM_NODES 1, MASTER_ADDR 127.0.0.1, MASTER_PORT 29500)") {
		t.Errorf("plan:\n%s", plan)
	}
	out := sb.must(t, env, dir, "apply", "-auto-approve")
	if !strings.Contains(out, "rank 0 of 1: master 127.0.0.1:29500") || !strings.Contains(out, "rank 0: step 3") {
		t.Errorf("apply:\n%s", out)
	}
	if got := outputs(t, sb, env, dir)["outputs"]; !digestRE.MatchString(got) {
		t.Errorf("outputs %q", got)
	}
	run := filepath.Join(dir, ".lepton", "runs", "training.ddp")
	if b, err := os.ReadFile(filepath.Join(run, "outputs", "result.json")); err != nil || !strings.Contains(string(b), `"nodes": 1`) {
		t.Errorf("result.json: %s %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(run, "work", "checkpoints", "step")); err != nil || string(b) != "3" {
		t.Errorf("checkpoint step: %q %v", b, err)
	}
	if l := sb.must(t, env, dir, "logs", "training.ddp"); !strings.Contains(l, "rank 0: done") {
		t.Errorf("logs:\n%s", l)
	}
	if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "No changes") {
		t.Errorf("plan after apply:\n%s", plan)
	}
	editConfig(t, dir, `STEPS = "3"`, `STEPS = "3"
      FAIL_RANK = "0"`)
	if out, err := sb.lepton(t, env, dir, "apply", "-auto-approve"); err == nil || !strings.Contains(out, "the command exited with code 3 on this machine") {
		t.Errorf("apply with a failing program: %v\n%s", err, out)
	}
	sb.must(t, env, dir, "destroy", "-auto-approve")
}

// TestDistributedPlanErrors: a run block's mistakes are plan errors at
// their place in the file.
func TestDistributedPlanErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries: not in -short")
	}
	if _, err := sandboxBins(); err != nil {
		t.Fatal(err)
	}
	sb := &sandbox{}
	sb.bin, _ = sandboxBins()
	env := offlineEnv(t)
	for _, tc := range []struct{ old, new, want string }{
		{`command        = ["python3", "train.py"]`, `command        = []`, `on main.lep.hcl:20:22, in training "ddp": 20: command = [] the run block needs a command`},
		{`workdir        = "src"`, `workdir        = "nowhere"`, `on main.lep.hcl:21:22, in training "ddp": 21: workdir = "nowhere" workdir "nowhere": no such file or directory`},
		{`checkpoint_dir = "checkpoints"`, `checkpoint_dir = "../up"`, `must stay there`},
		{`  cluster = cluster.gpu
  run {`, `  run {
    image = "python:3.12"`, `image runs the program with a cluster node's container runtime; on this machine, remove image`},
		{`STEPS = "3"`, `STEPS = "3"
    }
    epochs = 3
    env2 = {`, `Unsupported argument`},
	} {
		dir := distributedProject(t)
		editConfig(t, dir, tc.old, tc.new)
		out, err := sb.lepton(t, env, dir, "plan")
		if err == nil || !strings.Contains(strings.Join(strings.Fields(out), " "), tc.want) {
			t.Errorf("plan with %s: %v, want %q:\n%s", tc.new, err, tc.want, out)
		}
	}
}
