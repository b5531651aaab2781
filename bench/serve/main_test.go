package main

import (
	"context"
	"io"
	"os"
	"testing"
	"time"
)

// The test binary is also the server binary for the soak's detached process.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "internal-serve" {
		if err := internalServe(context.Background(), os.Args[2:]); err != nil {
			os.Stderr.WriteString("internal-serve: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestShortSoak is the short version of -soak: load on a detached server
// process while it is updated in place several times; no request may fail.
func TestShortSoak(t *testing.T) {
	r, err := soak(context.Background(), options{conns: 8, soak: 3 * time.Second, swapEvery: 200 * time.Millisecond, workers: 1, maxBatch: 64}, io.Discard)
	if err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	if r.swaps < 2 { // a busy machine may fit few updates in 3 s
		t.Fatalf("only %d updates happened", r.swaps)
	}
}

func TestSoakCheckCatchesGrowthAndErrors(t *testing.T) {
	flat := make([]memSample, 9)
	for i := range flat {
		flat[i] = memSample{heapInuse: 10 << 20, rss: 30 << 20, goroutines: 60}
	}
	ok := soakResult{load: loadResult{requests: 100}, swaps: 3, samples: flat}
	if err := ok.check(); err != nil {
		t.Fatal(err)
	}
	grow := ok
	grow.samples = append([]memSample{}, flat...)
	grow.samples[8].heapInuse = 40 << 20
	if grow.check() == nil {
		t.Fatal("heap growth not caught")
	}
	failed := ok
	failed.load.errors = 1
	if failed.check() == nil {
		t.Fatal("request error not caught")
	}
}
