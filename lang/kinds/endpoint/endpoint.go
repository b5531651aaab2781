// Package endpoint is the endpoint kind: a trained model served over HTTP.
package endpoint

import (
	"github.com/hashicorp/hcl/v2/hcldec"
	ks "github.com/leptonml/lepton/lang/kindspec"
	"github.com/zclconf/go-cty/cty"
)

// Defaults of the arguments a provider fills in when they are not set; the
// plan shows them (Spec's Defaults) and the providers apply the same.
const (
	DefaultReplicas     = 1
	DefaultMaxBatchSize = 256
)

// Spec describes the kind to the language.
func Spec() *ks.Spec {
	return &ks.Spec{
		Name: "endpoint",
		Config: hcldec.ObjectSpec{
			"model":          ks.Required("model", ks.Str),
			"cluster":        ks.Attr("cluster", ks.Dyn),
			"replicas":       ks.Attr("replicas", ks.Num),
			"port":           ks.Attr("port", ks.Num),
			"auth":           ks.Attr("auth", ks.Bool),
			"max_batch_size": ks.Attr("max_batch_size", ks.Num),
		},
		Computed: map[string]cty.Type{
			"url":           ks.Str,
			"token":         ks.Str,
			"status":        ks.Str,
			"model_version": ks.Str,
			"port":          ks.Num,
			"pid":           ks.Num,
			"log_path":      ks.Str,
		},
		Refs:      map[string]string{"cluster": "cluster"},
		Sensitive: []string{"token"},
		Defaults: map[string]cty.Value{
			"replicas":       cty.NumberIntVal(DefaultReplicas),
			"auth":           cty.True,
			"max_batch_size": cty.NumberIntVal(DefaultMaxBatchSize),
		},
	}
}
