package lang

import (
	"encoding/json"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

// KindSchema describes one resource kind: the arguments a user writes (as an
// hcldec spec, so decoding, unknown-attribute and type errors come from hcl), the
// attributes the provider computes, and which arguments name other resources.
type KindSchema struct {
	Config hcldec.ObjectSpec
	// Computed attributes, known after apply (or at plan time when the provider
	// can compute them then). An attribute may be both an argument and computed
	// (cluster.instance_type): the argument wins when set.
	Computed map[string]cty.Type
	// Refs are arguments that take a whole resource (dataset = dataset.digits);
	// the value stored is the referenced resource's id, and a change to the
	// referenced resource is a reason to replace this one.
	Refs []string
	// Sensitive computed attributes, never shown.
	Sensitive []string
	// Defaults are the values the provider uses for arguments left unset.
	// Plans show them as Terraform shows a provider's defaults (auth = true
	// in a planned endpoint), so a reviewer or a policy sees what will run;
	// the stored arguments stay as written.
	Defaults map[string]cty.Value
	// Version is the version of the kind's state attributes, recorded with
	// each instance in state; Upgrade turns attributes of an older version
	// (from) into the current one, as Terraform's UpgradeResourceState.
	Version int
	Upgrade func(from int, attrs json.RawMessage) (json.RawMessage, error)
	// types caches ConfigType and StateType: the planner asks for them for
	// every instance, and hcldec.ImpliedType walks the whole spec.
	types *kindTypes
}

type kindTypes struct {
	once              sync.Once
	config, stateType cty.Type
	decoder           *objectDecoder // nil: the spec needs hcldec.Decode
}

func (s *KindSchema) cachedTypes() *kindTypes {
	s.types.once.Do(func() {
		s.types.config = s.impliedConfigType()
		s.types.stateType = s.stateTypeFrom(s.types.config)
		s.types.decoder = newObjectDecoder(s.Config)
	})
	return s.types
}

// decode evaluates a resource body by the kind's spec.
func (s *KindSchema) decode(body hcl.Body, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	if s.types != nil {
		if d := s.cachedTypes().decoder; d != nil {
			return d.decode(body, ctx)
		}
	}
	return hcldec.Decode(body, s.Config, ctx)
}

// variables are the traversals a resource body refers to.
func (s *KindSchema) variables(body hcl.Body) []hcl.Traversal {
	if s.types != nil {
		if d := s.cachedTypes().decoder; d != nil {
			return d.variables(body)
		}
	}
	return hcldec.Variables(body, s.Config)
}

func attr(name string, t cty.Type) *hcldec.AttrSpec {
	return &hcldec.AttrSpec{Name: name, Type: t}
}

func block(name string, nested hcldec.ObjectSpec) *hcldec.BlockSpec {
	return &hcldec.BlockSpec{TypeName: name, Nested: nested}
}

var (
	str    = cty.String
	num    = cty.Number
	boolT  = cty.Bool
	dyn    = cty.DynamicPseudoType
	strs   = cty.List(cty.String)
	nums   = cty.List(cty.Number)
	strMap = cty.Map(cty.String)
)

// Schemas returns the schema of every resource kind. It builds new values on
// each call so callers cannot share mutable state by accident; callers on a
// hot path keep the result.
func Schemas() map[string]*KindSchema {
	m := map[string]*KindSchema{
		"dataset": {
			Config: hcldec.ObjectSpec{
				"source": &hcldec.BlockSpec{TypeName: "source", Required: true, Nested: hcldec.ObjectSpec{
					"builtin": attr("builtin", str),
					"file":    attr("file", str),
					"url":     attr("url", str),
					"headers": attr("headers", strMap),
					"timeout": attr("timeout", str),
					"object":  attr("object", str),
					"inline":  attr("inline", dyn),
					"sql": block("sql", hcldec.ObjectSpec{
						"driver":        &hcldec.AttrSpec{Name: "driver", Type: str, Required: true},
						"dsn":           &hcldec.AttrSpec{Name: "dsn", Type: str, Required: true},
						"query":         &hcldec.AttrSpec{Name: "query", Type: str, Required: true},
						"version_query": attr("version_query", str),
					}),
					"log": block("log", hcldec.ObjectSpec{
						"path":    &hcldec.AttrSpec{Name: "path", Type: str, Required: true},
						"pattern": &hcldec.AttrSpec{Name: "pattern", Type: str, Required: true},
					}),
				}},
				"format":   attr("format", str),
				"label":    attr("label", str),
				"features": attr("features", strs),
				"preprocess": block("preprocess", hcldec.ObjectSpec{
					"missing":   attr("missing", str),
					"normalize": attr("normalize", str),
					"encode":    attr("encode", str),
					"anomalies": block("anomalies", hcldec.ObjectSpec{
						"method":    attr("method", str),
						"threshold": attr("threshold", num),
						"action":    attr("action", str),
					}),
					"augment": block("augment", hcldec.ObjectSpec{
						"noise_stddev": attr("noise_stddev", num),
						"copies":       attr("copies", num),
					}),
				}),
				// subset keeps some classes and at most train_rows training
				// rows (e.g. fine-tuning on 500 labelled examples).
				"subset": block("subset", hcldec.ObjectSpec{
					"classes":    attr("classes", strs),
					"train_rows": attr("train_rows", num),
					"seed":       attr("seed", num),
				}),
				"split": block("split", hcldec.ObjectSpec{
					"train":      attr("train", num),
					"validation": attr("validation", num),
					"test":       attr("test", num),
					"seed":       attr("seed", num),
					"stratify":   attr("stratify", boolT),
				}),
			},
			Computed: map[string]cty.Type{
				"digest":       str,
				"rows":         num,
				"dropped_rows": num,
				"columns":      strs,
				"schema":       strMap,
				"classes":      strs,
				"stats":        cty.Map(cty.Map(num)),
			},
		},
		"cluster": {
			Config: hcldec.ObjectSpec{
				"clouds":             attr("clouds", strs),
				"regions":            attr("regions", strs),
				"gpu":                attr("gpu", str),
				"nodes":              attr("nodes", num),
				"spot":               attr("spot", boolT),
				"max_price_per_hour": attr("max_price_per_hour", num),
				"instance_type":      attr("instance_type", str),
				"disk_gb":            attr("disk_gb", num),
				"image":              attr("image", str),
			},
			Computed: map[string]cty.Type{
				"cloud":          str,
				"region":         str,
				"zone":           str,
				"instance_type":  str,
				"price_per_hour": num,
				"node_ids":       strs,
				"node_addresses": strs,
				"status":         str,
			},
		},
		"training": {
			Config: hcldec.ObjectSpec{
				"dataset":   attr("dataset", dyn),
				"cluster":   attr("cluster", dyn),
				"objective": attr("objective", str),
				// The model block is stored as model_spec: `model` is the
				// computed artifact reference (training.x.model).
				"model_spec": block("model", hcldec.ObjectSpec{
					"kind":       attr("kind", str),
					"hidden":     attr("hidden", nums),
					"activation": attr("activation", str),
					"dropout":    attr("dropout", num),
				}),
				"optimizer": block("optimizer", hcldec.ObjectSpec{
					"name":          attr("name", str),
					"learning_rate": attr("learning_rate", num),
					"momentum":      attr("momentum", num),
					"weight_decay":  attr("weight_decay", num),
				}),
				"epochs":     attr("epochs", num),
				"batch_size": attr("batch_size", num),
				"seed":       attr("seed", num),
				"early_stopping": block("early_stopping", hcldec.ObjectSpec{
					"metric":   attr("metric", str),
					"patience": attr("patience", num),
				}),
				"base_model":    attr("base_model", str),
				"freeze_layers": attr("freeze_layers", num),
				"environment": block("environment", hcldec.ObjectSpec{
					"name":     attr("name", str),
					"size":     attr("size", num),
					"slippery": attr("slippery", boolT),
				}),
				"episodes":      attr("episodes", num),
				"discount":      attr("discount", num),
				"learning_rate": attr("learning_rate", num),
				"epsilon": block("epsilon", hcldec.ObjectSpec{
					"start":          attr("start", num),
					"end":            attr("end", num),
					"decay_episodes": attr("decay_episodes", num),
				}),
				"run": block("run", hcldec.ObjectSpec{
					"command": attr("command", strs),
					"image":   attr("image", str),
					"env":     attr("env", strMap),
				}),
			},
			Computed: map[string]cty.Type{
				"model":            str,
				"metrics":          cty.Map(num),
				"epochs_completed": num,
				"status":           str,
			},
			Refs: []string{"dataset", "cluster"},
		},
		"batch_inference": {
			Config: hcldec.ObjectSpec{
				"model":   &hcldec.AttrSpec{Name: "model", Type: str, Required: true},
				"dataset": &hcldec.AttrSpec{Name: "dataset", Type: dyn, Required: true},
				"output":  &hcldec.AttrSpec{Name: "output", Type: str, Required: true},
			},
			Computed: map[string]cty.Type{
				"rows":   num,
				"digest": str,
			},
			Refs: []string{"dataset"},
		},
		"endpoint": {
			Config: hcldec.ObjectSpec{
				"model":          &hcldec.AttrSpec{Name: "model", Type: str, Required: true},
				"cluster":        attr("cluster", dyn),
				"replicas":       attr("replicas", num),
				"port":           attr("port", num),
				"auth":           attr("auth", boolT),
				"max_batch_size": attr("max_batch_size", num),
			},
			Computed: map[string]cty.Type{
				"url":           str,
				"token":         str,
				"status":        str,
				"model_version": str,
				"port":          num,
				"pid":           num,
				"log_path":      str,
			},
			Refs:      []string{"cluster"},
			Sensitive: []string{"token"},
			// As providers/local/endpoint.go applies them.
			Defaults: map[string]cty.Value{
				"replicas":       cty.NumberIntVal(1),
				"auth":           cty.True,
				"max_batch_size": cty.NumberIntVal(256),
			},
		},
	}
	for _, s := range m {
		s.types = &kindTypes{}
	}
	return m
}

// WithDefaults returns v, an instance's value (arguments or full state),
// with its unset arguments that have a default set to it. Unknown, null and
// non-object values are returned as they are, and so are marks.
func (s *KindSchema) WithDefaults(v cty.Value) cty.Value {
	if len(s.Defaults) == 0 || v == cty.NilVal || !v.IsKnown() || v.IsNull() {
		return v
	}
	uv, marks := v.Unmark()
	ty := uv.Type()
	if !ty.IsObjectType() {
		return v
	}
	var attrs map[string]cty.Value
	for name, def := range s.Defaults {
		if !ty.HasAttribute(name) || !ty.AttributeType(name).Equals(def.Type()) {
			continue
		}
		if av := uv.GetAttr(name); av.IsKnown() && av.IsNull() && !av.IsMarked() {
			if attrs == nil {
				attrs = uv.AsValueMap()
			}
			attrs[name] = def
		}
	}
	if attrs == nil {
		return v
	}
	return cty.ObjectVal(attrs).WithMarks(marks)
}

// ConfigType is the cty type of a kind's decoded arguments, with reference
// arguments as strings (the referenced resource's id).
func (s *KindSchema) ConfigType() cty.Type {
	if s.types != nil {
		return s.cachedTypes().config
	}
	return s.impliedConfigType()
}

func (s *KindSchema) impliedConfigType() cty.Type {
	t := hcldec.ImpliedType(s.Config)
	if len(s.Refs) == 0 {
		return t
	}
	atys := t.AttributeTypes()
	out := make(map[string]cty.Type, len(atys))
	for k, v := range atys {
		out[k] = v
	}
	for _, r := range s.Refs {
		out[r] = cty.String
	}
	return cty.Object(out)
}

// StateType is the full type of a resource instance's attributes: arguments,
// computed attributes and the id every resource has.
func (s *KindSchema) StateType() cty.Type {
	if s.types != nil {
		return s.cachedTypes().stateType
	}
	return s.stateTypeFrom(s.impliedConfigType())
}

func (s *KindSchema) stateTypeFrom(config cty.Type) cty.Type {
	atys := config.AttributeTypes()
	out := make(map[string]cty.Type, len(atys)+len(s.Computed)+1)
	for k, v := range atys {
		out[k] = v
	}
	for k, v := range s.Computed {
		out[k] = v
	}
	out["id"] = cty.String
	return cty.Object(out)
}
