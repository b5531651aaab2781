// Package cluster is the cluster kind: GPU instances on the cheapest cloud offer
// that fits the request, or this machine.
package cluster

import (
	"github.com/hashicorp/hcl/v2/hcldec"
	ks "github.com/leptonml/lepton/lang/kindspec"
	"github.com/zclconf/go-cty/cty"
)

// Spec describes the kind to the language.
func Spec() *ks.Spec {
	return &ks.Spec{
		Name: "cluster",
		Config: hcldec.ObjectSpec{
			"clouds":             ks.Attr("clouds", ks.Strs),
			"regions":            ks.Attr("regions", ks.Strs),
			"gpu":                ks.Attr("gpu", ks.Str),
			"nodes":              ks.Attr("nodes", ks.Num),
			"spot":               ks.Attr("spot", ks.Bool),
			"max_price_per_hour": ks.Attr("max_price_per_hour", ks.Num),
			"instance_type":      ks.Attr("instance_type", ks.Str),
			"disk_gb":            ks.Attr("disk_gb", ks.Num),
			"image":              ks.Attr("image", ks.Str),
		},
		Computed: map[string]cty.Type{
			"cloud":          ks.Str,
			"region":         ks.Str,
			"zone":           ks.Str,
			"instance_type":  ks.Str,
			"price_per_hour": ks.Num,
			"node_ids":       ks.Strs,
			"node_addresses": ks.Strs,
			"status":         ks.Str,
		},
		Priced: true,
	}
}
