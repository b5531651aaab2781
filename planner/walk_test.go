package planner

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWalkRelease: a node that releases its slot lets another node run
// meanwhile (parallelism 1), while its dependents wait for it to return.
func TestWalkRelease(t *testing.T) {
	g := &graph{}
	a := g.add("a")
	b := g.add("b") // independent of a
	c := g.add("c")
	g.edge(c, a)
	var mu sync.Mutex
	var order []string
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	gate := make(chan struct{})
	var running atomic.Int32
	errs := g.walk(context.Background(), walkOptions{Parallelism: 1}, func(ctx context.Context, i int) error {
		if n := running.Add(1); n > 1 && i != b {
			t.Errorf("%d nodes working at once with parallelism 1", n)
		}
		switch i {
		case a:
			note("a works")
			running.Add(-1)
			release(ctx) // a now only waits: b may run
			<-gate
			note("a returns")
			return nil
		case b:
			note("b runs")
			close(gate)
		case c:
			note("c runs")
		}
		running.Add(-1)
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	want := []string{"a works", "b runs", "a returns", "c runs"}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}

// TestWalkReleaseOutsideWalk: release is a no-op for a context the walk did
// not make.
func TestWalkReleaseOutsideWalk(t *testing.T) {
	done := make(chan struct{})
	go func() { release(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("release blocked")
	}
}

// TestWalkIdle: once every running node only waits (released) and none can
// start, the walk calls Idle, and only then; the nodes are told whether
// others depend on them.
func TestWalkIdle(t *testing.T) {
	g := &graph{}
	a := g.add("a")
	b := g.add("b")
	c := g.add("c")
	g.edge(c, a) // c depends on a
	woke := make(chan struct{})
	var once sync.Once
	var started atomic.Int32
	deps := make([]bool, 3)
	errs := g.walk(context.Background(), walkOptions{Parallelism: 2, Idle: func() { once.Do(func() { close(woke) }) }}, func(ctx context.Context, i int) error {
		deps[i] = hasDependents(ctx)
		started.Add(1)
		if i == a || i == b {
			if i == b {
				// b works (holds its slot) for a while: no Idle meanwhile.
				time.Sleep(50 * time.Millisecond)
				select {
				case <-woke:
					t.Errorf("Idle called while b was working")
				default:
				}
			}
			release(ctx)
			select {
			case <-woke: // what Apply's Hurry ends: the wait for state
			case <-time.After(10 * time.Second):
				t.Errorf("node %d: Idle never called while every node waited", i)
			}
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	if started.Load() != 3 {
		t.Fatalf("%d nodes ran, want 3", started.Load())
	}
	if want := []bool{true, false, false}; deps[a] != want[0] || deps[b] != want[1] || deps[c] != want[2] {
		t.Fatalf("hasDependents = %v, want %v", deps, want)
	}
	if hasDependents(context.Background()) != true {
		t.Fatal("outside a walk, hasDependents must say true")
	}
}
