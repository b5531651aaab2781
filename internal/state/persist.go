package state

import (
	"sync"
	"time"
)

// Writer is where a Persister writes encoded state. b is valid only during
// the call (the Persister reuses its buffer for the next write).
type Writer interface {
	WriteBytes(b []byte) error
}

// Persister owns the live state during an apply and writes it as resources
// finish. Writes are grouped: while one write is in flight, every change that
// arrives joins the next one, so 10,000 quick resources cost a few dozen
// atomic writes rather than 10,000, and a change is reported done only after
// the write that holds it is on disk — the durability of writing each change
// on its own, at the cost of a short wait.
//
// Back-to-back writes are also paced: after a write, the next one waits until
// at least pacing(duration of that write) has passed, unless Flush or Close
// asks for it. A state of 10,000 resources is tens of megabytes; writing it
// whenever the previous write ends would spend most of an apply's CPU time
// on state files. Pacing only delays when completions are reported.
type Persister struct {
	w       Writer
	mu      sync.Mutex
	st      *State
	enc     Encoder // remembers unchanged resources' rendering between writes
	dirty   bool
	waiters []func()
	kick    chan struct{}
	urgent  chan struct{} // Flush or Close is waiting: skip the pacing pause
	stopped chan struct{}
	closing bool
	err     error
}

// NewPersister starts a persister for st; Close stops it.
func NewPersister(w Writer, st *State) *Persister {
	p := &Persister{w: w, st: st, kick: make(chan struct{}, 1), urgent: make(chan struct{}, 1), stopped: make(chan struct{})}
	go p.loop()
	return p
}

// Update changes the live state under the persister's lock; onDurable (may be
// nil) runs once a write holding the change has completed (or failed).
func (p *Persister) Update(fn func(*State), onDurable func()) {
	p.mu.Lock()
	fn(p.st)
	p.dirty = true
	if onDurable != nil {
		p.waiters = append(p.waiters, onDurable)
	}
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// View runs fn with the live state under the lock (read only).
func (p *Persister) View(fn func(*State)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p.st)
}

func (p *Persister) loop() {
	defer close(p.stopped)
	var next time.Time // earliest start of the next write (pacing)
	for range p.kick {
		if wait := time.Until(next); wait > 0 {
			p.pause(wait)
		}
		p.mu.Lock()
		waiters := p.waiters
		p.waiters = nil
		if !p.dirty {
			// Only flush waiters: every earlier write has completed.
			closing := p.closing
			p.mu.Unlock()
			for _, w := range waiters {
				w()
			}
			if closing {
				return
			}
			continue
		}
		start := time.Now()
		p.st.Serial++
		meta := MetaOf(p.st)
		b, err := p.enc.EncodeReuse(p.st)
		p.dirty = false
		p.mu.Unlock()
		if err == nil {
			if mw, ok := p.w.(metaWriter); ok {
				err = mw.WriteState(meta, b)
			} else {
				err = p.w.WriteBytes(b)
			}
		}
		took := time.Since(start)
		p.mu.Lock()
		if err != nil && p.err == nil {
			p.err = err
		}
		again := p.dirty || len(p.waiters) > 0
		p.mu.Unlock()
		for _, w := range waiters {
			w()
		}
		next = time.Now().Add(pacing(took))
		if again {
			select {
			case p.kick <- struct{}{}:
			default:
			}
		}
	}
}

// pacing is the pause after a write that took d before the next one: three
// times as long (so at most a quarter of the time goes to writing state), at
// least 100ms, at most a second.
func pacing(d time.Duration) time.Duration {
	return min(max(3*d, 100*time.Millisecond), time.Second)
}

// pause waits for d, or less when a Flush or Close is waiting.
func (p *Persister) pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.urgent:
	}
}

// Hurry ends a pacing pause, now or when the next one starts: for a caller
// with nothing to do until pending changes are written.
func (p *Persister) Hurry() { p.hurry() }

// hurry ends a pacing pause, now or when the next one starts.
func (p *Persister) hurry() {
	select {
	case p.urgent <- struct{}{}:
	default:
	}
}

// Flush waits until every change made so far is written.
func (p *Persister) Flush() error {
	done := make(chan struct{})
	p.mu.Lock()
	p.waiters = append(p.waiters, func() { close(done) })
	p.mu.Unlock()
	p.hurry()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	<-done
	return p.Err()
}

// Close writes what is pending and stops the persister.
func (p *Persister) Close() error {
	err := p.Flush()
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	<-p.stopped
	return err
}

// Err returns the first write error.
func (p *Persister) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
