// Package training is the training kind: a model trained on a dataset with a
// built-in kernel, tabular Q-learning, or the user's own program.
package training

import (
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/leptonml/lepton/lang/kinds/runcompute"
	ks "github.com/leptonml/lepton/lang/kindspec"
	"github.com/zclconf/go-cty/cty"
)

// Spec describes the kind to the language.
func Spec() *ks.Spec {
	return &ks.Spec{
		Name: "training",
		Config: runcompute.Add(hcldec.ObjectSpec{
			"dataset":   ks.Attr("dataset", ks.Dyn),
			"cluster":   ks.Attr("cluster", ks.Dyn),
			"objective": ks.Attr("objective", ks.Str),
			// The model block is stored as model_spec: `model` is the
			// computed artifact reference (training.x.model).
			"model_spec": ks.Block("model", hcldec.ObjectSpec{
				"kind":       ks.Attr("kind", ks.Str),
				"hidden":     ks.Attr("hidden", ks.Nums),
				"activation": ks.Attr("activation", ks.Str),
				"dropout":    ks.Attr("dropout", ks.Num),
			}),
			"optimizer": ks.Block("optimizer", hcldec.ObjectSpec{
				"name":          ks.Attr("name", ks.Str),
				"learning_rate": ks.Attr("learning_rate", ks.Num),
				"momentum":      ks.Attr("momentum", ks.Num),
				"weight_decay":  ks.Attr("weight_decay", ks.Num),
			}),
			"epochs":     ks.Attr("epochs", ks.Num),
			"batch_size": ks.Attr("batch_size", ks.Num),
			"seed":       ks.Attr("seed", ks.Num),
			"early_stopping": ks.Block("early_stopping", hcldec.ObjectSpec{
				"metric":   ks.Attr("metric", ks.Str),
				"patience": ks.Attr("patience", ks.Num),
			}),
			"base_model":    ks.Attr("base_model", ks.Str),
			"freeze_layers": ks.Attr("freeze_layers", ks.Num),
			"environment": ks.Block("environment", hcldec.ObjectSpec{
				"name":     ks.Attr("name", ks.Str),
				"size":     ks.Attr("size", ks.Num),
				"slippery": ks.Attr("slippery", ks.Bool),
			}),
			"episodes":      ks.Attr("episodes", ks.Num),
			"discount":      ks.Attr("discount", ks.Num),
			"learning_rate": ks.Attr("learning_rate", ks.Num),
			"epsilon": ks.Block("epsilon", hcldec.ObjectSpec{
				"start":          ks.Attr("start", ks.Num),
				"end":            ks.Attr("end", ks.Num),
				"decay_episodes": ks.Attr("decay_episodes", ks.Num),
			}),
			// The user's own program on every node of the cluster, instead
			// of a built-in kernel (providers/local/remote_command.go).
			"run": ks.Block("run", hcldec.ObjectSpec{
				"command":        ks.Attr("command", ks.Strs),
				"image":          ks.Attr("image", ks.Str),
				"env":            ks.Attr("env", ks.StrMap),
				"workdir":        ks.Attr("workdir", ks.Str),
				"checkpoint_dir": ks.Attr("checkpoint_dir", ks.Str),
			}),
		}),
		Computed: map[string]cty.Type{
			"model":            ks.Str,
			"metrics":          cty.Map(ks.Num),
			"epochs_completed": ks.Num,
			"status":           ks.Str,
			// outputs is the digest of what a run block's program left in
			// LEPTON_OUTPUT_DIR (null for the built-in kernels).
			"outputs": ks.Str,
		},
		Refs: map[string]string{"dataset": "dataset", "cluster": "cluster"},
		// A finished training's model does not depend on the cluster it
		// ran on: resizing or repairing the cluster does not retrain.
		Placement: []string{"cluster"},
		Validate:  runcompute.Validate("training"),
	}
}
