// Package batchinference is the batch_inference kind: a trained model run over
// a dataset, its predictions written out (to a file or an object URL), on this
// machine or on a cloud cluster's node.
package batchinference

import (
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/leptonml/lepton/lang/kinds/runcompute"
	ks "github.com/leptonml/lepton/lang/kindspec"
	"github.com/zclconf/go-cty/cty"
)

// Spec describes the kind to the language.
func Spec() *ks.Spec {
	return &ks.Spec{
		Name: "batch_inference",
		Config: runcompute.Add(hcldec.ObjectSpec{
			"model":   ks.Required("model", ks.Str),
			"dataset": ks.Required("dataset", ks.Dyn),
			"output":  ks.Required("output", ks.Str),
			"cluster": ks.Attr("cluster", ks.Dyn),
		}),
		Computed: map[string]cty.Type{
			"rows":   ks.Num,
			"digest": ks.Str,
		},
		Refs: map[string]string{"dataset": "dataset", "cluster": "cluster"},
		// The predictions do not depend on the cluster they were made on:
		// resizing or repairing the cluster does not score them again.
		Placement: []string{"cluster"},
		Validate:  runcompute.Validate("batch_inference"),
	}
}
