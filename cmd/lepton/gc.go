package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
)

// heapFloor is the smallest memory limit lepton sets for itself.
const heapFloor = 225 << 20

// gcPercent is lepton's GOGC: a run is short, and most of what it allocates
// dies young, so collecting at three times the live heap rather than twice
// saves work; the memory limit keeps the peak in check.
const gcPercent = 200

// tuneGC makes the collector run as with GOGC=200 until the heap reaches a
// soft limit of max(heapFloor, headroom × live heap), raised after every
// collection as the live heap grows: a small run collects less often than
// with the default GOGC=100 and stays under heapFloor. GOMEMLIMIT or GOGC in
// the environment leave the runtime's own settings alone.
//
// headroom is 2 (as GOGC=100) for commands that change state, 1.5 for those
// that only read it (headroomFor). Measured on 10,000 datasets (see
// docs/benchmarks/core.md): a no-op plan peaks at 285 MB with 1.5 and 330 MB
// with 2, in the same time; an apply, whose live heap keeps growing with the
// state it writes, takes 3.1 s with 2 and 5.4 s with 1.5.
func tuneGC(getenv func(string) string, headroom float64) {
	if getenv("GOMEMLIMIT") != "" || getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(heapFloor)
	armGCHook(func() { debug.SetMemoryLimit(memoryLimit(liveHeap(), headroom)) })
}

// headroomFor is tuneGC's headroom for a command line (global options first).
func headroomFor(args []string) float64 {
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		switch a {
		case "apply", "destroy", "state", "init", "internal-serve":
			return 2
		}
		return 1.5
	}
	return 2
}

// memoryLimit is the limit for a live heap of live bytes.
func memoryLimit(live uint64, headroom float64) int64 {
	return max(heapFloor, int64(float64(live)*headroom))
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
