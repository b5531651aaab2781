package planner

import "context"

// awaitDurable returns once the state write recording a node's change has
// completed (ch closed, after its "complete" line), so that the nodes that
// depend on it start, and print their "Creating...", only after that line:
// what the progress shows happened in that order, and a dependent never runs
// on a dependency that state does not hold yet. The node gives its
// parallelism slot back while it waits (the write is paced and batched, see
// state.Persister), so independent nodes are not slowed.
//
// A node no other node depends on does not wait: its line is printed when
// the write completes all the same, and Apply's final flush waits for it.
// Thousands of goroutines parked on writes made a large apply slower (more
// stacks and live values for the collector to scan).
func awaitDurable(ctx context.Context, ch <-chan struct{}) {
	if !hasDependents(ctx) {
		return
	}
	release(ctx)
	<-ch
}
