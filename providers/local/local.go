// Package local is the provider for this machine: datasets read and processed
// here, training with the built-in kernels, endpoints served by a process of
// this binary.
package local

import (
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/clusters"
)

// Provider is the local provider.
type Provider struct {
	resources map[string]providers.Resource
}

// New returns the local provider.
func New() *Provider {
	schemas := lang.Schemas()
	return &Provider{resources: map[string]providers.Resource{
		"dataset":         &Dataset{schema: schemas["dataset"]},
		"cluster":         clusters.New(clusters.Options{}),
		"training":        &Training{},
		"batch_inference": &BatchInference{},
		"endpoint":        &Endpoint{},
	}}
}

// Name is "local".
func (p *Provider) Name() string { return "local" }

// Resource returns the implementation of a kind.
func (p *Provider) Resource(kind string) (providers.Resource, bool) {
	r, ok := p.resources[kind]
	return r, ok
}
