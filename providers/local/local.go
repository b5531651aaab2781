// Package local is the provider for this machine: datasets read and processed
// here, training with the built-in kernels, endpoints served by a process of
// this binary.
package local

import (
	"context"

	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/clusters"
	"github.com/leptonml/lepton/providers/remote"
)

// Provider is the local provider.
type Provider struct {
	resources map[string]providers.Resource
	clusters  *clusters.Cluster
}

// New returns the local provider.
func New() *Provider {
	schemas := lang.Schemas()
	runs := remote.NewRuns(openStorage)
	cl := clusters.New(clusters.Options{Runs: runs})
	return &Provider{clusters: cl, resources: map[string]providers.Resource{
		"dataset":         &Dataset{schema: schemas["dataset"]},
		"cluster":         cl,
		"training":        &Training{runs: runs, compute: cl},
		"batch_inference": &BatchInference{runs: runs, compute: cl},
		"endpoint":        &Endpoint{runs: runs},
	}}
}

// Configure needs nothing of the provider blocks: the cluster resource
// receives each resource's cloud blocks with its calls (Env.Providers) and
// creates SDK clients for them as it first needs them.
func (p *Provider) Configure(context.Context, providers.ConfigureRequest) error { return nil }

// Close closes the SDK clients the clusters opened.
func (p *Provider) Close() error { return p.clusters.Close() }

// kinds is the order the local provider presents its kinds in.
var kinds = []string{"dataset", "cluster", "training", "batch_inference", "endpoint"}

// Kinds lists the kinds the local provider manages.
func (p *Provider) Kinds() []string { return append([]string(nil), kinds...) }

// Name is "local".
func (p *Provider) Name() string { return "local" }

// Resource returns the implementation of a kind.
func (p *Provider) Resource(kind string) (providers.Resource, bool) {
	r, ok := p.resources[kind]
	return r, ok
}

// Resumable: a training resumes from its checkpoints after an interruption.
func (t *Training) Resumable() bool { return true }

// Resumable: a batch inference run is marked running while it goes.
func (b *BatchInference) Resumable() bool { return true }

// Resumable: an endpoint's server start is marked running while it goes.
func (e *Endpoint) Resumable() bool { return true }
