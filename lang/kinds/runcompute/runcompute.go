// Package runcompute is what a training and a batch_inference share to say
// where they run: a named cluster, or a `resources` block of their own (nodes
// provisioned for the run and deleted when it ends, as SkyPilot's managed
// jobs do), and how many lost nodes they survive (`max_restarts`).
package runcompute

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	ks "github.com/leptonml/lepton/lang/kindspec"
)

// DefaultMaxRestarts is how many preemptions or lost nodes a run survives
// when max_restarts is not set.
const DefaultMaxRestarts = 3

// Add puts `resources { ... }` and `max_restarts` in a kind's arguments.
// The resources block takes a cluster's arguments.
func Add(cfg hcldec.ObjectSpec) hcldec.ObjectSpec {
	cfg["resources"] = ks.Block("resources", hcldec.ObjectSpec{
		"clouds":             ks.Attr("clouds", ks.Strs),
		"regions":            ks.Attr("regions", ks.Strs),
		"gpu":                ks.Attr("gpu", ks.Str),
		"nodes":              ks.Attr("nodes", ks.Num),
		"spot":               ks.Attr("spot", ks.Bool),
		"max_price_per_hour": ks.Attr("max_price_per_hour", ks.Num),
		"instance_type":      ks.Attr("instance_type", ks.Str),
		"disk_gb":            ks.Attr("disk_gb", ks.Num),
		"image":              ks.Attr("image", ks.Str),
	})
	cfg["max_restarts"] = ks.Attr("max_restarts", ks.Num)
	return cfg
}

// Validate refuses a block that names a cluster and has resources of its
// own: the run would have two places.
func Validate(kind string) func(hcl.Body) hcl.Diagnostics {
	return func(body hcl.Body) hcl.Diagnostics {
		content, _, _ := body.PartialContent(&hcl.BodySchema{
			Attributes: []hcl.AttributeSchema{{Name: "cluster"}},
			Blocks:     []hcl.BlockHeaderSchema{{Type: "resources"}},
		})
		c, ok := content.Attributes["cluster"]
		if !ok || len(content.Blocks) == 0 {
			return nil
		}
		b := content.Blocks[0]
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Conflicting placement",
			Detail:   "A " + kind + " runs on a named cluster (cluster = ...) or on nodes of its own (resources { ... }), not both: remove one of them.",
			Subject:  b.DefRange.Ptr(),
			Context:  hcl.RangeOver(c.Range, b.DefRange).Ptr(),
		}}
	}
}
