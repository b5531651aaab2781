package state

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingWriter keeps every document written, parsed.
type recordingWriter struct {
	mu     sync.Mutex
	writes []*State
}

func (w *recordingWriter) WriteBytes(b []byte) error {
	s, err := Parse(b)
	if err != nil {
		return fmt.Errorf("written state does not parse: %w", err)
	}
	w.mu.Lock()
	w.writes = append(w.writes, s)
	w.mu.Unlock()
	return nil
}

func (w *recordingWriter) last() *State {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.writes) == 0 {
		return nil
	}
	return w.writes[len(w.writes)-1]
}

// TestPersisterReportsOnlyDurableChanges: many concurrent changes, grouped
// and paced, each reported only once a written document holds it, and the
// final document holds them all.
func TestPersisterReportsOnlyDurableChanges(t *testing.T) {
	const n = 500
	w := &recordingWriter{}
	p := NewPersister(w, New("test"))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			addr := fmt.Sprintf("dataset.d%03d", i)
			p.Update(func(s *State) {
				s.Resources = append(s.Resources, &Resource{Address: addr, Kind: "dataset", Name: addr[8:], Status: StatusReady, Attributes: json.RawMessage(`{"n":1}`)})
			}, func() {
				defer wg.Done()
				if last := w.last(); last == nil || last.Find(addr) == nil {
					errs <- fmt.Errorf("%s reported durable before a write held it", addr)
				}
			})
		}()
	}
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	last := w.last()
	if last == nil || len(last.Resources) != n {
		t.Fatalf("final state holds %d resources, want %d", len(last.Resources), n)
	}
	if len(w.writes) >= n {
		t.Errorf("%d writes for %d changes: writes are not grouped", len(w.writes), n)
	}
	for i := 1; i < len(w.writes); i++ {
		if w.writes[i].Serial <= w.writes[i-1].Serial {
			t.Errorf("serial went from %d to %d", w.writes[i-1].Serial, w.writes[i].Serial)
		}
	}
}

// TestPersisterFlushWritesPending: a Flush in the middle of paced writes
// returns only once everything changed before it is written.
func TestPersisterFlushWritesPending(t *testing.T) {
	w := &recordingWriter{}
	p := NewPersister(w, New("test"))
	defer p.Close()
	for round := 0; round < 5; round++ {
		for i := 0; i < 20; i++ {
			addr := fmt.Sprintf("dataset.r%d_%d", round, i)
			p.Update(func(s *State) {
				s.Resources = append(s.Resources, &Resource{Address: addr, Kind: "dataset", Attributes: json.RawMessage(`{}`)})
			}, nil)
		}
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		last := w.last()
		if got, want := len(last.Resources), 20*(round+1); got != want {
			t.Fatalf("after Flush %d the written state holds %d resources, want %d", round, got, want)
		}
		if !strings.HasPrefix(last.Resources[len(last.Resources)-1].Address, "dataset.r") {
			t.Fatalf("unexpected resource %s", last.Resources[len(last.Resources)-1].Address)
		}
	}
}

// slowFirstWriter takes long over its first write, so that the persister
// paces the next one for the longest pause (a second).
type slowFirstWriter struct {
	mu    sync.Mutex
	ends  []time.Time
	first time.Duration
}

func (w *slowFirstWriter) WriteBytes([]byte) error {
	w.mu.Lock()
	n := len(w.ends)
	w.mu.Unlock()
	if n == 0 {
		time.Sleep(w.first)
	}
	w.mu.Lock()
	w.ends = append(w.ends, time.Now())
	w.mu.Unlock()
	return nil
}

// TestPersisterHurryEndsPacing: after a slow write the next one waits a
// second, unless Hurry says the caller has nothing else to do.
func TestPersisterHurryEndsPacing(t *testing.T) {
	for _, hurry := range []bool{false, true} {
		w := &slowFirstWriter{first: 400 * time.Millisecond}
		p := NewPersister(w, New("test"))
		put := func(addr string) chan struct{} {
			done := make(chan struct{})
			p.Update(func(s *State) {
				s.Resources = append(s.Resources, &Resource{Address: addr, Kind: "dataset", Attributes: json.RawMessage(`{}`)})
			}, func() { close(done) })
			return done
		}
		<-put("dataset.a")
		second := put("dataset.b")
		if hurry {
			p.Hurry()
		}
		<-second
		w.mu.Lock()
		gap := w.ends[1].Sub(w.ends[0])
		w.mu.Unlock()
		// Paced: a second's pause. Hurried: no pause at all; 600ms leaves
		// room for a loaded machine.
		if hurry && gap > 600*time.Millisecond {
			t.Errorf("hurried write came %v after the first, want no pacing pause", gap)
		}
		if !hurry && gap < 900*time.Millisecond {
			t.Errorf("unhurried write came %v after the first, want a pacing pause near 1s", gap)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
