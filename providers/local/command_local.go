package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/leptonml/lepton/internal/dirtar"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/zclconf/go-cty/cty"
)

// A run block without a cloud cluster runs its program on this machine as
// a 1-node run: NODE_RANK 0, NUM_NODES 1, MASTER_ADDR 127.0.0.1, the
// machine's own GPUs (GPUS_PER_NODE from nvidia-smi, CUDA_VISIBLE_DEVICES
// left as it is), a copy of the work folder in the run directory, the
// output in OutputDir and the checkpoint folder kept between applies, so an
// interrupted run's program resumes from it.

// localStopGrace is how long the program has between SIGTERM and SIGKILL
// when apply is interrupted.
const localStopGrace = 10 * time.Second

// localGPUs counts this machine's NVIDIA GPUs (0 without nvidia-smi).
func localGPUs(ctx context.Context) int {
	p, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return 0
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, p, "-L").Output()
	if err != nil {
		return 0
	}
	return strings.Count(string(out), "GPU ")
}

// applyCommandLocal runs a run block's program on this machine.
func (t *Training) applyCommandLocal(ctx context.Context, req providers.ApplyRequest, ts trainingSpec) (cty.Value, error) {
	cs := ts.cmd
	if cs.image != "" {
		return cty.NilVal, providers.ArgErrorf("run.image", "image runs the program with a cluster node's container runtime; on this machine, remove image (or set cluster = a cloud cluster)")
	}
	run := runstore.Sub(storeOf(req.Env.DataDir), runPrefix(req.Address))
	dir := RunDir(req.Env.DataDir, req.Address)
	// Arguments that changed start afresh (checkpoints included).
	if err := prepareRun(ctx, run, req.Planned); err != nil {
		return cty.NilVal, err
	}
	work, output := filepath.Join(dir, "work"), OutputDir(req.Env.DataDir, req.Address)
	checkpoint := filepath.Join(dir, "checkpoint")
	if d := cs.checkpointDir; d != "" {
		checkpoint = d
		if !filepath.IsAbs(d) {
			checkpoint = filepath.Join(work, d)
		}
	}
	if err := freshWork(cs, req.Env.Dir, work, checkpoint); err != nil {
		return cty.NilVal, err
	}
	if err := os.RemoveAll(output); err != nil {
		return cty.NilVal, err
	}
	for _, d := range []string{output, checkpoint} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return cty.NilVal, err
		}
	}
	logf, err := run.Append(ctx, trainLogKey)
	if err != nil {
		return cty.NilVal, fmt.Errorf("opening the run log: %w", err)
	}
	defer logf.Close()
	var sink io.Writer = logf
	if req.Env.Progress != nil {
		sink = io.MultiWriter(logf, req.Env.Progress)
	}
	spec := runspec.Run{ID: newRunID(req.Address), Node: 0, Nodes: 1}
	c := &runspec.Command{Env: cs.env, GPUsPerNode: localGPUs(ctx)}
	if _, set := os.LookupEnv("CUDA_VISIBLE_DEVICES"); set {
		c.GPUsPerNode = -1 // the machine's own choice stands
	}
	env := runspec.CommandEnv(os.Environ(), spec, c, runspec.CommandDirs{Output: output, Checkpoint: checkpoint}, "127.0.0.1")
	argv := cs.args
	if !strings.Contains(argv[0], "/") {
		p, err := exec.LookPath(argv[0])
		if err != nil {
			return cty.NilVal, providers.ArgErrorf("run.command", "the command %q is not on this machine's PATH", argv[0])
		}
		argv = append([]string{p}, argv[1:]...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = work, env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = localStopGrace
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(sink, sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	fmt.Fprintf(logf, "run %s on this machine: %s\n", spec.ID, strings.Join(quoteArgs(cs.args), " "))
	if err := cmd.Start(); err != nil {
		pw.Close()
		return cty.NilVal, fmt.Errorf("starting %s: %w", cs.args[0], err)
	}
	werr := cmd.Wait()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what it left running
	pw.Close()
	<-copied
	if ctx.Err() != nil {
		return cty.NilVal, ctx.Err() // interrupted: the next apply runs it again, its checkpoint kept
	}
	if werr != nil {
		var ee *exec.ExitError
		if errors.As(werr, &ee) {
			return cty.NilVal, fmt.Errorf("the command exited with code %d on this machine (see lepton logs %s)", ee.ExitCode(), req.Address)
		}
		return cty.NilVal, werr
	}
	digest, err := dirtar.Digest(output, dirtar.Options{})
	if err != nil {
		return cty.NilVal, err
	}
	model := cty.NullVal(cty.String)
	if b, err := os.ReadFile(filepath.Join(output, runspec.CommandModelFile)); err == nil {
		d, err := artifactStore(req.Env.DataDir).PutEncoded(ctx, b)
		if err != nil {
			return cty.NilVal, fmt.Errorf("LEPTON_OUTPUT_DIR/%s: %w", runspec.CommandModelFile, err)
		}
		model = cty.StringVal(d)
	}
	metrics := cty.MapValEmpty(cty.Number)
	if b, err := os.ReadFile(filepath.Join(output, "metrics.json")); err == nil {
		metrics = metricsOf(b)
	}
	fmt.Fprintf(logf, "output %s in %s\n", digest, output)
	return withComputed("training", req.Planned, map[string]cty.Value{
		"model": model, "outputs": cty.StringVal(digest), "metrics": metrics,
		"epochs_completed": cty.NullVal(cty.Number), "status": cty.StringVal("succeeded"),
	}), nil
}

// freshWork makes work a copy of the work folder (empty without one),
// keeping the checkpoint folder when it lies inside it.
func freshWork(cs *commandSpec, projectDir, work, checkpoint string) error {
	src, err := cs.workdirPath(projectDir)
	if err != nil {
		return err
	}
	keep := ""
	if rel, err := filepath.Rel(work, checkpoint); err == nil && filepath.IsLocal(rel) {
		if _, err := os.Stat(checkpoint); err == nil {
			keep = work + ".checkpoint"
			os.RemoveAll(keep)
			if err := os.Rename(checkpoint, keep); err != nil {
				return err
			}
		}
	}
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if src != "" {
		pr, pw := io.Pipe()
		go func() {
			_, err := dirtar.Write(pw, src, dirtar.Options{Skip: skipInWorkdir})
			pw.CloseWithError(err)
		}()
		_, err := dirtar.Extract(pr, work, false)
		if err == nil {
			_, err = io.Copy(io.Discard, pr) // the archive's end, and the writer's error
		}
		pr.CloseWithError(err)
		if err != nil {
			return fmt.Errorf("copying workdir %s: %w", cs.workdir, err)
		}
	}
	if keep != "" {
		os.RemoveAll(checkpoint)
		if err := os.MkdirAll(filepath.Dir(checkpoint), 0o755); err != nil {
			return err
		}
		return os.Rename(keep, checkpoint)
	}
	return nil
}
