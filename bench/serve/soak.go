package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/leptonml/lepton/runtime/serve"
	"github.com/leptonml/lepton/runtime/serve/testmodel"
)

// internalServe is the detached server mode of this binary, the same entry
// point `lepton internal-serve` uses, with a loader for seeded test models
// ("mnist:SEED").
func internalServe(ctx context.Context, args []string) error {
	return serve.Main(ctx, args, func(_ context.Context, src serve.ModelSource) (serve.Model, error) {
		seed, ok := strings.CutPrefix(src.Artifact, "mnist:")
		n, err := strconv.ParseUint(seed, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("bench loader: unknown model %q", src.Artifact)
		}
		return testmodel.MNIST(n), nil
	})
}

type memSample struct {
	at         time.Duration
	heapInuse  float64
	rss        float64
	goroutines float64
}

type soakResult struct {
	load    loadResult
	swaps   int
	samples []memSample
}

func (r soakResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %s, %d in-place updates (model swap + worker count)\n", r.load, r.swaps)
	fmt.Fprintln(&b, "| t (s) | heap in use (MiB) | RSS (MiB) | goroutines |")
	fmt.Fprintln(&b, "|---:|---:|---:|---:|")
	for _, s := range r.samples {
		fmt.Fprintf(&b, "| %.0f | %.1f | %.1f | %.0f |\n", s.at.Seconds(), s.heapInuse/(1<<20), s.rss/(1<<20), s.goroutines)
	}
	return b.String()
}

// check fails on any request error and, when there are enough samples, on
// memory or goroutine growth: the peak over the last third of the run may
// not exceed the peak over the first third (after warm-up) by more than
// 25% plus 8 MiB of slack.
func (r soakResult) check() error {
	if r.load.errors > 0 {
		return fmt.Errorf("soak: %d of %d requests failed; first: %s", r.load.errors, r.load.requests+r.load.errors, r.load.firstErr)
	}
	if r.load.requests == 0 || r.swaps == 0 {
		return fmt.Errorf("soak: %d requests and %d updates, nothing was tested", r.load.requests, r.swaps)
	}
	if len(r.samples) < 6 {
		return nil
	}
	third := len(r.samples) / 3
	peak := func(s []memSample, f func(memSample) float64) float64 {
		m := 0.0
		for _, x := range s {
			m = max(m, f(x))
		}
		return m
	}
	for _, c := range []struct {
		name  string
		f     func(memSample) float64
		slack float64
	}{
		{"heap in use", func(s memSample) float64 { return s.heapInuse }, 8 << 20},
		{"RSS", func(s memSample) float64 { return s.rss }, 8 << 20},
		{"goroutines", func(s memSample) float64 { return s.goroutines }, 20},
	} {
		early, late := peak(r.samples[1:third+1], c.f), peak(r.samples[len(r.samples)-third:], c.f)
		if late > early*1.25+c.slack {
			return fmt.Errorf("soak: %s grew from %.0f to %.0f", c.name, early, late)
		}
	}
	return nil
}

// soak runs the model server as a detached process (serve.Start, the path
// lepton uses), drives load at o.conns for o.soak, applies an in-place
// update (other model, other worker count) every o.swapEvery, and samples
// the server's memory from its /metrics.
func soak(ctx context.Context, o options, log io.Writer) (soakResult, error) {
	dir, err := os.MkdirTemp("", "lepton-soak-")
	if err != nil {
		return soakResult{}, err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return soakResult{}, err
	}
	spec := serve.ProcessSpec{Name: "digits", Token: token, Workers: o.workers, MaxBatchSize: o.maxBatch, BatchWindow: o.window,
		Model: serve.ModelSource{Artifact: "mnist:1", Digest: "seed-1"}}
	p, err := serve.Start(ctx, serve.StartSpec{Binary: self, Args: []string{"internal-serve"}, Dir: dir, Spec: spec})
	if err != nil {
		return soakResult{}, err
	}
	defer serve.Stop(context.Background(), p, 10*time.Second)

	done := make(chan loadResult, 1)
	start := time.Now()
	go func() {
		done <- runLoad(ctx, newClient(o.conns), loadSpec{url: p.URL + "/v1/models/digits:predict", token: token,
			body: v1Body(1), conns: o.conns, duration: o.soak, maxRequests: 1 << 40})
	}()
	var res soakResult
	tick := time.NewTicker(o.swapEvery)
	defer tick.Stop()
	for {
		select {
		case res.load = <-done:
			if s, err := sample(ctx, p.URL, time.Since(start)); err == nil {
				res.samples = append(res.samples, s)
			}
			return res, res.check()
		case <-tick.C:
		}
		s, err := sample(ctx, p.URL, time.Since(start))
		if err != nil {
			return res, err
		}
		res.samples = append(res.samples, s)
		res.swaps++
		spec.Model = serve.ModelSource{Artifact: fmt.Sprintf("mnist:%d", res.swaps+1), Digest: fmt.Sprintf("seed-%d", res.swaps+1)}
		spec.Workers = max(1, o.workers+res.swaps%2)
		if err := serve.Update(ctx, p, spec); err != nil {
			return res, fmt.Errorf("update %d: %w", res.swaps, err)
		}
		fmt.Fprintf(log, "t=%4.1fs updated to %s, %d workers; heap %.1f MiB, rss %.1f MiB, %0.f goroutines\n",
			time.Since(start).Seconds(), spec.Model.Digest, spec.Workers, s.heapInuse/(1<<20), s.rss/(1<<20), s.goroutines)
	}
}

// sample scrapes the memory gauges from the server's /metrics.
func sample(ctx context.Context, url string, at time.Duration) (memSample, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return memSample{}, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	s := memSample{at: at}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(val, 64)
		switch name {
		case "go_memstats_heap_inuse_bytes":
			s.heapInuse = v
		case "process_resident_memory_bytes":
			s.rss = v
		case "go_goroutines":
			s.goroutines = v
		}
	}
	return s, sc.Err()
}
