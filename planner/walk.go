package planner

import (
	"context"
	"strings"
	"sync"
)

// graph is a dependency graph over nodes 0..n-1: deps[i] must finish before i.
type graph struct {
	names []string
	deps  [][]int
}

func (g *graph) add(name string) int {
	g.names = append(g.names, name)
	g.deps = append(g.deps, nil)
	return len(g.names) - 1
}

func (g *graph) edge(from, dependsOn int) {
	if from != dependsOn {
		g.deps[from] = append(g.deps[from], dependsOn)
	}
}

// cycle returns one cycle as a path of node names, or nil.
func (g *graph) cycle() []string {
	const (
		white = iota
		grey
		black
	)
	color := make([]uint8, len(g.names))
	parent := make([]int, len(g.names))
	// Iterative DFS so deep chains cannot overflow the stack.
	for start := range g.names {
		if color[start] != white {
			continue
		}
		type frame struct{ node, next int }
		stack := []frame{{start, 0}}
		color[start] = grey
		parent[start] = -1
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next < len(g.deps[top.node]) {
				d := g.deps[top.node][top.next]
				top.next++
				switch color[d] {
				case white:
					color[d] = grey
					parent[d] = top.node
					stack = append(stack, frame{d, 0})
				case grey:
					// Found a back edge top.node -> d: the cycle is d ... top.node -> d.
					path := []string{g.names[d]}
					var rev []string
					for n := top.node; n != d; n = parent[n] {
						rev = append(rev, g.names[n])
					}
					for i := len(rev) - 1; i >= 0; i-- {
						path = append(path, rev[i])
					}
					// The DFS went down references, so the path is already in
					// reference order: each node refers to the next.
					return append(path, path[0])
				}
				continue
			}
			color[top.node] = black
			stack = stack[:len(stack)-1]
		}
	}
	return nil
}

// CycleError names a dependency cycle.
type CycleError struct{ Path []string }

func (e *CycleError) Error() string {
	return "dependency cycle: " + strings.Join(e.Path, " -> ")
}

// errSkipped marks nodes not run because a dependency failed.
type errSkipped struct{ dep string }

func (e errSkipped) Error() string { return "skipped because " + e.dep + " failed" }

// walkOptions tunes a walk.
type walkOptions struct {
	// Stop, when closed, starts no new node.
	Stop <-chan struct{}
	// Parallelism is how many nodes run at once (at least 1).
	Parallelism int
	// Idle (may be nil) is called when the walk is about to wait while no
	// node works: every running node has given its slot back (release) and
	// waits for something outside the walk, and none can start. Apply uses
	// it to write state now instead of after the write's pacing pause,
	// which would otherwise only delay the end of the walk.
	Idle func()
}

// walk runs fn for every node once all its dependencies succeeded, at most
// opts.Parallelism at a time. A failed node's dependents are skipped;
// independent branches go on. When opts.Stop is closed no new node starts. It
// returns each node's error (nil for success, errSkipped for skipped,
// context.Canceled for nodes never started after stop).
//
// fn's context tells whether the node has dependents (hasDependents) and lets
// it give its slot back while it waits (release).
func (g *graph) walk(ctx context.Context, opts walkOptions, fn func(ctx context.Context, node int) error) []error {
	stop, parallelism := opts.Stop, opts.Parallelism
	n := len(g.names)
	errs := make([]error, n)
	if n == 0 {
		return errs
	}
	if parallelism < 1 {
		parallelism = 1
	}
	pending := make([]int, n)
	dependents := make([][]int, n)
	for i, ds := range g.deps {
		seen := map[int]bool{}
		for _, d := range ds {
			if seen[d] {
				continue
			}
			seen[d] = true
			pending[i]++
			dependents[d] = append(dependents[d], i)
		}
	}
	var mu sync.Mutex
	failedDep := make([]string, n)
	ready := make(chan int, n)
	for i := range pending {
		if pending[i] == 0 {
			ready <- i
		}
	}
	// A node's goroutine sends at most a release, then its end, on the same
	// channel: the walk sees them in that order.
	done := make(chan walkEvent, 2*n)
	released := make([]bool, n)
	remaining := n
	running := 0
	waiting := 0 // running nodes that gave their slot back
	stopped := false
	var queue []int
	sem := parallelism
	launch := func(i int) {
		running++
		sem--
		go func() {
			var once sync.Once
			nctx := context.WithValue(ctx, nodeKey{}, nodeInfo{
				release: func() {
					once.Do(func() { done <- walkEvent{node: i, release: true} })
				},
				dependents: len(dependents[i]) > 0,
			})
			err := fn(nctx, i)
			mu.Lock()
			errs[i] = err
			mu.Unlock()
			done <- walkEvent{node: i}
		}()
	}
	// finish propagates completion; skipped nodes complete immediately.
	var finish func(i int)
	finish = func(i int) {
		remaining--
		for _, d := range dependents[i] {
			if errs[i] != nil && failedDep[d] == "" {
				if _, ok := errs[i].(errSkipped); ok {
					failedDep[d] = failedDep[i]
				} else {
					failedDep[d] = g.names[i]
				}
			}
			pending[d]--
			if pending[d] == 0 {
				ready <- d
			}
		}
	}
	for remaining > 0 {
		// Drain ready nodes into the queue.
	drain:
		for {
			select {
			case i := <-ready:
				queue = append(queue, i)
			default:
				break drain
			}
		}
		for len(queue) > 0 && sem > 0 && !stopped {
			i := queue[0]
			queue = queue[1:]
			if failedDep[i] != "" {
				errs[i] = errSkipped{failedDep[i]}
				finish(i)
				continue
			}
			launch(i)
		}
		if stopped {
			for _, i := range queue {
				errs[i] = context.Canceled
				finish(i)
			}
			queue = nil
			if running == 0 {
				// Everything not yet started never will be.
				for i := range errs {
					if errs[i] == nil && pending[i] > 0 {
						errs[i] = context.Canceled
					}
				}
				return errs
			}
		}
		if remaining == 0 {
			break
		}
		if len(queue) > 0 && sem > 0 && !stopped {
			continue
		}
		if opts.Idle != nil && running > 0 && running == waiting && len(queue) == 0 {
			opts.Idle()
		}
		select {
		case e := <-done:
			if e.release {
				released[e.node] = true
				waiting++
				sem++
				continue
			}
			running--
			if released[e.node] {
				waiting--
			} else {
				sem++
			}
			finish(e.node)
		case i := <-ready:
			queue = append(queue, i)
		case <-stop:
			stopped = true
			stop = nil
		}
	}
	return errs
}

// walkEvent is a node's release of its slot, or its end.
type walkEvent struct {
	node    int
	release bool
}

type nodeKey struct{}

// nodeInfo is what a walk tells the node it runs, through its context.
type nodeInfo struct {
	release    func()
	dependents bool
}

// release gives the calling node's parallelism slot back to the walk while
// the node goes on waiting (for its state to be durable, say): another node
// may start meanwhile, but the node's dependents still wait for it to return.
func release(ctx context.Context) {
	if ni, ok := ctx.Value(nodeKey{}).(nodeInfo); ok {
		ni.release()
	}
}

// hasDependents reports whether some node of the walk waits for the calling
// one (true outside a walk: nothing says otherwise).
func hasDependents(ctx context.Context) bool {
	ni, ok := ctx.Value(nodeKey{}).(nodeInfo)
	return !ok || ni.dependents
}
