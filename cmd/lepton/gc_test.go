package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestMemoryLimit(t *testing.T) {
	cases := []struct {
		live     uint64
		headroom float64
		want     int64
	}{
		{0, 2, heapFloor},
		{50 << 20, 2, heapFloor},
		{heapFloor / 2, 2, heapFloor},
		{120 << 20, 2, 240 << 20},
		{120 << 20, 1.5, heapFloor},
		{200 << 20, 1.5, 300 << 20},
		{2 << 30, 2, 4 << 30},
	}
	for _, c := range cases {
		if got := memoryLimit(c.live, c.headroom); got != c.want {
			t.Errorf("memoryLimit(%d, %v) = %d, want %d", c.live, c.headroom, got, c.want)
		}
	}
}

func TestHeadroomFor(t *testing.T) {
	cases := map[string]float64{
		"plan":                          1.5,
		"-chdir=x plan -json":           1.5,
		"validate":                      1.5,
		"show dataset.a":                1.5,
		"apply -auto-approve":           2,
		"-chdir=x destroy":              2,
		"state rm dataset.a":            2,
		"":                              2,
		"-chdir=x internal-serve -addr": 2,
	}
	for line, want := range cases {
		if got := headroomFor(strings.Fields(line)); got != want {
			t.Errorf("headroomFor(%q) = %v, want %v", line, got, want)
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
	}, 2)
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit changed to %d with GOMEMLIMIT set", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC changed to %d with GOMEMLIMIT set", got)
	}
}
