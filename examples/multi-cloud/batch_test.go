package multicloud_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leptonml/lepton/runtime/objstore"
	"github.com/leptonml/lepton/runtime/runstore"
)

// A batch inference on a cloud cluster through the binaries and the
// sandbox: the same predictions as on this machine, to a file here or an
// object in the sandbox's S3, and nothing left after destroy.

const batchRuns = `
dataset "flowers" {
  source {
    file = "data/flowers.csv"
  }
  label = "species"
}

training "flowers" {
  dataset   = dataset.flowers
  objective = "classification"
  model {
    kind   = "mlp"
    hidden = [8]
  }
  epochs = 5
  seed   = 7
}

batch_inference "flowers" {
  model   = training.flowers.model
  dataset = dataset.flowers
  output  = %q
%s}
`

// batchProject writes a project whose batch inference writes to output, on
// a one-node cluster of cloudName ("": this machine).
func batchProject(t *testing.T, cloudName, output string) string {
	t.Helper()
	dir := t.TempDir()
	cfg, cluster := "", ""
	if cloudName != "" {
		cfg = cloudBlocks[cloudName] + fmt.Sprintf("cluster \"gpu\" {\n  clouds = [%q]\n  gpu    = \"A100:8\"\n  nodes  = 1\n}\n", cloudName)
		cluster = "  cluster = cluster.gpu\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(cfg+fmt.Sprintf(batchRuns, output, cluster)), 0o644); err != nil {
		t.Fatal(err)
	}
	csv, err := os.ReadFile("data/flowers.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "flowers.csv"), csv, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBatchOnSandbox(t *testing.T) {
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

	// A bucket in the sandbox's S3 for the predictions, made as a user
	// would, with the sandbox's environment.
	for _, kv := range sb.env {
		name, val, _ := strings.Cut(kv, "=")
		t.Setenv(name, val)
	}
	ctx := context.Background()
	preds, err := objstore.Open(ctx, "s3://predictions", objstore.Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := preds.EnsureBucket(ctx, nil); err != nil {
		t.Fatal(err)
	}

	for _, cloudName := range []string{"aws", "gcp", "azure"} {
		t.Run(cloudName, func(t *testing.T) {
			output, key := "scores.csv", ""
			if cloudName == "aws" {
				key = "flowers/" + cloudName + ".csv"
				output = "s3://predictions/" + key
			}
			dir := batchProject(t, cloudName, output)
			out := sb.must(t, env, dir, "apply", "-auto-approve")
			if !strings.Contains(out, "started run") {
				t.Errorf("apply output lacks the run's start:\n%s", out)
			}
			var got []byte
			if key != "" {
				got, err = runstore.ReadAll(ctx, preds, key)
			} else {
				got, err = os.ReadFile(filepath.Join(dir, "scores.csv"))
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("predictions made on %s (%v):\n%s\non this machine:\n%s", cloudName, err, got, want)
			}
			if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "No changes") {
				t.Errorf("plan after apply:\n%s", plan)
			}
			sb.must(t, env, dir, "destroy", "-auto-approve")
			if key != "" {
				_, err = preds.Stat(ctx, key)
			} else {
				_, err = os.Stat(filepath.Join(dir, "scores.csv"))
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("predictions left after destroy: %v", err)
			}
			noSecrets(t, sb, out)
		})
	}
	// No node is left running ("N nodes booted, 0 running").
	if st := sb.status(t); !strings.Contains(st, " 0 running") {
		t.Errorf("sandbox after destroy:\n%s", st)
	}
}
