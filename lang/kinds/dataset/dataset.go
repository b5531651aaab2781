// Package dataset is the dataset kind: data read from a file, a URL, an object
// store, a SQL query, a log or inline values, cleaned, preprocessed and split.
package dataset

import (
	"github.com/hashicorp/hcl/v2/hcldec"
	ks "github.com/leptonml/lepton/lang/kindspec"
	"github.com/zclconf/go-cty/cty"
)

// Spec describes the kind to the language.
func Spec() *ks.Spec {
	return &ks.Spec{
		Name: "dataset",
		Config: hcldec.ObjectSpec{
			"source": &hcldec.BlockSpec{TypeName: "source", Required: true, Nested: hcldec.ObjectSpec{
				"builtin": ks.Attr("builtin", ks.Str),
				"file":    ks.Attr("file", ks.Str),
				"url":     ks.Attr("url", ks.Str),
				"headers": ks.Attr("headers", ks.StrMap),
				"timeout": ks.Attr("timeout", ks.Str),
				"object":  ks.Attr("object", ks.Str),
				"inline":  ks.Attr("inline", ks.Dyn),
				"sql": ks.Block("sql", hcldec.ObjectSpec{
					"driver":        ks.Required("driver", ks.Str),
					"dsn":           ks.Required("dsn", ks.Str),
					"query":         ks.Required("query", ks.Str),
					"version_query": ks.Attr("version_query", ks.Str),
				}),
				"log": ks.Block("log", hcldec.ObjectSpec{
					"path":    ks.Required("path", ks.Str),
					"pattern": ks.Required("pattern", ks.Str),
				}),
			}},
			"format":   ks.Attr("format", ks.Str),
			"label":    ks.Attr("label", ks.Str),
			"features": ks.Attr("features", ks.Strs),
			"preprocess": ks.Block("preprocess", hcldec.ObjectSpec{
				"missing":   ks.Attr("missing", ks.Str),
				"normalize": ks.Attr("normalize", ks.Str),
				"encode":    ks.Attr("encode", ks.Str),
				"anomalies": ks.Block("anomalies", hcldec.ObjectSpec{
					"method":    ks.Attr("method", ks.Str),
					"threshold": ks.Attr("threshold", ks.Num),
					"action":    ks.Attr("action", ks.Str),
				}),
				"augment": ks.Block("augment", hcldec.ObjectSpec{
					"noise_stddev": ks.Attr("noise_stddev", ks.Num),
					"copies":       ks.Attr("copies", ks.Num),
				}),
			}),
			// subset keeps some classes and at most train_rows training
			// rows (e.g. fine-tuning on 500 labelled examples).
			"subset": ks.Block("subset", hcldec.ObjectSpec{
				"classes":    ks.Attr("classes", ks.Strs),
				"train_rows": ks.Attr("train_rows", ks.Num),
				"seed":       ks.Attr("seed", ks.Num),
			}),
			"split": ks.Block("split", hcldec.ObjectSpec{
				"train":      ks.Attr("train", ks.Num),
				"validation": ks.Attr("validation", ks.Num),
				"test":       ks.Attr("test", ks.Num),
				"seed":       ks.Attr("seed", ks.Num),
				"stratify":   ks.Attr("stratify", ks.Bool),
			}),
		},
		Computed: map[string]cty.Type{
			"digest":       ks.Str,
			"rows":         ks.Num,
			"dropped_rows": ks.Num,
			"columns":      ks.Strs,
			"schema":       ks.StrMap,
			"classes":      ks.Strs,
			"stats":        cty.Map(cty.Map(ks.Num)),
		},
		// Column names, class labels and statistics are values of the data:
		// secret when the source's arguments are.
		DerivedFromData: []string{"columns", "classes", "schema", "stats"},
		Validate:        validate,
	}
}
