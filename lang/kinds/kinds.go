// Package kinds is the list of resource kinds lepton has: adding a kind is a
// package under lang/kinds and one line here (and its implementation in the
// providers that run it).
package kinds

import (
	"github.com/leptonml/lepton/lang/kinds/batchinference"
	"github.com/leptonml/lepton/lang/kinds/cluster"
	"github.com/leptonml/lepton/lang/kinds/dataset"
	"github.com/leptonml/lepton/lang/kinds/endpoint"
	"github.com/leptonml/lepton/lang/kinds/training"
	ks "github.com/leptonml/lepton/lang/kindspec"
)

// All returns every kind's spec, in the order the docs list them. Each call
// builds new values, so callers cannot share mutable state by accident.
func All() []*ks.Spec {
	return []*ks.Spec{
		dataset.Spec(),
		cluster.Spec(),
		training.Spec(),
		batchinference.Spec(),
		endpoint.Spec(),
	}
}
