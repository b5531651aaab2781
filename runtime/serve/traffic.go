package serve

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Traffic summarises an endpoint's /metrics for `lepton status`.
type Traffic struct {
	Requests     float64       // inference requests answered (v1 :predict and v2 infer)
	ClientErrors float64       // of which answered 4xx
	ServerErrors float64       // of which answered 5xx
	InFlight     float64       // requests being served, excluding the scrape itself
	Rows         float64       // rows scored by the model
	MeanLatency  time.Duration // mean over inference requests
	Version      string        // model version served
	// HTTPRequests counts every request answered, on any route: health
	// checks and earlier scrapes too (the count `lepton status` shows).
	HTTPRequests float64
}

// ReadTraffic scrapes url/metrics and sums the inference routes.
func ReadTraffic(ctx context.Context, url string) (Traffic, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+"/metrics", nil)
	if err != nil {
		return Traffic{}, fmt.Errorf("read metrics of %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Traffic{}, fmt.Errorf("read metrics of %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Traffic{}, fmt.Errorf("read metrics of %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return Traffic{}, fmt.Errorf("parse metrics of %s: %w", url, err)
	}
	var t Traffic
	inference := func(labels map[string]string) bool {
		return labels["route"] == routeNames[routeV1Predict] || labels["route"] == routeNames[routeV2Infer]
	}
	labels := func(m *dto.Metric) map[string]string {
		l := map[string]string{}
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		return l
	}
	if f := fams["lepton_http_requests_total"]; f != nil {
		for _, m := range f.GetMetric() {
			l := labels(m)
			v := m.GetCounter().GetValue()
			t.HTTPRequests += v
			if !inference(l) {
				continue
			}
			t.Requests += v
			switch {
			case strings.HasPrefix(l["code"], "4"):
				t.ClientErrors += v
			case strings.HasPrefix(l["code"], "5"):
				t.ServerErrors += v
			}
		}
	}
	var latSum, latCount float64
	if f := fams["lepton_http_request_duration_seconds"]; f != nil {
		for _, m := range f.GetMetric() {
			l := labels(m)
			if inference(l) {
				latSum += m.GetHistogram().GetSampleSum()
				latCount += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	if latCount > 0 {
		t.MeanLatency = time.Duration(latSum / latCount * float64(time.Second))
	}
	if f := fams["lepton_http_requests_in_flight"]; f != nil && len(f.GetMetric()) > 0 {
		t.InFlight = max(0, f.GetMetric()[0].GetGauge().GetValue()-1)
	}
	if f := fams["lepton_predicted_rows_total"]; f != nil && len(f.GetMetric()) > 0 {
		t.Rows = f.GetMetric()[0].GetCounter().GetValue()
	}
	if f := fams["lepton_model_info"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "version" {
					t.Version = lp.GetValue()
				}
			}
		}
	}
	return t, nil
}
