package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leptonml/lepton/internal/dirtar"
	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/objstore/signed"
	"github.com/leptonml/lepton/runtime/runspec"
	"golang.org/x/sys/unix"
)

// The user's own program (a training's run block) on this node: its work
// folder unpacked, its checkpoint restored, the torchrun variables set, its
// output lines as the run's progress, its checkpoint folder saved as it
// goes, and node 0's output uploaded.

const (
	// stopGrace is how long a stopped program has between SIGTERM and
	// SIGKILL (a preempted node has about 30 s in all; the checkpoint is
	// saved after).
	stopGrace = 10 * time.Second
	// defaultCheckpointEvery is Checkpoint.Every when the run names none.
	defaultCheckpointEvery = 60
	// maxLine cuts a program's line that has no end in sight.
	maxLine = 64 << 10
)

// exitError is a program's non-zero exit.
type exitError struct {
	code   int
	signal string
}

// Error does not name the node: the run's status is the node's, and lepton
// names it.
func (e *exitError) Error() string {
	if e.signal != "" {
		return fmt.Sprintf("the command was killed by %s", e.signal)
	}
	return fmt.Sprintf("the command exited with code %d", e.code)
}

// folders are the program's folders on this node.
type folders struct {
	work, output, checkpoint string
}

func (r *run) folders(c *runspec.Command) (folders, error) {
	f := folders{work: filepath.Join(r.dir, "work"), output: filepath.Join(r.dir, "output"), checkpoint: filepath.Join(r.dir, "checkpoint")}
	if d := c.CheckpointDir; d != "" {
		if !filepath.IsAbs(d) {
			if !filepath.IsLocal(d) {
				return f, fmt.Errorf("checkpoint_dir %q: a relative path must stay inside the working directory", d)
			}
			d = filepath.Join(f.work, d)
		}
		f.checkpoint = filepath.Clean(d)
	}
	return f, nil
}

// command runs the training's command to its end.
func (r *run) command(c *runspec.Command) (*runspec.Result, error) {
	if len(c.Args) == 0 || c.Args[0] == "" {
		return nil, errors.New("the run's command is empty")
	}
	node := r.spec.Node
	f, err := r.folders(c)
	if err != nil {
		return nil, err
	}
	// A run starts once, so its folders start empty but for the work
	// folder's contents and the restored checkpoint.
	for _, d := range []string{f.work, f.output} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if c.Workdir != nil {
		if err := r.unpackWorkdir(*c.Workdir, f.work); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(f.checkpoint, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint_dir %s: %w", f.checkpoint, err)
	}
	if err := r.waitPreviousAttempt(); err != nil {
		return nil, err
	}
	if err := r.restoreCheckpoint(f.checkpoint); err != nil {
		return nil, err
	}
	master := c.MasterAddr
	if master == "" {
		if node != 0 {
			return nil, fmt.Errorf("node %d was given no MASTER_ADDR (node 0's address)", node)
		}
		master = r.a.hostNow()
	}
	env := commandEnv(r.spec, c, f, master)
	argv := c.Args
	if c.Image != "" {
		if argv, err = r.containerArgs(c, f, env); err != nil {
			return nil, err
		}
	}
	if !filepath.IsAbs(argv[0]) && !strings.Contains(argv[0], "/") {
		// Looked up on the node's PATH, not in the work folder.
		p, err := r.a.lookPath(argv[0])
		if err != nil {
			return nil, fmt.Errorf("the command %q is not on this node's PATH: %w", argv[0], err)
		}
		argv = append([]string{p}, argv[1:]...)
	}

	out := &progressWriter{line: r.line}
	cmd := exec.CommandContext(r.ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = f.work, env
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a stop reaches everything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	shown := strings.Join(c.Args, " ")
	if c.Image != "" {
		shown += " (in " + c.Image + " with " + filepath.Base(argv[0]) + ")"
	}
	r.logf("node %d of %d: %s (MASTER_ADDR=%s MASTER_PORT=%d)", node, r.spec.Nodes, shown, master, masterPort(c))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", c.Args[0], err)
	}
	pgid := cmd.Process.Pid
	syncDone := r.syncCheckpoints(f.checkpoint)
	werr := cmd.Wait()
	// The run ends when the program does, not when its checkpoint is saved:
	// of several failed nodes, lepton names the one that ended first.
	r.mu.Lock()
	r.st.Ended = time.Now().UTC()
	r.mu.Unlock()
	out.flush()
	// What it left running is ended with it.
	syscall.Kill(-pgid, syscall.SIGKILL)
	syncErr := syncDone()
	code := cmd.ProcessState.ExitCode()
	r.mu.Lock()
	r.st.ExitCode = &code
	r.mu.Unlock()
	if r.ctx.Err() != nil {
		return nil, errors.Join(r.ctx.Err(), syncErr) // stopped: end() says why
	}
	if werr != nil {
		var ee *exec.ExitError
		if !errors.As(werr, &ee) {
			return nil, fmt.Errorf("%s: %w", c.Args[0], werr)
		}
		e := &exitError{code: code}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.signal = unix.SignalName(ws.Signal())
			if e.signal == "" {
				e.signal = fmt.Sprintf("signal %d", ws.Signal())
			}
		}
		return nil, e
	}
	if syncErr != nil {
		return nil, syncErr
	}
	r.logf("the command exited with code 0")
	return r.uploadOutput(c, f.output)
}

// commandEnv is the program's environment: the agent's own, the torchrun
// variables, then the user's.
func commandEnv(run runspec.Run, c *runspec.Command, f folders, master string) []string {
	return runspec.CommandEnv(os.Environ(), run, c, runspec.CommandDirs{Output: f.output, Checkpoint: f.checkpoint}, master)
}

func masterPort(c *runspec.Command) int { return c.Port() }

// lookPath finds a program on the node's PATH.
func (a *Agent) lookPath(name string) (string, error) {
	if a.opts.lookPath != nil {
		return a.opts.lookPath(name)
	}
	return exec.LookPath(name)
}

// containerArgs runs the program in c.Image with the node's docker (or
// podman): the host's network (MASTER_ADDR is the node's address), the
// run's folders mounted at the same paths, the variables passed by name
// (their values stay out of the command line), and the GPUs when the node
// has some.
func (r *run) containerArgs(c *runspec.Command, f folders, env []string) ([]string, error) {
	var rt, path string
	for _, name := range []string{"docker", "podman"} {
		if p, err := r.a.lookPath(name); err == nil {
			rt, path = name, p
			break
		}
	}
	if rt == "" {
		return nil, fmt.Errorf("image %q: node %d has neither docker nor podman on its PATH to run it with; use a node image with a container runtime (the clouds' GPU images have docker and the NVIDIA container toolkit), or remove image to run the command on the node itself", c.Image, r.spec.Node)
	}
	name := "lepton-" + safeID(r.spec.ID) + "-" + strconv.Itoa(r.spec.Node)
	args := []string{path, "run", "--rm", "--name", name, "--network", "host", "--ipc", "host", "--workdir", f.work}
	for _, d := range []string{f.work, f.output, f.checkpoint} {
		args = append(args, "--volume", d+":"+d)
	}
	if c.GPUsPerNode > 0 {
		if rt == "docker" {
			args = append(args, "--gpus", "all")
		} else {
			args = append(args, "--device", "nvidia.com/gpu=all")
		}
	}
	passed := map[string]bool{}
	for k := range c.Env {
		passed[k] = true
	}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		// The image keeps its own PATH, HOME and the like.
		if passed[k] || k == "PYTHONUNBUFFERED" || strings.HasPrefix(k, "LEPTON_") || slices.Contains(torchrunVars, k) {
			args = append(args, "--env", k)
		}
	}
	args = append(args, c.Image)
	return append(args, c.Args...), nil
}

var torchrunVars = []string{"NODE_RANK", "NUM_NODES", "NNODES", "MASTER_ADDR", "MASTER_PORT", "GPUS_PER_NODE", "CUDA_VISIBLE_DEVICES"}

// unpackWorkdir downloads the work folder's archive and unpacks it,
// checking its digest over every byte.
func (r *run) unpackWorkdir(o runspec.Object, dir string) error {
	rc, err := signed.Open(r.ctx, r.a.opts.Client, o)
	if err != nil {
		return fmt.Errorf("downloading the work folder: %w", err)
	}
	defer rc.Close()
	n, err := dirtar.Extract(rc, dir, true)
	if err == nil {
		_, err = io.Copy(io.Discard, rc) // to the end: the digest is checked there
	}
	if err != nil {
		return fmt.Errorf("the work folder %s: %w", o.Key, err)
	}
	r.logf("unpacked the work folder %s (%d files)", shortDigest(o.Digest), n)
	return nil
}

// restoreCheckpoint unpacks the checkpoint an earlier attempt saved; a run
// without one starts fresh.
func (r *run) restoreCheckpoint(dir string) error {
	ck := r.spec.Checkpoint
	if ck == nil || ck.Get == nil {
		return nil
	}
	rc, err := signed.Open(r.ctx, r.a.opts.Client, *ck.Get)
	if errors.Is(err, fs.ErrNotExist) {
		r.logf("no checkpoint saved by an earlier attempt: starting fresh")
		return nil
	}
	if err != nil {
		return fmt.Errorf("downloading the checkpoint: %w", err)
	}
	defer rc.Close()
	n, err := dirtar.Extract(rc, dir, false)
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
	}
	if err != nil {
		return fmt.Errorf("restoring the checkpoint %s: %w", ck.Get.Key, err)
	}
	r.logf("restored the checkpoint of attempt %d into %s (%d files)", r.spec.Attempt-1, dir, n)
	return nil
}

// previousWait bounds the wait for the attempt before to end on this node:
// its program has stopGrace to go, then its last save a minute.
const previousWait = 3 * time.Minute

// waitPreviousAttempt waits until no other run of this node saves to the
// same checkpoint object: on a node that was not lost, a restart takes the
// lost attempt out of the inbox as it hands over the next one, and the
// agent may see both in one poll. The attempt before must make its last
// save before this one restores it (else the restore is older than what
// the node had), and its program must have let go of the node's ports
// (MASTER_PORT).
func (r *run) waitPreviousAttempt() error {
	ck := r.spec.Checkpoint
	if ck == nil || ck.Put.Key == "" {
		return nil
	}
	deadline := time.Now().Add(previousWait)
	logged := false
	for {
		prev := ""
		r.a.mu.Lock()
		for id, o := range r.a.runs {
			if o == r || !o.active() {
				continue
			}
			o.mu.Lock()
			if c := o.spec.Checkpoint; c != nil && c.Put.Key == ck.Put.Key {
				prev = id
			}
			o.mu.Unlock()
		}
		r.a.mu.Unlock()
		switch {
		case prev == "":
			return nil
		case time.Now().After(deadline):
			r.logf("run %s (the attempt before) has not ended after %s: starting without waiting for its last checkpoint", prev, previousWait)
			return nil
		case !logged:
			r.logf("waiting for run %s (the attempt before, stopping on this node) to save its checkpoint and end", prev)
			logged = true
		}
		select {
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// syncCheckpoints saves dir to the run's Checkpoint.Put while the program
// runs, and the function it returns stops that and saves it a last time
// (the program has ended then: a preempted node's last save is the one the
// next attempt most needs).
//
// The folder is looked at every checkpointPoll (an lstat of each file) and
// saved when it changed, at most once every Checkpoint.Every seconds, and
// less often when uploads are slow (at most a quarter of the time goes to
// them): a small checkpoint is in the run storage seconds after the program
// wrote it, a large one does not keep the network busy.
//
// Each save is one snapshot: a tar archive of the folder, taken while no
// file in it changed (its lstat fingerprint is the same before and after;
// otherwise it is taken again), uploaded whole under the one key, which the
// object store replaces at once. A restore therefore never sees a torn
// checkpoint, nor files of two different saves, provided the program writes
// each file whole (to a temporary name, then renamed), as the frameworks'
// checkpoint savers do.
func (r *run) syncCheckpoints(dir string) func() error {
	ck := r.spec.Checkpoint
	if ck == nil || ck.Put.URL == "" {
		return func() error { return nil }
	}
	every := time.Duration(ck.Every) * time.Second
	if every <= 0 {
		every = defaultCheckpointEvery * time.Second
	}
	poll := min(checkpointPoll, every)
	s := &dirSync{r: r, dir: dir, put: ck.Put}
	// What was restored is in the run storage already.
	s.savedPrint, _, _ = fingerprint(dir, time.Time{}, time.Time{})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(poll)
		defer t.Stop()
		next := time.Now() // the earliest time of the next save
		busyLogged := false
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if time.Now().Before(next) {
				continue
			}
			began := time.Now()
			saved, err := s.saveIfChanged(r.ctx)
			switch {
			case errors.Is(err, errChanging):
				// Looked at again at the next poll; its last save,
				// once the program ended, finds it still.
				if !busyLogged {
					r.logf("the checkpoint folder changed under every snapshot taken of it: it is saved when it is still for a moment (write checkpoints now and then, not continuously), and when the program ends")
					busyLogged = true
				}
			case err != nil:
				r.logf("%v (tried again in %s)", err, every)
				next = time.Now().Add(every)
			case saved:
				next = time.Now().Add(max(every, 3*time.Since(began)))
			}
		}
	}()
	return func() error {
		close(stop)
		<-done
		// The last save outlives a stop: it has its own deadline.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := s.saveIfChanged(ctx)
		return err
	}
}

const (
	// checkpointPoll is how often a checkpoint folder is looked at for
	// changes (a walk with lstat, no reads).
	checkpointPoll = time.Second
	// snapshotTries bounds the archives taken of a folder that changes
	// while it is archived.
	snapshotTries = 5
)

// dirSync saves one checkpoint folder to one object.
type dirSync struct {
	r   *run
	dir string
	put runspec.Object

	mu         sync.Mutex
	savedPrint string // the fingerprint of the folder as last saved (or restored)
	savedTar   string // the digest of the archive last uploaded
}

// errChanging is a folder that changed under every snapshot taken of it.
var errChanging = errors.New("it changed while it was archived, every time")

// saveIfChanged uploads a snapshot of the folder when it changed since the
// last one; it reports whether it uploaded.
func (s *dirSync) saveIfChanged(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fp, _, err := fingerprint(s.dir, time.Time{}, time.Time{}); err == nil && fp == s.savedPrint {
		return false, nil
	}
	tmp := filepath.Join(s.r.dir, "checkpoint.tar")
	defer os.Remove(tmp)
	sum, fp, err := snapshotDir(ctx, s.dir, tmp)
	if err != nil {
		return false, fmt.Errorf("archiving the checkpoint %s: %w", s.dir, err)
	}
	if sum.Digest == s.savedTar || (s.savedTar == "" && sum.Files == 0) {
		s.savedPrint = fp
		return false, nil // the same content, or nothing saved yet
	}
	fh, err := os.Open(tmp)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	if err := signed.Put(ctx, s.r.a.opts.Client, s.put, fh, sum.Size); err != nil {
		return false, fmt.Errorf("saving the checkpoint: %w", err)
	}
	s.savedPrint, s.savedTar = fp, sum.Digest
	s.r.logf("saved the checkpoint (%d files, %d bytes)", sum.Files, sum.Size)
	return true, nil
}

// snapshotDir archives dir into the file tmp while nothing in it changes:
// the folder's fingerprint is taken before and after, and the archive is
// taken again when they differ, when a file vanished under it, or when a
// file's modification time is too close to the archive's to tell (the
// kernel stamps writes with a coarse clock: two writes a few milliseconds
// apart can leave the same time).
func snapshotDir(ctx context.Context, dir, tmp string) (dirtar.Summary, string, error) {
	for try := 1; ; try++ {
		began := time.Now()
		before, _, err := fingerprint(dir, time.Time{}, time.Time{})
		if err == nil {
			var sum dirtar.Summary
			sum, err = dirtar.ToFile(dir, tmp, dirtar.Options{})
			after, busy, ferr := fingerprint(dir, began.Add(-mtimeGrain), time.Now().Add(mtimeGrain))
			switch {
			case err == nil && ferr == nil && after == before && !busy:
				return sum, before, nil
			case err != nil && ferr == nil && after == before:
				return sum, "", err // not a change under it: a real failure
			}
		}
		if try == snapshotTries {
			if err == nil {
				err = errChanging
			}
			return dirtar.Summary{}, "", fmt.Errorf("%w (%d tries)", err, try)
		}
		select {
		case <-ctx.Done():
			return dirtar.Summary{}, "", ctx.Err()
		case <-time.After(time.Duration(try) * mtimeGrain):
		}
	}
}

// mtimeGrain is the kernel's coarse clock step (a jiffy: 1 to 10 ms), with
// which it stamps a file's writes.
const mtimeGrain = 10 * time.Millisecond

// fingerprint sums what lstat says of every entry under dir (path, type,
// size, modification time, inode): a file written, replaced, added or
// removed changes it. busy reports an entry modified between from and to.
// A missing dir has the fingerprint of an empty one.
func fingerprint(dir string, from, to time.Time) (fp string, busy bool, err error) {
	h := sha256.New()
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipAll
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var ino uint64
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		mt := info.ModTime()
		busy = busy || (!mt.Before(from) && !mt.After(to))
		fmt.Fprintf(h, "%q %v %d %d %d\n", p, info.Mode(), info.Size(), mt.UnixNano(), ino)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), busy, err
}

// uploadOutput uploads node 0's LEPTON_OUTPUT_DIR (other nodes' are left
// on their node) and reports its digest, and that of the lepton model in
// it.
func (r *run) uploadOutput(c *runspec.Command, dir string) (*runspec.Result, error) {
	if c.Output == nil {
		if n := countFiles(dir); n > 0 {
			r.logf("node %d's LEPTON_OUTPUT_DIR holds %d files: they stay on the node (only node 0's output is uploaded)", r.spec.Node, n)
		}
		return &runspec.Result{}, nil
	}
	res := &runspec.Result{}
	if b, err := os.ReadFile(filepath.Join(dir, runspec.CommandModelFile)); err == nil {
		m, err := artifact.Decode(b, "LEPTON_OUTPUT_DIR/"+runspec.CommandModelFile)
		if err != nil {
			return nil, err
		}
		res.Model = m.Digest()
	}
	tmp := filepath.Join(r.dir, "output.tar")
	defer os.Remove(tmp)
	s, err := dirtar.ToFile(dir, tmp, dirtar.Options{})
	if err != nil {
		return nil, fmt.Errorf("archiving LEPTON_OUTPUT_DIR: %w", err)
	}
	fh, err := os.Open(tmp)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if err := signed.Put(r.ctx, r.a.opts.Client, *c.Output, fh, s.Size); err != nil {
		return nil, fmt.Errorf("uploading the output: %w", err)
	}
	res.Digest = s.Digest
	r.logf("uploaded the output: %d files, %d bytes, %s", s.Files, s.Size, s.Digest)
	return res, nil
}

func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// progressWriter turns what the program prints into the run's progress
// lines (the status's last lines, every one in the log).
type progressWriter struct {
	mu   sync.Mutex
	buf  []byte
	line func(string)
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > maxLine {
				w.line(string(w.buf[:maxLine]))
				w.buf = append([]byte(nil), w.buf[maxLine:]...)
				continue
			}
			return len(p), nil
		}
		w.line(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
}

// flush reports a last line without its newline.
func (w *progressWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}
