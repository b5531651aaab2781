package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadSpec is one load run: conns goroutines, each with its own keep-alive
// connection, POSTing body to url back to back until duration or
// maxRequests, whichever comes first.
type loadSpec struct {
	url         string
	token       string
	body        []byte
	conns       int
	duration    time.Duration
	maxRequests int64
	rowsPerReq  int
}

type loadResult struct {
	requests int64
	errors   int64
	firstErr string
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (r loadResult) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r loadResult) String() string {
	return fmt.Sprintf("%8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  (%d requests, %d errors)",
		r.rps(), ms(r.p50), ms(r.p99), r.requests, r.errors)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		DisableCompression: true, IdleConnTimeout: time.Minute,
	}, Timeout: 30 * time.Second}
}

// runLoad drives the load and returns throughput and latency percentiles.
// Any transport error or non-200 answer counts as an error.
func runLoad(ctx context.Context, client *http.Client, spec loadSpec) loadResult {
	ctx, cancel := context.WithTimeout(ctx, spec.duration)
	defer cancel()
	var (
		count    atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
		lats     = make([][]time.Duration, spec.conns)
	)
	start := time.Now()
	for c := range spec.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil {
				if spec.maxRequests > 0 && count.Add(1) > spec.maxRequests {
					break
				}
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, spec.url, bytes.NewReader(spec.body))
				req.Header.Set("Content-Type", "application/json")
				if spec.token != "" {
					req.Header.Set("Authorization", "Bearer "+spec.token)
				}
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				if ctx.Err() != nil {
					break // the run ended mid-request: not a server error
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			lats[c] = lat
		}()
	}
	wg.Wait()
	res := loadResult{elapsed: time.Since(start), errors: errs.Load()}
	if e, ok := firstErr.Load().(string); ok {
		res.firstErr = e
	}
	all := slices.Concat(lats...)
	res.requests = int64(len(all))
	if len(all) > 0 {
		slices.Sort(all)
		res.p50 = all[len(all)/2]
		res.p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return res
}
