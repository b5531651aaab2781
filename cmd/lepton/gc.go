package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// heapFloor is the memory limit lepton sets for itself: below it the garbage
// collector behaves as with GOGC=100 alone; near it, it collects sooner
// rather than letting the heap double. A plan of 10,000 resources holds about
// 120 MB of live data, and doubling that was most of its 400 MB peak.
const heapFloor = 200 << 20

// tuneGC sets a soft memory limit of max(heapFloor, 2 × live heap), raised
// after every collection as the live heap grows, so the limit never makes
// the collector work harder than GOGC=100 would on a large workload: it only
// trims the peak of a middling one. GOMEMLIMIT or GOGC in the environment
// leave the runtime's own settings alone.
func tuneGC(getenv func(string) string) {
	if getenv("GOMEMLIMIT") != "" || getenv("GOGC") != "" {
		return
	}
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
