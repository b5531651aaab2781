package multicloud_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Spot recovery on a named cluster, through the built binaries against the
// sandbox: a node of a spot cluster preempted in the middle of a built-in
// training is replaced as the cluster's node (same spec, tags and index),
// the run resumes from its last checkpoint and ends with the model an
// uninterrupted run makes, and the cluster converges: its state names the
// new node, the next plan shows no change, and destroy deletes it.

// clusterSpotProject is the example's training on a one-node spot cluster
// of the sandbox's AWS, for epochs epochs.
func clusterSpotProject(t *testing.T) string {
	t.Helper()
	dir := project(t, "aws")
	hcl := filepath.Join(dir, "main.lep.hcl")
	b, err := os.ReadFile(hcl)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	cfg = cfg[:strings.Index(cfg, "endpoint \"flowers\"")] + "output \"model\" {\n  value = training.flowers.model\n}\n"
	cfg = strings.Replace(cfg, "  nodes  = 1\n", "  nodes  = 1\n  spot   = true\n", 1)
	cfg = strings.Replace(cfg, "epochs = 200", "epochs = 4000", 1)
	if !strings.Contains(cfg, "spot   = true") || !strings.Contains(cfg, "cluster   = cluster.gpu") {
		t.Fatalf("the project is not a training on a spot cluster:\n%s", cfg)
	}
	if err := os.WriteFile(hcl, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestClusterSpotPreemptionResumesFromCheckpoint(t *testing.T) {
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

	dir := clusterSpotProject(t)
	out, preempted := sb.applyPreempting(t, env, dir)
	for _, s := range []string{"restart 1 of at most 3", "replaced node 0 of cluster.gpu", "(attempt 1)", "from the last checkpoint"} {
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
	// The cluster's state names its new node, the one running.
	live := sb.live(t)
	ids := nodeIDs(t, readState(t, dir))
	if len(live) != 1 || len(ids) != 1 || ids[0] != live[0] || live[0] == preempted {
		t.Errorf("after the run the sandbox runs %v and the cluster's state names %v (preempted: %s)", live, ids, preempted)
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
	// Converged: no change, no drift, no orphan.
	plan, err := sb.lepton(t, env, dir, "plan", "-detailed-exitcode")
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if err != nil || !strings.Contains(plan, "No changes") || strings.Contains(plan, "changed outside of lepton") || strings.Contains(plan, preempted) || strings.Contains(plan, "Warning") {
		t.Errorf("plan -detailed-exitcode after the recovery (%v):\n%s", err, plan)
	}
	sb.must(t, env, dir, "destroy", "-auto-approve")
	sb.noneRunning(t)
	noSecrets(t, sb, out)
}
