package multicloud_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Spot recovery of a training's run block, through the built binaries
// against the sandbox: the user's program on the run's own spot nodes
// checkpoints into LEPTON_CHECKPOINT_DIR as it goes; a node preempted in the
// middle is replaced, the program starts again on every node with the
// checkpoint_dir the lost attempt saved, and the run ends with the output an
// uninterrupted run makes.

// stepsProgram counts steps, folding each into a hash chain, and keeps
// (step, chain) in LEPTON_CHECKPOINT_DIR after every step, replaced
// atomically. Started again, it goes on from there. Rank 0 writes the
// chain's end into LEPTON_OUTPUT_DIR: the same bytes whether or not the run
// was interrupted, as long as every step was counted once.
const stepsProgram = `import hashlib, json, os, sys, time

rank = int(os.environ["NODE_RANK"])
nodes = int(os.environ["NUM_NODES"])
ckpt = os.environ["LEPTON_CHECKPOINT_DIR"]
steps = int(os.environ.get("STEPS", "30"))
pause = float(os.environ.get("STEP_SECONDS", "0.2"))
path = os.path.join(ckpt, "state.json")

step, chain = 0, hashlib.sha256(b"seed 7").hexdigest()
if os.path.exists(path):
    with open(path) as f:
        saved = json.load(f)
    step, chain = saved["step"], saved["chain"]
    print(f"rank {rank} of {nodes}: resuming from step {step} (master {os.environ['MASTER_ADDR']})", flush=True)
else:
    print(f"rank {rank} of {nodes}: starting at step 0, the checkpoint dir holds {sorted(os.listdir(ckpt))} (master {os.environ['MASTER_ADDR']})", flush=True)

while step < steps:
    chain = hashlib.sha256(f"{chain} {step}".encode()).hexdigest()
    step += 1
    with open(path + ".tmp", "w") as f:
        json.dump({"step": step, "chain": chain}, f)
    os.replace(path + ".tmp", path)
    print(f"rank {rank}: step {step}", flush=True)
    time.sleep(pause)

if rank == 0:
    with open(os.path.join(os.environ["LEPTON_OUTPUT_DIR"], "result.json"), "w") as f:
        json.dump({"steps": step, "chain": chain}, f, sort_keys=True)
print(f"rank {rank}: done after step {step}", flush=True)
`

// runSpotProject writes a project whose training runs stepsProgram, on
// resources (a resources block) or on this machine ("").
func runSpotProject(t *testing.T, resources string, steps int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "src", "train.py"), []byte(stepsProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `training "steps" {
  run {
    command        = ["python3", "train.py"]
    workdir        = "src"
    checkpoint_dir = "ckpt"
    env = {
      STEPS        = "` + strconv.Itoa(steps) + `"
      STEP_SECONDS = "0.2"
    }
  }
` + resources + `}

output "outputs" {
  value = training.steps.outputs
}
`
	if resources != "" {
		cfg = cloudBlocks["aws"] + cfg
	}
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A 1-node run's lines have no "node N: " before them.
var stepLine = regexp.MustCompile(`(?:node (\d+): )?rank (\d+): step (\d+)$`)

// instanceAt is the sandbox's running instance whose address is ip.
func (sb *sandbox) instanceAt(t *testing.T, ip string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(sb.bin, "lepton-sandbox"), "-dir", sb.dir, "status", "-json").CombinedOutput()
	if err != nil {
		t.Fatalf("lepton-sandbox status -json: %v\n%s", err, out)
	}
	var st struct {
		Nodes []struct {
			ID    string `json:"id"`
			IP    string `json:"ip"`
			State string `json:"state"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("lepton-sandbox status -json: %v\n%s", err, out)
	}
	for _, n := range st.Nodes {
		if n.IP == ip && n.State == "running" {
			return n.ID
		}
	}
	t.Fatalf("no running instance at %s:\n%s", ip, out)
	return ""
}

func TestSpotPreemptionResumesRunFromCheckpointDir(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and boots nodes: not in -short")
	}
	const steps, preemptAt = 30, 8
	sb := startSandbox(t)
	env := offlineEnv(t, sb.env...)

	// The uninterrupted run, on this machine.
	localDir := runSpotProject(t, "", steps)
	sb.must(t, env, localDir, "apply", "-auto-approve")
	want := outputs(t, sb, env, localDir)["outputs"]
	if !digestRE.MatchString(want) {
		t.Fatalf("the uninterrupted run's outputs are %q", want)
	}

	dir := runSpotProject(t, `  resources {
    gpu   = "A100:8"
    nodes = 2
    spot  = true
  }
`, steps)
	cmd := exec.Command(filepath.Join(sb.bin, "lepton"), "-chdir="+dir, "apply", "-auto-approve")
	stdout := startMerged(t, cmd, env)
	var printed strings.Builder
	master := regexp.MustCompile(`node 0: rank 0 of 2: .*\(master (127\.0\.0\.\d+)\)`)
	masterAddr, preempted, seen := "", "", 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		printed.WriteString(line + "\n")
		if m := master.FindStringSubmatch(line); m != nil && masterAddr == "" {
			masterAddr = m[1]
		}
		m := stepLine.FindStringSubmatch(line)
		if m == nil || m[1] != "0" || preempted != "" || masterAddr == "" {
			continue
		}
		if seen, _ = strconv.Atoi(m[3]); seen < preemptAt {
			continue
		}
		// Node 0 (MASTER_ADDR's node) goes: the new attempt needs a
		// new master too.
		preempted = sb.instanceAt(t, masterAddr)
		if out, err := exec.Command(filepath.Join(sb.bin, "lepton-sandbox"), "-dir", sb.dir, "preempt", preempted).CombinedOutput(); err != nil {
			t.Fatalf("preempt: %v\n%s", err, out)
		}
		t.Logf("preempted node 0 (%s, %s) after it printed step %d", preempted, masterAddr, seen)
	}
	err := cmd.Wait()
	out := printed.String()
	t.Logf("apply:\n%s", out)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if preempted == "" {
		t.Fatalf("apply ended before node 0 printed step %d", preemptAt)
	}
	for _, s := range []string{"restart 1 of at most 3", "(attempt 1)", "from the last checkpoint", "deleted 2 node(s) of the run"} {
		if !strings.Contains(out, s) {
			t.Errorf("apply output lacks %q", s)
		}
	}
	if got := outputs(t, sb, env, dir)["outputs"]; got != want {
		t.Errorf("the outputs after a preemption are %s; uninterrupted: %s", got, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, ".lepton", "runs", "training.steps", "outputs", "result.json"))
	if err != nil || !strings.Contains(string(b), `"steps": `+strconv.Itoa(steps)) {
		t.Errorf("result.json: %s %v", b, err)
	}
	st := sb.must(t, env, dir, "status")
	if !strings.Contains(st, "1 restart (") || !strings.Contains(st, "preempted") {
		t.Errorf("status shows no restart after the preemption of %s:\n%s", preempted, st)
	}
	if live := sb.live(t); len(live) != 0 {
		t.Errorf("instances left running after the run: %v", live)
	}

	// Every rank's second attempt went on from its checkpoint: node 0's
	// from at least the step it had printed when it was preempted (its
	// last save is made as the node shuts down), node 1's from where it
	// was stopped.
	resumed := regexp.MustCompile(`rank (\d) of 2: resuming from step (\d+) \(master (127\.0\.0\.\d+)\)`)
	for node := 0; node < 2; node++ {
		l := sb.must(t, env, dir, "logs", "training.steps", "-node", strconv.Itoa(node))
		m := resumed.FindStringSubmatch(l)
		if m == nil || m[1] != strconv.Itoa(node) {
			t.Errorf("node %d's log of the second attempt does not resume from a checkpoint:\n%s", node, l)
			continue
		}
		from, _ := strconv.Atoi(m[2])
		if from <= 0 || from >= steps || (node == 0 && from < seen) {
			t.Errorf("node %d resumed from step %d (node 0 printed step %d before it was preempted)", node, from, seen)
		}
		if m[3] == masterAddr {
			t.Errorf("the second attempt's MASTER_ADDR is the preempted node's %s", masterAddr)
		}
		if !strings.Contains(l, "rank "+m[1]+": done after step "+strconv.Itoa(steps)) {
			t.Errorf("node %d's second attempt did not finish:\n%s", node, l)
		}
	}
	// The preempted node's log shows its saves (the one it made as it
	// shut down is unlogged when nothing changed since the one before).
	plog, _ := filepath.Glob(filepath.Join(sb.dir, "nodes", preempted, "runs", "training.steps-*", "log"))
	if len(plog) != 1 {
		t.Fatalf("logs of the preempted node: %v", plog)
	}
	if b, _ := os.ReadFile(plog[0]); !strings.Contains(string(b), "saved the checkpoint (") {
		t.Errorf("the preempted node's log shows no save of its checkpoint:\n%s", b)
	}
	// The first attempt started from an empty checkpoint dir.
	logs, _ := filepath.Glob(filepath.Join(sb.dir, "nodes", "*", "runs", "training.steps-*", "log"))
	fresh := 0
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if strings.Contains(string(b), "starting at step 0, the checkpoint dir holds []") {
			fresh++
		}
	}
	if fresh != 2 || len(logs) != 4 {
		t.Errorf("%d of %d node logs show a fresh start from an empty checkpoint dir; want 2 of 4 (two attempts on two nodes)", fresh, len(logs))
	}
	if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "No changes") {
		t.Errorf("plan after the run:\n%s", plan)
	}
	sb.must(t, env, dir, "destroy", "-auto-approve")
	sb.noneRunning(t)
	noSecrets(t, sb, out)
}

// A node whose agent stops reporting in the middle of a run block on a
// named cluster (its processes frozen with SIGSTOP: a hung node) makes
// apply fail with an error that names the node and says what to do, within
// the staleness bound, and loses nothing: state still holds the cluster,
// `lepton status` reads, and the next apply, once the node answers again,
// runs the training to its end.
func TestRunHeartbeatTimeoutOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and boots nodes: not in -short")
	}
	sb := startSandbox(t)
	env := offlineEnv(t, sb.env...)
	dir := runSpotProject(t, "  cluster = cluster.gpu\n", 60)
	hcl := filepath.Join(dir, "main.lep.hcl")
	b, _ := os.ReadFile(hcl)
	if err := os.WriteFile(hcl, []byte("cluster \"gpu\" {\n  clouds = [\"aws\"]\n  gpu    = \"A100:8\"\n  nodes  = 1\n}\n"+string(b)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(sb.bin, "lepton"), "-chdir="+dir, "apply", "-auto-approve")
	stdout := startMerged(t, cmd, env)
	var printed strings.Builder
	master := regexp.MustCompile(`rank 0 of 1: .*\(master (127\.0\.0\.\d+)\)`)
	host, frozen := "", 0
	var frozeAt time.Time
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		printed.WriteString(line + "\n")
		if m := master.FindStringSubmatch(line); m != nil {
			host = m[1]
		}
		if m := stepLine.FindStringSubmatch(line); m != nil && frozen == 0 && host != "" && atoi(m[3]) >= 5 {
			frozen = sb.nodePID(t, host)
			// The node's process group: its bash and its agent (the
			// program has a group of its own and goes on).
			if err := syscall.Kill(-frozen, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			frozeAt = time.Now()
			t.Cleanup(func() { syscall.Kill(-frozen, syscall.SIGCONT) })
		}
	}
	err := cmd.Wait()
	took := time.Since(frozeAt)
	out := printed.String()
	t.Logf("apply:\n%s", out)
	if frozen == 0 {
		t.Fatalf("apply ended before the program was under way")
	}
	if err == nil {
		t.Fatalf("apply succeeded with node 0's agent frozen")
	}
	t.Logf("apply failed %s after the agent was frozen", took.Round(time.Second))
	for _, s := range []string{"training on cluster.gpu: node 0 (" + host + ") stopped reporting on run training.steps-",
		"the run was stopped on every node of cluster.gpu", "lepton logs training.steps -node 0", "apply again"} {
		if !strings.Contains(out, s) {
			t.Errorf("the error lacks %q", s)
		}
	}
	if took > 90*time.Second {
		t.Errorf("apply took %s to notice", took)
	}
	syscall.Kill(-frozen, syscall.SIGCONT)

	// Nothing is lost: the cluster is as it was, the failed run is
	// recorded (its id, its log), and a plan reads.
	st := sb.must(t, env, dir, "status")
	if !regexp.MustCompile(`cluster\.gpu\s+ready`).MatchString(st) ||
		!regexp.MustCompile(`training\.steps\s+tainted\s+run training\.steps-\w+ on cluster\.gpu, started .*, did not succeed \(lepton logs training\.steps\)`).MatchString(st) {
		t.Errorf("status after the timeout:\n%s", st)
	}
	if l := sb.must(t, env, dir, "logs", "training.steps"); !strings.Contains(l, "rank 0 of 1: starting at step 0") {
		t.Errorf("the failed run's log:\n%s", l)
	}
	plan := sb.must(t, env, dir, "plan")
	if !strings.Contains(plan, "training.steps is tainted, so must be replaced") || !strings.Contains(plan, "Plan: 1 to add, 0 to change, 1 to destroy.") {
		t.Errorf("plan after the timeout:\n%s", plan)
	}
	// Once the node answers again, apply runs the training on it.
	out = sb.must(t, env, dir, "apply", "-auto-approve")
	if !strings.Contains(out, "rank 0: done after step 60") {
		t.Errorf("apply again:\n%s", out)
	}
	if got := outputs(t, sb, env, dir)["outputs"]; !digestRE.MatchString(got) {
		t.Errorf("outputs after the second apply: %q", got)
	}
	if live := sb.live(t); len(live) != 1 {
		t.Errorf("instances after the second apply: %v, want the cluster's one node", live)
	}
	sb.must(t, env, dir, "destroy", "-auto-approve")
	sb.noneRunning(t)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// A spot node of a run block that dies without a word (its processes
// killed: no SIGTERM, no last save) is found silent after 15 s, replaced,
// and the program resumes from the checkpoint_dir saved while it ran.
func TestSilentNodeRunResumesFromSavedCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and boots nodes: not in -short")
	}
	const steps = 60
	sb := startSandbox(t)
	env := offlineEnv(t, sb.env...)
	localDir := runSpotProject(t, "", steps)
	sb.must(t, env, localDir, "apply", "-auto-approve")
	want := outputs(t, sb, env, localDir)["outputs"]

	dir := runSpotProject(t, spotResources, steps)
	cmd := exec.Command(filepath.Join(sb.bin, "lepton"), "-chdir="+dir, "apply", "-auto-approve")
	stdout := startMerged(t, cmd, env)
	var printed strings.Builder
	master := regexp.MustCompile(`rank 0 of 1: .*\(master (127\.0\.0\.\d+)\)`)
	host, killedAt := "", 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		printed.WriteString(line + "\n")
		if m := master.FindStringSubmatch(line); m != nil && host == "" {
			host = m[1]
		}
		// Past the first saves (the folder is saved a second after it
		// changes, then at most every 5 s).
		if m := stepLine.FindStringSubmatch(line); m != nil && killedAt == 0 && host != "" && atoi(m[3]) >= 15 {
			killedAt = atoi(m[3])
			if err := syscall.Kill(-sb.nodePID(t, host), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	err := cmd.Wait()
	out := printed.String()
	t.Logf("apply:\n%s", out)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if killedAt == 0 {
		t.Fatal("apply ended before the program was under way")
	}
	for _, s := range []string{"restart 1 of at most 3: node 0 (" + host + ") stopped reporting", "(attempt 1)"} {
		if !strings.Contains(out, s) {
			t.Errorf("apply output lacks %q", s)
		}
	}
	m := regexp.MustCompile(`rank 0 of 1: resuming from step (\d+)`).FindStringSubmatch(sb.must(t, env, dir, "logs", "training.steps"))
	if m == nil || atoi(m[1]) <= 0 || atoi(m[1]) > killedAt {
		t.Errorf("the second attempt resumed from %v; the node was killed after step %d", m, killedAt)
	}
	if got := outputs(t, sb, env, dir)["outputs"]; got != want {
		t.Errorf("outputs %s; uninterrupted: %s", got, want)
	}
	if st := sb.must(t, env, dir, "status"); !strings.Contains(st, "1 restart (") || !strings.Contains(st, "stopped reporting") {
		t.Errorf("status:\n%s", st)
	}
	if live := sb.live(t); len(live) != 0 {
		t.Errorf("instances left running after the run: %v", live)
	}
	sb.must(t, env, dir, "destroy", "-auto-approve")
	sb.noneRunning(t)
}

// The same on a named spot cluster of two nodes: node 1 preempted in the
// middle of the run block is replaced as the cluster's node, the program
// starts again on both nodes from their checkpoint_dir, and the cluster's
// state names the new node.
func TestSpotClusterRunResumesFromCheckpointDir(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and boots nodes: not in -short")
	}
	const steps = 30
	sb := startSandbox(t)
	env := offlineEnv(t, sb.env...)
	localDir := runSpotProject(t, "", steps)
	sb.must(t, env, localDir, "apply", "-auto-approve")
	want := outputs(t, sb, env, localDir)["outputs"]

	dir := runSpotProject(t, "  cluster = cluster.gpu\n", steps)
	hcl := filepath.Join(dir, "main.lep.hcl")
	b, _ := os.ReadFile(hcl)
	if err := os.WriteFile(hcl, []byte("cluster \"gpu\" {\n  clouds = [\"aws\"]\n  gpu    = \"A100:8\"\n  nodes  = 2\n  spot   = true\n}\n"+string(b)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(sb.bin, "lepton"), "-chdir="+dir, "apply", "-auto-approve")
	stdout := startMerged(t, cmd, env)
	var printed strings.Builder
	master := regexp.MustCompile(`node 0: rank 0 of 2: .*\(master (127\.0\.0\.\d+)\)`)
	masterAddr, preempted := "", ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		printed.WriteString(line + "\n")
		if m := master.FindStringSubmatch(line); m != nil && masterAddr == "" {
			masterAddr = m[1]
		}
		m := stepLine.FindStringSubmatch(line)
		if m == nil || m[1] != "1" || preempted != "" || masterAddr == "" || atoi(m[3]) < 8 {
			continue
		}
		// Node 1: the instance that is not MASTER_ADDR's.
		for _, id := range sb.live(t) {
			if id != sb.instanceAt(t, masterAddr) {
				preempted = id
			}
		}
		if out, err := exec.Command(filepath.Join(sb.bin, "lepton-sandbox"), "-dir", sb.dir, "preempt", preempted).CombinedOutput(); err != nil {
			t.Fatalf("preempt %q: %v\n%s", preempted, err, out)
		}
	}
	err := cmd.Wait()
	out := printed.String()
	t.Logf("apply:\n%s", out)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if preempted == "" {
		t.Fatal("apply ended before node 1 was under way")
	}
	if !strings.Contains(out, "restart 1 of at most 3") || !strings.Contains(out, "(attempt 1)") {
		t.Errorf("apply output shows no restart")
	}
	for node := 0; node < 2; node++ {
		l := sb.must(t, env, dir, "logs", "training.steps", "-node", strconv.Itoa(node))
		m := regexp.MustCompile(`rank \d of 2: resuming from step (\d+)`).FindStringSubmatch(l)
		if m == nil || atoi(m[1]) <= 0 {
			t.Errorf("node %d's second attempt did not resume from a checkpoint:\n%s", node, l)
		}
	}
	if got := outputs(t, sb, env, dir)["outputs"]; got != want {
		t.Errorf("outputs %s; uninterrupted: %s", got, want)
	}
	if st := sb.must(t, env, dir, "status"); !strings.Contains(st, "1 restart (") {
		t.Errorf("status:\n%s", st)
	}
	live := sb.live(t)
	if len(live) != 2 || slices.Contains(live, preempted) {
		t.Errorf("the cluster's instances after the run: %v (node 1 was %s)", live, preempted)
	}
	if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "No changes") {
		t.Errorf("plan after the run:\n%s", plan)
	}
	sb.must(t, env, dir, "destroy", "-auto-approve")
	sb.noneRunning(t)
}
