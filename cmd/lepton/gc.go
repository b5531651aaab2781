package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// heapFloor is the smallest memory limit lepton sets for itself.
const heapFloor = 200 << 20

// gcPercent is lepton's GOGC: a run is short, and most of what it allocates
// dies young, so collecting at three times the live heap rather than twice
// saves work; the memory limit keeps the peak in check.
const gcPercent = 200

// tuneGC makes the collector run as with GOGC=200 until the heap reaches a
// soft limit of max(heapFloor, 2 × live heap), raised after every collection
// as the live heap grows: a small run collects less often than with the
// default GOGC=100 and stays under heapFloor, and a large one collects as
// often as with GOGC=100, never more. (A limit at heapFloor for live heaps up
// to 150 MiB trimmed a no-op plan of 10,000 datasets from 335 to 250 MB, but
// made an apply of them, whose live heap crosses that band, collect without
// pause: 3.1 s became 5.1 s.) GOMEMLIMIT or GOGC in the environment leave
// the runtime's own settings alone. Measured in docs/benchmarks/core.md.
func tuneGC(getenv func(string) string) {
	if getenv("GOMEMLIMIT") != "" || getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(heapFloor)
	armGCHook(func() { debug.SetMemoryLimit(memoryLimit(liveHeap())) })
}

// memoryLimit is the limit for a live heap of live bytes.
func memoryLimit(live uint64) int64 {
	return int64(max(heapFloor, 2*live))
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// armGCHook calls f after each garbage collection: a finalizer on an
// unreachable object runs once the collector has found it garbage, and
// re-arms itself.
func armGCHook(f func()) {
	type sentinel struct{ _ [16]byte }
	var arm func()
	arm = func() {
		runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
			f()
			arm()
		})
	}
	arm()
}
