package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/train"
)

// A training stopped under its agent (a preemption) and started again as a
// new run on another node, from the checkpoint the first one kept in the
// run storage, ends with the model an uninterrupted run makes.
func TestCheckpointResumeOnAnotherNode(t *testing.T) {
	w := newWorld(t)
	ds := toyDataset(2000)
	spec := toySpec
	spec.Epochs = 60
	want, _ := localDigest(t, spec, ds)

	key := runspec.CheckpointKey("s1", 0)
	withCheckpoint := func(id string, attempt int) runspec.Run {
		r := w.trainingRun(id, spec, ds)
		r.Attempt = attempt
		r.Checkpoint = &runspec.Checkpoint{Get: ptr(w.sign(key, "GET")), Put: w.sign(key, "PUT")}
		return r
	}
	w.writeInbox(withCheckpoint("s1", 0))
	stop := w.startAgent(t.TempDir())
	w.waitStatus("s1", 60*time.Second, func(st runspec.Status) bool { return st.LineSeq >= 3 || runspec.Terminal(st.State) })
	deadline := time.Now().Add(30 * time.Second)
	for w.putCount(key) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop() // the node goes away in the middle of the run
	st, _ := w.status("s1")
	if st.State == runspec.StateSucceeded {
		t.Skipf("the run ended before it could be interrupted (%d epochs); make it longer", spec.Epochs)
	}
	if st.State != runspec.StateFailed || !st.Interrupted {
		t.Fatalf("the stopped run: %s interrupted=%v (%s)", st.State, st.Interrupted, st.Error)
	}
	b, err := w.get(key)
	if err != nil {
		t.Fatalf("no checkpoint kept in the run storage: %v", err)
	}
	tr := tar.NewReader(bytes.NewReader(b))
	if h, err := tr.Next(); err != nil || h.Name != train.CheckpointFile {
		t.Fatalf("the checkpoint object: %v %+v", err, h)
	}

	// Attempt 1 on a new node (a new agent directory).
	w.writeInbox(withCheckpoint("s1-a1", 1))
	w.startAgent(t.TempDir())
	st = w.waitStatus("s1-a1", 120*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateSucceeded || st.Result == nil {
		t.Fatalf("attempt 1: %s: %s", st.State, st.Error)
	}
	if st.Result.Model != want {
		t.Errorf("the resumed run's model is %s, an uninterrupted run's %s", st.Result.Model, want)
	}
	log, _ := w.get(runspec.LogKey("s1-a1", 0))
	for _, s := range []string{"restored the checkpoint " + key, "resuming from checkpoint: epoch"} {
		if !strings.Contains(string(log), s) {
			t.Errorf("attempt 1's log lacks %q:\n%s", s, log)
		}
	}
}

// A first attempt finds no checkpoint and starts from the beginning; an
// object that is not a checkpoint archive fails the run clearly.
func TestCheckpointMissingAndCorrupt(t *testing.T) {
	w := newWorld(t)
	ds := toyDataset(200)
	want, _ := localDigest(t, toySpec, ds)
	key := runspec.CheckpointKey("m1", 0)
	r := w.trainingRun("m1", toySpec, ds)
	r.Checkpoint = &runspec.Checkpoint{Get: ptr(w.sign(key, "GET")), Put: w.sign(key, "PUT")}
	w.writeInbox(r)
	w.startAgent(t.TempDir())
	st := w.waitStatus("m1", 60*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateSucceeded || st.Result.Model != want {
		t.Fatalf("fresh start: %s %s %+v", st.State, st.Error, st.Result)
	}
	if _, err := w.get(key); err != nil {
		t.Errorf("the finished run kept no checkpoint: %v", err)
	}

	bad := runspec.CheckpointKey("m2", 0)
	w.put(bad, []byte("not a tar archive, not a checkpoint"))
	r2 := w.trainingRun("m2", toySpec, ds)
	r2.Attempt = 1
	r2.Checkpoint = &runspec.Checkpoint{Get: ptr(w.sign(bad, "GET")), Put: w.sign(bad, "PUT")}
	w.writeInbox(r2)
	st = w.waitStatus("m2", 60*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateFailed || !strings.Contains(st.Error, "checkpoint") || st.Interrupted {
		t.Errorf("a corrupt checkpoint: %s interrupted=%v %q", st.State, st.Interrupted, st.Error)
	}
}

// A checkpoint folder whose file is rewritten in place (not atomically)
// while it is archived is never saved torn: a snapshot holds the file as
// one write left it, or is taken again, or gives up for this round.
func TestSnapshotDirNeverTorn(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "state")
	const size = 1 << 20
	write := func(c byte) {
		f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			panic(err)
		}
		defer f.Close()
		chunk := bytes.Repeat([]byte{c}, size/4)
		for i := 0; i < 4; i++ {
			f.WriteAt(chunk, int64(i*len(chunk)))
			time.Sleep(time.Millisecond)
		}
	}
	write('a')
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		for c := byte('b'); ; c = 'a' + (c-'a'+1)%26 {
			select {
			case <-stop:
				return
			default:
			}
			write(c)
			time.Sleep(150 * time.Millisecond)
		}
	}()
	tmp := filepath.Join(t.TempDir(), "ck.tar")
	ok := 0
	for i := 0; i < 20; i++ {
		_, _, err := snapshotDir(context.Background(), dir, tmp)
		if err != nil {
			if !errors.Is(err, errChanging) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("snapshot %d: %v", i, err)
			}
			continue
		}
		b, _ := os.ReadFile(tmp)
		got := untar(t, b)["state"]
		if len(got) != size || strings.Trim(got, got[:1]) != "" {
			t.Fatalf("snapshot %d holds a torn file: %d bytes, %q...%q", i, len(got), got[:8], got[len(got)-8:])
		}
		ok++
	}
	if ok == 0 {
		t.Error("no snapshot of 20 was taken between the writes")
	}
}

// A command's checkpoint folder reaches the run storage while the program
// runs (not only when it ends), each save a whole snapshot.
func TestCommandCheckpointSyncedWhileRunning(t *testing.T) {
	w := newWorld(t)
	key := runspec.CheckpointKey("w1", 0)
	run := w.commandRun("w1", runspec.Command{Args: []string{"sh", "-c", `i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo $i > "$LEPTON_CHECKPOINT_DIR/step.tmp"; mv "$LEPTON_CHECKPOINT_DIR/step.tmp" "$LEPTON_CHECKPOINT_DIR/step"; echo "step $i"; sleep 0.1; done`}})
	run.Checkpoint = &runspec.Checkpoint{Put: w.sign(key, "PUT"), Every: 1}
	w.writeInbox(run)
	w.startAgent(t.TempDir())
	deadline := time.Now().Add(30 * time.Second)
	for w.putCount(key) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	st, _ := w.status("w1")
	if runspec.Terminal(st.State) {
		t.Fatalf("no checkpoint saved before the program ended (%s)", st.State)
	}
	b, err := w.get(key)
	if err != nil {
		t.Fatal(err)
	}
	if step := strings.TrimSpace(untar(t, b)["step"]); step == "" || step == "40" {
		t.Errorf("the checkpoint saved while the program ran holds step %q", step)
	}
	st = w.waitStatus("w1", 60*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateSucceeded {
		t.Fatalf("%s: %s", st.State, st.Error)
	}
	b, _ = w.get(key)
	if step := strings.TrimSpace(untar(t, b)["step"]); step != "40" {
		t.Errorf("the last save holds step %q, want 40", step)
	}
	if n := w.putCount(key); n < 2 || n > 15 {
		t.Errorf("%d saves of a folder changed 40 times in 4 s with Every 1 s", n)
	}
}

// A restart hands a node that was not lost the next attempt as it takes the
// lost one out of its inbox: the next attempt waits for the one before to
// make its last save (here slow, on SIGTERM) and restores that.
func TestCommandNextAttemptWaitsForLastSave(t *testing.T) {
	w := newWorld(t)
	key := runspec.CheckpointKey("a0", 1)
	first := w.commandRun("a0", runspec.Command{Args: []string{"sh", "-c", `trap 'sleep 1; echo final > "$LEPTON_CHECKPOINT_DIR/step"; exit 0' TERM; echo 1 > "$LEPTON_CHECKPOINT_DIR/step"; echo ready; while true; do sleep 0.1; done`}})
	first.Checkpoint = &runspec.Checkpoint{Put: w.sign(key, "PUT"), Every: 3600}
	w.writeInbox(first)
	w.startAgent(t.TempDir())
	w.waitStatus("a0", 30*time.Second, func(st runspec.Status) bool { return len(st.Lines) > 0 })

	get := w.sign(key, "GET")
	get.Digest = ""
	next := w.commandRun("a1", runspec.Command{Args: []string{"sh", "-c", `echo "resumed at $(cat "$LEPTON_CHECKPOINT_DIR/step")"`}})
	next.Attempt = 1
	next.Checkpoint = &runspec.Checkpoint{Get: &get, Put: w.sign(key, "PUT"), Every: 3600}
	w.writeInbox(next) // a0 leaves, a1 comes, in one poll
	st := w.waitStatus("a1", 60*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateSucceeded || !strings.Contains(strings.Join(st.Lines, "\n"), "resumed at final") {
		t.Fatalf("attempt 1: %s %s:\n%s", st.State, st.Error, strings.Join(st.Lines, "\n"))
	}
	if st, _ := w.status("a0"); st.State != runspec.StateStopped {
		t.Errorf("attempt 0: %s", st.State)
	}
}

// A program that rewrites its checkpoint all the time gives no quiet moment
// for a snapshot while it runs: that is said once in its log, and the folder
// is saved whole when the program ends.
func TestCommandBusyCheckpointSavedAtTheEnd(t *testing.T) {
	w := newWorld(t)
	key := runspec.CheckpointKey("b1", 0)
	run := w.commandRun("b1", runspec.Command{Args: []string{"sh", "-c", `sleep 3 & p=$!; i=0; while kill -0 $p 2>/dev/null; do i=$((i+1)); echo $i > "$LEPTON_CHECKPOINT_DIR/n"; done; echo "last $i"`}})
	run.Checkpoint = &runspec.Checkpoint{Put: w.sign(key, "PUT"), Every: 1}
	w.writeInbox(run)
	w.startAgent(t.TempDir())
	st := w.waitStatus("b1", 60*time.Second, func(st runspec.Status) bool { return runspec.Terminal(st.State) })
	if st.State != runspec.StateSucceeded {
		t.Fatalf("%s: %s", st.State, st.Error)
	}
	lines := strings.Join(st.Lines, "\n")
	log, _ := w.get(runspec.LogKey("b1", 0))
	last := ""
	for _, l := range st.Lines {
		if v, ok := strings.CutPrefix(l, "last "); ok {
			last = v
		}
	}
	b, err := w.get(key)
	if err != nil {
		t.Fatalf("no checkpoint saved: %v\n%s", err, lines)
	}
	if got := strings.TrimSpace(untar(t, b)["n"]); last == "" || got != last {
		t.Errorf("the saved checkpoint holds %q; the program's last write was %q", got, last)
	}
	if n := strings.Count(string(log), "changed under every snapshot"); n != 1 {
		t.Errorf("the busy folder was reported %d times, want once:\n%s", n, log)
	}
}
