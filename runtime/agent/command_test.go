package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leptonml/lepton/internal/dirtar"
	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/objstore/signed"
	"github.com/leptonml/lepton/runtime/runspec"
)

// tarOf archives files (name -> body; names ending in .sh are executable).
func tarOf(t *testing.T, files map[string]string, gz bool) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if _, err := dirtar.Write(&b, dir, dirtar.Options{Gzip: gz}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// untar unpacks an archive the agent uploaded and returns its files.
func untar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	dir := t.TempDir()
	if _, err := dirtar.Extract(bytes.NewReader(b), dir, false); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			body, _ := os.ReadFile(p)
			out[rel] = string(body)
		}
		return nil
	})
	return out
}

// commandRun is a run of the user's program on node 0 of 2.
func (w *world) commandRun(id string, c runspec.Command) runspec.Run {
	return runspec.Run{ID: id, Kind: runspec.KindTraining, Address: "training.own", Node: 0, Nodes: 2, Expires: time.Now().Add(time.Hour),
		Training: &runspec.Training{Command: &c},
		Status:   w.sign(runspec.StatusKey(id, 0), "PUT"), Log: w.sign(runspec.LogKey(id, 0), "PUT")}
}

const trainSh = `#!/bin/sh
set -eu
env | grep -E '^(NODE_RANK|NUM_NODES|NNODES|MASTER_ADDR|MASTER_PORT|GPUS_PER_NODE|CUDA_VISIBLE_DEVICES|LEPTON_RUN_ID|GREETING)=' | sort > "$LEPTON_OUTPUT_DIR/env.txt"
step=$(cat "$LEPTON_CHECKPOINT_DIR/step" 2>/dev/null || echo 0)
echo "resumed at step $step in $(pwd | sed 's,.*/,,')"
echo $((step + 1)) > "$LEPTON_CHECKPOINT_DIR/step"
cp data/in.txt "$LEPTON_OUTPUT_DIR/copy.txt"
printf 'no newline at the end'
`

// TestCommand: the work folder is unpacked as the working directory, the
// checkpoint of an earlier attempt restored and the new one saved, the
// torchrun variables and the user's env set, the program's lines reported,
// and node 0's output uploaded with its digest.
func TestCommand(t *testing.T) {
	w := newWorld(t)
	wd := tarOf(t, map[string]string{"train.sh": trainSh, "data/in.txt": "input\n"}, true)
	wdDigest := artifact.DigestOf(wd)
	w.put(runspec.WorkdirKey(wdDigest), wd)
	// Through a signed URL, as an agent saves it (an SDK's PUT leaves a
	// checksum that the S3 fake keeps after the agent's PUT replaces it).
	ck0 := tarOf(t, map[string]string{"step": "41\n"}, false)
	if err := signed.Put(context.Background(), nil, w.sign(runspec.CheckpointKey("r0", 0), "PUT"), bytes.NewReader(ck0), int64(len(ck0))); err != nil {
		t.Fatal(err)
	}
	get := w.sign(runspec.CheckpointKey("r0", 0), "GET")
	get.Digest = "" // a checkpoint changes: no digest
	workdir := w.sign(runspec.WorkdirKey(wdDigest), "GET")
	workdir.Digest = wdDigest
	out := w.sign(runspec.CommandOutputKey("r1"), "PUT")
	run := w.commandRun("r1", runspec.Command{Args: []string{"./train.sh"}, Env: map[string]string{"GREETING": "hi there", "MASTER_PORT": "1234"},
		Workdir: &workdir, CheckpointDir: "ckpt", MasterAddr: "127.0.0.9", GPUsPerNode: 2, Output: &out})
	run.Attempt = 1
	run.Checkpoint = &runspec.Checkpoint{Get: &get, Put: w.sign(runspec.CheckpointKey("r0", 0), "PUT"), Every: 1}
	w.writeInbox(run)
	w.startAgent(t.TempDir())
	st := w.waitStatus("r1", 30*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateSucceeded {
		t.Fatalf("run: %s: %s", st.State, st.Error)
	}
	if st.ExitCode == nil || *st.ExitCode != 0 || st.Ended.IsZero() {
		t.Errorf("exit code %v, ended %v", st.ExitCode, st.Ended)
	}
	if got := strings.Join(st.Lines, "\n"); !strings.Contains(got, "resumed at step 41 in work") || !strings.Contains(got, "no newline at the end") {
		t.Errorf("lines:\n%s", got)
	}
	b, err := w.get(runspec.CommandOutputKey("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Result == nil || st.Result.Digest != artifact.DigestOf(b) || st.Result.Model != "" {
		t.Errorf("result %+v, output digest %s", st.Result, artifact.DigestOf(b))
	}
	files := untar(t, b)
	wantEnv := "CUDA_VISIBLE_DEVICES=0,1\nGPUS_PER_NODE=2\nGREETING=hi there\nLEPTON_RUN_ID=r1\nMASTER_ADDR=127.0.0.9\nMASTER_PORT=1234\nNNODES=2\nNODE_RANK=0\nNUM_NODES=2\n"
	if files["env.txt"] != wantEnv || files["copy.txt"] != "input\n" {
		t.Errorf("output files %q\nwant env.txt:\n%s", files, wantEnv)
	}
	ck, err := w.get(runspec.CheckpointKey("r0", 0))
	if err != nil {
		t.Fatal(err)
	}
	if got := untar(t, ck)["step"]; got != "42\n" {
		t.Errorf("saved checkpoint step %q, want 42", got)
	}
	w.noSecrets(runspec.StatusKey("r1", 0), runspec.LogKey("r1", 0))
}

// TestCommandOutputModel: a lepton model left as model.lmodel is the
// training's model.
func TestCommandOutputModel(t *testing.T) {
	w := newWorld(t)
	_, model := localDigest(t, toySpec, toyDataset(100))
	src := filepath.Join(t.TempDir(), "m.lmodel")
	os.WriteFile(src, model, 0o644)
	out := w.sign(runspec.CommandOutputKey("m1"), "PUT")
	run := w.commandRun("m1", runspec.Command{Args: []string{"sh", "-c", `cp "$0" "$LEPTON_OUTPUT_DIR/model.lmodel"`, src}, Output: &out})
	w.writeInbox(run)
	w.startAgent(t.TempDir())
	st := w.waitStatus("m1", 30*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateSucceeded || st.Result == nil || st.Result.Model != artifact.DigestOf(model) {
		t.Fatalf("run: %s %s %+v, want model %s", st.State, st.Error, st.Result, artifact.DigestOf(model))
	}
}

func TestCommandFailures(t *testing.T) {
	noRuntime := func(name string) (string, error) {
		if name == "docker" || name == "podman" {
			return "", exec.ErrNotFound
		}
		return exec.LookPath(name)
	}
	for _, tc := range []struct {
		name     string
		cmd      runspec.Command
		lookPath func(string) (string, error)
		want     string
		code     int
	}{
		{"exit code", runspec.Command{Args: []string{"sh", "-c", "echo bad input >&2; exit 3"}}, nil, "the command exited with code 3", 3},
		{"signal", runspec.Command{Args: []string{"sh", "-c", "kill -9 $$"}}, nil, "the command was killed by SIGKILL", -1},
		{"not on PATH", runspec.Command{Args: []string{"no-such-program-xyz"}}, nil, `the command "no-such-program-xyz" is not on this node's PATH`, 0},
		{"no container runtime", runspec.Command{Args: []string{"python3", "train.py"}, Image: "pytorch/pytorch:2.3.0"}, noRuntime,
			`image "pytorch/pytorch:2.3.0": node 0 has neither docker nor podman on its PATH`, 0},
		{"checkpoint_dir escapes", runspec.Command{Args: []string{"true"}, CheckpointDir: "../x"}, nil, "must stay inside the working directory", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.writeInbox(w.commandRun("f1", tc.cmd))
			w.startAgentOpts(t.TempDir(), func(o *Options) { o.lookPath = tc.lookPath })
			st := w.waitStatus("f1", 30*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
			if st.State != runspec.StateFailed || !strings.Contains(st.Error, tc.want) {
				t.Fatalf("%s: %q, want failed with %q", st.State, st.Error, tc.want)
			}
			if tc.code != 0 && (st.ExitCode == nil || *st.ExitCode != tc.code) {
				t.Errorf("exit code %v, want %d", st.ExitCode, tc.code)
			}
			if st.Ended.IsZero() {
				t.Error("no end time")
			}
		})
	}
}

// TestCommandImage: with image, the program runs through the node's
// container runtime (a stand-in docker that records its arguments and
// environment), on the host's network, with GPUs, the folders mounted, and
// the variables passed by name only.
func TestCommandImage(t *testing.T) {
	w := newWorld(t)
	bin := t.TempDir()
	docker := filepath.Join(bin, "docker")
	os.WriteFile(docker, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$LEPTON_OUTPUT_DIR/args\"\necho \"$API_TOKEN\" > \"$LEPTON_OUTPUT_DIR/token\"\n"), 0o755)
	look := func(name string) (string, error) {
		if name == "docker" {
			return docker, nil
		}
		return "", exec.ErrNotFound
	}
	out := w.sign(runspec.CommandOutputKey("i1"), "PUT")
	w.writeInbox(w.commandRun("i1", runspec.Command{Args: []string{"python3", "train.py"}, Image: "pytorch/pytorch:2.3.0",
		Env: map[string]string{"API_TOKEN": "tok-secret-123"}, GPUsPerNode: 8, Output: &out}))
	w.startAgentOpts(t.TempDir(), func(o *Options) { o.lookPath = look })
	st := w.waitStatus("i1", 30*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateSucceeded {
		t.Fatalf("%s: %s", st.State, st.Error)
	}
	b, _ := w.get(runspec.CommandOutputKey("i1"))
	files := untar(t, b)
	args := files["args"]
	for _, want := range []string{"run\n--rm\n", "--network\nhost\n", "--gpus\nall\n", "--env\nNODE_RANK\n", "--env\nMASTER_ADDR\n", "--env\nAPI_TOKEN\n", "pytorch/pytorch:2.3.0\npython3\ntrain.py\n"} {
		if !strings.Contains(args, want) {
			t.Errorf("docker arguments lack %q:\n%s", want, args)
		}
	}
	if strings.Contains(args, "tok-secret-123") || files["token"] != "tok-secret-123\n" {
		t.Errorf("the env value must reach docker's environment, not its arguments: token %q, args:\n%s", files["token"], args)
	}
}

// TestCommandStoppedSavesCheckpoint: a run taken out of the inbox (another
// node failed) ends the program's whole process group, and its checkpoint
// folder is saved on the way out.
func TestCommandStoppedSavesCheckpoint(t *testing.T) {
	w := newWorld(t)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	run := w.commandRun("s1", runspec.Command{Args: []string{"sh", "-c", `sleep 300 & echo $! > "$0"; echo 7 > "$LEPTON_CHECKPOINT_DIR/step"; echo ready; wait`, pidFile}})
	run.Checkpoint = &runspec.Checkpoint{Put: w.sign(runspec.CheckpointKey("s1", 0), "PUT"), Every: 3600}
	w.writeInbox(run)
	w.startAgent(t.TempDir())
	w.waitStatus("s1", 30*time.Second, func(st runspec.Status) bool { return len(st.Lines) > 0 })
	w.writeInbox()
	st := w.waitStatus("s1", 30*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateStopped {
		t.Fatalf("%s: %s", st.State, st.Error)
	}
	ck, err := w.get(runspec.CheckpointKey("s1", 0))
	if err != nil {
		t.Fatalf("no checkpoint saved at the stop: %v", err)
	}
	if got := untar(t, ck)["step"]; got != "7\n" {
		t.Errorf("checkpoint step %q", got)
	}
	b, _ := os.ReadFile(pidFile)
	var pid int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &pid); err != nil || pid == 0 {
		t.Fatalf("child pid %q", b)
	}
	// Gone, or a zombie no one reaped (its parent, the shell, is gone).
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !bytes.Contains(b, []byte(") Z ")) {
		t.Errorf("the program's child %d outlived the stop: %s", pid, b)
	}
}
