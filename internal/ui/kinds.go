package ui

import (
	"context"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/local"
)

// What the dashboard asks of a kind's resource, beyond the attributes it
// reads from state; a kind offers what applies to it by implementing these
// (the local kinds in providers/local/views.go), so the dashboard never
// switches on kind names.

// logFiler: a run whose log is a file on this machine, which the log stream
// tails.
type logFiler interface {
	LogFile(in providers.InstanceView) string
}

// metricsServer: instances that answer /metrics, which the scraper reads
// once the server has written its ready file.
type metricsServer interface {
	ServesMetrics() bool
	ReadyFile(in providers.InstanceView) string
}

// profiler: a dataset's profile (histograms, correlations).
type profiler interface {
	Profile(ctx context.Context, in providers.InstanceView) (*local.DatasetProfile, error)
}

// localResources is the default Options.Resource: the local provider's
// kinds, which keep what the dashboard shows on this machine.
func localResources() func(kind, provider string) providers.Resource {
	p := local.New()
	return func(kind, _ string) providers.Resource {
		r, ok := p.Resource(kind)
		if !ok {
			return nil
		}
		return r
	}
}

// resource is the implementation of r's kind, or nil.
func (s *Server) resource(r *state.Resource) providers.Resource {
	return s.opts.Resource(r.Kind, r.Provider)
}

// view is r as a kind's resource is handed it.
func (s *Server) view(r *state.Resource) providers.InstanceView {
	return providers.InstanceView{Address: r.Address, Attributes: r.Attributes, Sensitive: len(r.SensitiveAttributes) > 0,
		Status: r.Status, Private: r.Private, Env: providers.Env{Dir: s.opts.Dir, DataDir: s.opts.DataDir}}
}
