package serve

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics live in a registry owned by one Server, so several servers in one
// process (tests, benchmarks) never collide and nothing is global.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	inflight  prometheus.Gauge
	batchRows prometheus.Histogram
	rows      prometheus.Counter
	modelInfo *prometheus.GaugeVec
	workers   prometheus.Gauge
}

func newMetrics(name string) *metrics {
	constLabels := prometheus.Labels{"endpoint": name}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lepton_http_requests_total", Help: "HTTP requests by route and status code.",
			ConstLabels: constLabels,
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lepton_http_request_duration_seconds", Help: "HTTP request latency by route.",
			ConstLabels: constLabels,
			Buckets:     []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lepton_http_requests_in_flight", Help: "Requests being served right now.",
			ConstLabels: constLabels,
		}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lepton_batch_rows", Help: "Rows per model Predict call after micro-batching.",
			ConstLabels: constLabels,
			Buckets:     []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lepton_predicted_rows_total", Help: "Rows scored by the model.",
			ConstLabels: constLabels,
		}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lepton_model_info", Help: "The model version being served (value is always 1).",
			ConstLabels: constLabels,
		}, []string{"version"}),
		workers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lepton_workers", Help: "Batch workers running model Predict calls.",
			ConstLabels: constLabels,
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.inflight, m.batchRows, m.rows, m.modelInfo, m.workers,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) setModel(version string) {
	m.modelInfo.Reset()
	m.modelInfo.WithLabelValues(version).Set(1)
}

// codeLabel avoids formatting the common status codes on every request.
func codeLabel(code int) string {
	switch code {
	case 200:
		return "200"
	case 400:
		return "400"
	case 401:
		return "401"
	case 404:
		return "404"
	}
	return strconv.Itoa(code)
}
