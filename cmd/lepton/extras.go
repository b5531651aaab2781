package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/local"
)

// The read-only commands reach what a resource produced (logs, reports,
// models, health) through its kind's resource, never through paths or kind
// names: a kind offers what applies to it by implementing these.

// logReader: `lepton logs`. The reader ends at the log's end, or with
// follow when ctx ends.
type logReader interface {
	Logs(ctx context.Context, in providers.InstanceView, follow bool) (io.ReadCloser, error)
}

// describer: what `lepton show ADDR` prints after the attributes.
type describer interface {
	Describe(ctx context.Context, in providers.InstanceView) (string, error)
}

// statusReporter: an instance's row in `lepton status`.
type statusReporter interface {
	Status(ctx context.Context, in providers.InstanceView) providers.StatusReport
}

// predictor: where `lepton predict` sends requests.
type predictor interface {
	PredictTarget(ctx context.Context, in providers.InstanceView) (providers.PredictTarget, error)
}

// metricsServer: instances that answer /metrics (Prometheus targets).
type metricsServer interface {
	ServesMetrics() bool
}

// runMetricsReader: a run's metric history, for `lepton show -png` and
// the charts of `lepton plan -charts-dir`.
type runMetricsReader interface {
	RunMetrics(in providers.InstanceView) (m *local.RunMetrics, found bool, err error)
}

// servesMetrics tells promsd which kinds' instances are scrape targets.
func (m *meta) servesMetrics(kind, provider string) bool {
	s, ok := m.resource(kind, provider).(metricsServer)
	return ok && s.ServesMetrics()
}

// kindLister is implemented by providers that list their kinds, in the
// order they present them.
type kindLister interface {
	Kinds() []string
}

// providerEnv is what a provider call needs of the working directory: it
// and the local store's directory, .lepton.
func (m *meta) providerEnv() providers.Env {
	abs, _ := filepath.Abs(m.dir)
	return providers.Env{Dir: abs, DataDir: filepath.Join(abs, ".lepton")}
}

// view is a state instance as the read-only commands hand it to its kind.
func (m *meta) view(r *state.Resource) providers.InstanceView {
	return providers.InstanceView{Address: r.Address, Attributes: r.Attributes, Sensitive: len(r.SensitiveAttributes) > 0, Status: r.Status, Private: r.Private, Env: m.providerEnv()}
}

// resource is the implementation of a kind by a provider ("" for the
// default), or nil.
func (m *meta) resource(kind, provider string) providers.Resource {
	if m.views == nil {
		// Configured without provider blocks: what a kind keeps on this
		// machine needs none to be read. A provider that fails to configure
		// fails its calls, each reported where it is made.
		m.views, _ = m.registry(context.Background(), nil, m.providerEnv())
	}
	_, res, err := m.views.For(kind, provider)
	if err != nil {
		return nil
	}
	return res
}

// kindsWith lists the kinds whose resource passes has ("training and
// endpoint"), for messages that say which kinds offer something.
func (m *meta) kindsWith(has func(providers.Resource) bool) string {
	var kinds []string
	seen := map[string]bool{}
	for _, p := range m.providerSet() {
		kl, ok := p.(kindLister)
		if !ok {
			continue
		}
		for _, k := range kl.Kinds() {
			if res, ok := p.Resource(k); ok && has(res) && !seen[k] {
				seen[k] = true
				kinds = append(kinds, k)
			}
		}
	}
	switch len(kinds) {
	case 0:
		return "no"
	case 1:
		return kinds[0]
	}
	return strings.Join(kinds[:len(kinds)-1], ", ") + " and " + kinds[len(kinds)-1]
}
