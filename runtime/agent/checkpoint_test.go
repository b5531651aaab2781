package agent

import (
	"archive/tar"
	"bytes"
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
