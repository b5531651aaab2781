package multicloud_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leptonml/lepton/runtime/objstore"
	"github.com/leptonml/lepton/runtime/runspec"
)

// A batch inference with resources { } of its own, through the binaries and
// the sandbox: the plan shows the offer and its price, the JSON plan lists
// it under lepton.compute, apply scores the rows on a node made for the run
// (the same predictions as on this machine) and deletes it; a batch that
// fails on its node deletes it as well, names what failed, and loses
// nothing from state.

const batchResources = `  resources {
    gpu  = "A100:8"
    spot = true
  }
  max_restarts = 1
`

// batchResourcesProject writes the batch example on AWS resources, its
// predictions to output (a file in the project).
func batchResourcesProject(t *testing.T, output string) string {
	t.Helper()
	dir := batchProject(t, "", output)
	cfg := cloudBlocks["aws"] + fmt.Sprintf(batchRuns, output, batchResources)
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// resource is the state's record of address: its attributes (nil when
// none).
func (st stateFile) resource(address string) map[string]any {
	for _, r := range st.Resources {
		if r.Address == address {
			return r.Attributes
		}
	}
	return nil
}

// status is the state's status of address (ready, tainted, running).
func (st stateFile) status(address string) string {
	for _, r := range st.Resources {
		if r.Address == address {
			return r.Status
		}
	}
	return ""
}

// runStorage opens the project's run storage in the sandbox's S3 (the
// bucket named after the state's lineage).
func runStorage(t *testing.T, sb *sandbox, dir string) *objstore.Store {
	t.Helper()
	for _, kv := range sb.env {
		name, val, _ := strings.Cut(kv, "=")
		t.Setenv(name, val)
	}
	st := readState(t, dir)
	s, err := objstore.Open(context.Background(), "s3://lepton-"+strings.ToLower(st.Lineage), objstore.Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitNoneLive waits (the deletion is asked for before apply returns; the
// node's processes may take the sandbox's grace to go) until no instance
// runs.
func (sb *sandbox) waitNoneLive(t *testing.T, after string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(sb.live(t)) != 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if live := sb.live(t); len(live) != 0 {
		t.Errorf("instances left running after %s: %v", after, live)
	}
}

func TestBatchOnResources(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and boots nodes: not in -short")
	}
	sb := startSandbox(t)
	env := offlineEnv(t, sb.env...)

	localDir := batchProject(t, "", "scores.csv")
	sb.must(t, env, localDir, "apply", "-auto-approve")
	want, err := os.ReadFile(filepath.Join(localDir, "scores.csv"))
	if err != nil || !bytes.HasPrefix(want, []byte("id,prediction,")) {
		t.Fatalf("local predictions: %q, %v", want, err)
	}

	dir := batchResourcesProject(t, "scores.csv")
	plan := sb.must(t, env, dir, "plan")
	for _, s := range []string{"batch_inference.flowers will be created", "# offer: aws ", "spot", "while the run goes"} {
		if !strings.Contains(plan, s) {
			t.Errorf("plan lacks %q:\n%s", s, plan)
		}
	}
	var jp struct {
		Lepton struct {
			Compute []struct {
				Address      string  `json:"address"`
				Cloud        string  `json:"cloud"`
				InstanceType string  `json:"instance_type"`
				Spot         bool    `json:"spot"`
				Nodes        int     `json:"nodes"`
				PricePerHour float64 `json:"price_per_hour"`
			} `json:"compute"`
		} `json:"lepton"`
	}
	js := sb.must(t, env, dir, "plan", "-json")
	if err := json.Unmarshal([]byte(js), &jp); err != nil {
		t.Fatalf("plan -json: %v\n%.2000s", err, js)
	}
	if c := jp.Lepton.Compute; len(c) != 1 || c[0].Address != "batch_inference.flowers" || c[0].Cloud != "aws" ||
		c[0].InstanceType == "" || !c[0].Spot || c[0].Nodes != 1 || c[0].PricePerHour <= 0 {
		t.Errorf("lepton.compute of the JSON plan: %+v", c)
	} else if !strings.Contains(plan, fmt.Sprintf("$%.2f/hr", c[0].PricePerHour)) && !strings.Contains(plan, fmt.Sprintf("%.2f", c[0].PricePerHour)) {
		t.Errorf("the plan does not show the offer's $%.2f/hr:\n%s", c[0].PricePerHour, plan)
	}

	out := sb.must(t, env, dir, "apply", "-auto-approve")
	for _, s := range []string{"started run batch_inference.flowers-", "deleted 1 node(s) of the run"} {
		if !strings.Contains(out, s) {
			t.Errorf("apply output lacks %q:\n%s", s, out)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "scores.csv"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("predictions made on the run's node (%v):\n%s\non this machine:\n%s", err, got, want)
	}
	sb.waitNoneLive(t, "a successful batch")
	if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "No changes") {
		t.Errorf("plan after apply:\n%s", plan)
	}

	// A batch that fails on its node: the model object in the run storage
	// is corrupted (content-addressed, so lepton finds it there and does
	// not upload it again); the node refuses it.
	store := runStorage(t, sb, dir)
	digest, _ := readState(t, dir).resource("training.flowers")["model"].(string)
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("training.flowers model in state: %q", digest)
	}
	key := runspec.ArtifactKey(digest)
	ctx := context.Background()
	if err := store.Put(ctx, key, strings.NewReader("not a model")); err != nil {
		t.Fatal(err)
	}
	hcl := filepath.Join(dir, "main.lep.hcl")
	b, _ := os.ReadFile(hcl)
	os.WriteFile(hcl, bytes.Replace(b, []byte(`output  = "scores.csv"`), []byte(`output  = "scores2.csv"`), 1), 0o644)
	out, err = sb.lepton(t, env, dir, "apply", "-auto-approve")
	if err == nil {
		t.Fatalf("apply of a batch whose model object is corrupt succeeded:\n%s", out)
	}
	for _, s := range []string{"batch inference on its own nodes: run batch_inference.flowers-", "failed on node 0", "sha256-" + strings.TrimPrefix(digest, "sha256:"), "deleted 1 node(s) of the run"} {
		if !strings.Contains(out, s) {
			t.Errorf("the failure's output lacks %q:\n%s", s, out)
		}
	}
	if i := strings.Index(out, "Error: "); i >= 0 {
		t.Logf("a batch that failed on its node:\n%s", out[i:])
	}
	sb.waitNoneLive(t, "a failed batch")
	st := readState(t, dir)
	if st.resource("training.flowers") == nil || st.resource("dataset.flowers") == nil {
		t.Errorf("the failed apply lost resources from state: %+v", st.Resources)
	}

	// Without the bad object, lepton uploads the model again and the batch
	// succeeds.
	if err := store.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	out = sb.must(t, env, dir, "apply", "-auto-approve")
	if got, err := os.ReadFile(filepath.Join(dir, "scores2.csv")); err != nil || !bytes.Equal(got, want) {
		t.Errorf("predictions after the model was uploaded again (%v):\n%s\n%s", err, got, out)
	}
	sb.waitNoneLive(t, "the repaired batch")
	if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "No changes") {
		t.Errorf("plan after the repair:\n%s", plan)
	}
	sb.must(t, env, dir, "destroy", "-auto-approve")
	sb.noneRunning(t)
	noSecrets(t, sb, out)
}
