package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestMemoryLimit(t *testing.T) {
	cases := []struct {
		live uint64
		want int64
	}{
		{0, heapFloor},
		{50 << 20, heapFloor},
		{heapFloor / 2, heapFloor},
		{120 << 20, 240 << 20},
		{2 << 30, 4 << 30},
	}
	for _, c := range cases {
		if got := memoryLimit(c.live); got != c.want {
			t.Errorf("memoryLimit(%d) = %d, want %d", c.live, got, c.want)
		}
	}
}

func TestGCHookRunsAfterEachCollection(t *testing.T) {
	calls := make(chan struct{}, 10)
	armGCHook(func() { calls <- struct{}{} })
	for i := 0; i < 3; i++ {
		runtime.GC()
		select {
		case <-calls:
		case <-time.After(5 * time.Second):
			t.Fatalf("no call after collection %d", i+1)
		}
	}
}

func TestTuneGCLeavesUserSettings(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	percent := debug.SetGCPercent(100)
	defer debug.SetGCPercent(percent)
	tuneGC(func(k string) string {
		if k == "GOMEMLIMIT" {
			return "1GiB"
		}
		return ""
	})
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit changed to %d with GOMEMLIMIT set", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC changed to %d with GOMEMLIMIT set", got)
	}
}
