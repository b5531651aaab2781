package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// compareReplicas measures the two ways to run N replicas on one machine:
// one server process with N batch workers, or N single-worker processes
// behind a round-robin reverse proxy (the load balancer lepton would run).
func compareReplicas(ctx context.Context, o options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := o.replicas
	one, stopOne, err := startChildren(1, n, o)
	if err != nil {
		return err
	}
	defer stopOne()
	many, stopMany, err := startChildren(n, 1, o)
	if err != nil {
		return err
	}
	defer stopMany()
	var backends []*url.URL
	for _, a := range many {
		backends = append(backends, &url.URL{Scheme: "http", Host: a})
	}
	var next atomic.Uint64
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(backends[next.Add(1)%uint64(len(backends))])
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: o.conns, MaxConnsPerHost: o.conns, DisableCompression: true},
		// Requests cut off by the end of a run are not worth a log line;
		// real failures still reach the client as 502 and count as errors.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	proxyURL, err := listen(ctx, proxy)
	if err != nil {
		return err
	}
	body := v1Body(1)
	targets := []target{
		{name: fmt.Sprintf("1 process x %d workers", n), url: "http://" + one[0] + "/v1/models/digits:predict", token: token, body: body},
		{name: fmt.Sprintf("%d processes x 1 worker + proxy", n), url: proxyURL + "/v1/models/digits:predict", token: token, body: body},
	}
	fmt.Printf("replicas %d, conns %d, %d rounds x %s, 1-row v1 requests\n", n, o.conns, o.rounds, o.duration)
	client := newClient(o.conns)
	for _, t := range targets {
		runLoad(ctx, client, loadSpec{url: t.url, token: t.token, body: t.body, conns: o.conns, duration: time.Second, maxRequests: o.maxRequests})
	}
	results := make([][]loadResult, len(targets))
	for round := range o.rounds {
		for i, t := range targets {
			r := runLoad(ctx, client, loadSpec{url: t.url, token: t.token, body: t.body, conns: o.conns, duration: o.duration, maxRequests: o.maxRequests})
			if r.errors > 0 {
				return fmt.Errorf("%s: %d errors, first: %s", t.name, r.errors, r.firstErr)
			}
			results[i] = append(results[i], r)
			fmt.Printf("round %d  %-34s %s\n", round+1, t.name, r)
		}
	}
	fmt.Println()
	fmt.Println("| layout | req/s | p50 ms | p99 ms |")
	fmt.Println("|---|---:|---:|---:|")
	for i, t := range targets {
		fmt.Printf("| %s | %.0f | %.2f | %.2f |\n", t.name,
			median(results[i], func(r loadResult) float64 { return r.rps() }),
			median(results[i], func(r loadResult) float64 { return ms(r.p50) }),
			median(results[i], func(r loadResult) float64 { return ms(r.p99) }))
	}
	return nil
}
