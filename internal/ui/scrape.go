package ui

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/leptonml/lepton/runtime/serve"
)

// target is an endpoint to scrape.
type target struct {
	address, url, readyPath string
	pid                     int
}

// sample is one scrape of an endpoint's inference routes.
type sample struct {
	t        time.Time
	requests float64 // predict and infer requests, all codes
	errors   float64 // of which answered with a 4xx or 5xx
	buckets  []bucket
	workers  float64
}

type bucket struct {
	le    float64
	count float64
}

// Point is one moment of an endpoint's traffic chart, over the window
// before it.
type Point struct {
	T         int64   `json:"t"` // Unix milliseconds
	RPS       float64 `json:"rps"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
	ErrorRate float64 `json:"error_rate"`
}

// Chart settings: how long a history is kept and the window each point of
// the chart summarises (rates and quantiles over the last few scrapes).
const (
	keepFor   = 10 * time.Minute
	rateOver  = 10 * time.Second
	scrapeTTL = 1500 * time.Millisecond
)

// inferenceRoutes are the routes whose traffic the dashboard charts.
var inferenceRoutes = map[string]bool{"v1_predict": true, "v2_infer": true}

type series struct {
	samples []sample
	health  string
	detail  string
	workers int
}

// scraper reads every endpoint's /metrics on a timer, so a chart has
// history from the moment the dashboard started.
type scraper struct {
	every  time.Duration
	client *http.Client
	mu     sync.Mutex
	by     map[string]*series
	rounds uint64
}

func newScraper(every time.Duration) *scraper {
	return &scraper{every: every, client: &http.Client{Timeout: scrapeTTL}, by: map[string]*series{}}
}

func (sc *scraper) run(ctx context.Context, targets func() []target) {
	t := time.NewTicker(sc.every)
	defer t.Stop()
	for {
		sc.round(ctx, targets())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (sc *scraper) round(ctx context.Context, ts []target) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	live := map[string]bool{}
	for _, tg := range ts {
		live[tg.address] = true
		wg.Add(1)
		sem <- struct{}{}
		go func(tg target) {
			defer wg.Done()
			defer func() { <-sem }()
			sc.scrapeOne(ctx, tg)
		}(tg)
	}
	wg.Wait()
	sc.mu.Lock()
	for a := range sc.by {
		if !live[a] {
			delete(sc.by, a)
		}
	}
	sc.rounds++
	sc.mu.Unlock()
}

func (sc *scraper) scrapeOne(ctx context.Context, tg target) {
	ctx, cancel := context.WithTimeout(ctx, 2*scrapeTTL)
	defer cancel()
	st := serve.Check(ctx, serve.Process{Pid: tg.pid, URL: tg.url, ReadyPath: tg.readyPath})
	health := "down"
	switch {
	case st.Ready:
		health = "healthy"
	case st.Running:
		health = "unhealthy"
	}
	var smp *sample
	var err error
	if st.Running {
		smp, err = sc.fetch(ctx, tg.url)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	s := sc.by[tg.address]
	if s == nil {
		s = &series{}
		sc.by[tg.address] = s
	}
	s.health, s.detail, s.workers = health, st.Detail, st.Workers
	if err != nil && s.detail == "" {
		s.detail = err.Error()
	}
	if smp != nil {
		s.samples = append(s.samples, *smp)
		cut := 0
		for cut < len(s.samples) && smp.t.Sub(s.samples[cut].t) > keepFor {
			cut++
		}
		s.samples = s.samples[cut:]
	}
}

func (sc *scraper) fetch(ctx context.Context, url string) (*sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := sc.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading /metrics: %s", resp.Status)
	}
	return parseSample(io.LimitReader(resp.Body, 8<<20), time.Now())
}

// parseSample reads the serving metrics (runtime/serve/metrics.go) of the
// inference routes from a Prometheus text exposition.
func parseSample(r io.Reader, now time.Time) (*sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics: %w", err)
	}
	s := &sample{t: now}
	if f := fams["lepton_http_requests_total"]; f != nil {
		for _, m := range f.Metric {
			if !inferenceRoutes[label(m, "route")] {
				continue
			}
			v := m.GetCounter().GetValue()
			s.requests += v
			if code, _ := strconv.Atoi(label(m, "code")); code >= 400 {
				s.errors += v
			}
		}
	}
	if f := fams["lepton_http_request_duration_seconds"]; f != nil {
		byLe := map[float64]float64{}
		for _, m := range f.Metric {
			if !inferenceRoutes[label(m, "route")] {
				continue
			}
			hasInf := false
			for _, b := range m.GetHistogram().GetBucket() {
				byLe[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				hasInf = hasInf || math.IsInf(b.GetUpperBound(), 1)
			}
			if !hasInf { // the +Inf bucket is the count of observations
				byLe[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
			}
		}
		for le, c := range byLe {
			s.buckets = append(s.buckets, bucket{le: le, count: c})
		}
		sort.Slice(s.buckets, func(i, j int) bool { return s.buckets[i].le < s.buckets[j].le })
	}
	if f := fams["lepton_workers"]; f != nil && len(f.Metric) > 0 {
		s.workers = f.Metric[0].GetGauge().GetValue()
	}
	return s, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// quantile estimates the q-quantile from cumulative bucket deltas, by
// linear interpolation within the bucket as Prometheus's
// histogram_quantile does; NaN without observations.
func quantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 {
		return math.NaN()
	}
	total := bs[len(bs)-1].count
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	prevLe, prevCount := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return prevLe // above the highest finite bound: report that bound
			}
			if b.count == prevCount {
				return b.le
			}
			return prevLe + (b.le-prevLe)*(rank-prevCount)/(b.count-prevCount)
		}
		prevLe, prevCount = b.le, b.count
	}
	return prevLe
}

// delta is b - a bucket by bucket (same bounds: one server's histogram).
func delta(a, b []bucket) []bucket {
	if len(a) != len(b) {
		return b
	}
	out := make([]bucket, len(b))
	for i := range b {
		out[i] = bucket{le: b[i].le, count: max(b[i].count-a[i].count, 0)}
	}
	return out
}

// points turns samples into chart points: each over the rateOver before it.
func points(samples []sample) []Point {
	out := []Point{}
	start := 0
	for i := 1; i < len(samples); i++ {
		cur := samples[i]
		for start < i-1 && cur.t.Sub(samples[start+1].t) >= rateOver {
			start++
		}
		prev := samples[start]
		dt := cur.t.Sub(prev.t).Seconds()
		if dt <= 0 {
			continue
		}
		dreq := cur.requests - prev.requests
		if dreq < 0 { // the server restarted: its counters began again
			dreq = cur.requests
		}
		p := Point{T: cur.t.UnixMilli(), RPS: dreq / dt}
		if dreq > 0 {
			p.ErrorRate = max(cur.errors-prev.errors, 0) / dreq
		}
		d := delta(prev.buckets, cur.buckets)
		if v := quantile(0.5, d); !math.IsNaN(v) {
			p.P50 = v * 1000
		}
		if v := quantile(0.99, d); !math.IsNaN(v) {
			p.P99 = v * 1000
		}
		out = append(out, p)
	}
	return out
}

// fill puts what the scraper knows of an endpoint into v.
func (sc *scraper) fill(address string, v *EndpointView) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	v.Scrapes, v.Window = sc.rounds, rateOver.Seconds()
	s := sc.by[address]
	if s == nil {
		v.Health = "unknown"
		v.Detail = "not scraped yet"
		return
	}
	v.Health, v.Detail, v.Workers = s.health, s.detail, s.workers
	if n := len(s.samples); n > 0 {
		last := s.samples[n-1]
		v.Requests, v.Errors = last.requests, last.errors
		if v.Workers == 0 {
			v.Workers = int(last.workers)
		}
	}
	v.Series = points(s.samples)
}
