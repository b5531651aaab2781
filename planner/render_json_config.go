package planner

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/leptonml/lepton/lang"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// jsonExpr is one expression of the configuration in Terraform's JSON plan
// format: its value when it is a constant, and what it refers to.
type jsonExpr struct {
	ConstantValue json.RawMessage `json:"constant_value,omitempty"`
	References    []string        `json:"references,omitempty"`
}

// exprJSON describes e as Terraform does: constant_value when e evaluates
// with no variables at all, and references listing every reference both
// with the attributes it reads and without them, longest first
// ("training.digits.model", "training.digits"), so a policy can match either.
func exprJSON(e hcl.Expression) jsonExpr {
	var out jsonExpr
	if v, d := e.Value(nil); !d.HasErrors() && v.IsWhollyKnown() && !v.IsMarked() {
		if b, err := ctyjson.Marshal(v, v.Type()); err == nil {
			out.ConstantValue = b
		}
	}
	seen := map[string]bool{}
	for _, t := range e.Variables() {
		for _, r := range refStrings(t) {
			if !seen[r] {
				seen[r] = true
				out.References = append(out.References, r)
			}
		}
	}
	return out
}

// refStrings are Terraform's reference strings for one traversal: the
// traversal and each shorter prefix down to the object it refers to (var.x,
// local.x, count.index, each.key, KIND.NAME or KIND.NAME[KEY]), then, for a
// resource instance, the resource.
func refStrings(t hcl.Traversal) []string {
	subject := 1
	instance := false
	switch root := t.RootName(); {
	case root == "var" || root == "local" || root == "count" || root == "each" || root == "path":
		subject = 2
	case lang.IsKind(root):
		subject = 2
		if len(t) > 2 {
			if _, ok := t[2].(hcl.TraverseIndex); ok {
				subject, instance = 3, true
			}
		}
	}
	if subject > len(t) {
		subject = len(t)
	}
	var out []string
	for n := len(t); n > subject; n-- {
		out = append(out, traversalString(t[:n]))
	}
	out = append(out, traversalString(t[:subject]))
	if instance {
		out = append(out, traversalString(t[:2]))
	}
	return out
}

// traversalString writes a traversal as it is written in configuration.
func traversalString(t hcl.Traversal) string {
	var b strings.Builder
	for _, s := range t {
		switch s := s.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			b.WriteString("[" + keyString(s.Key) + "]")
		case hcl.TraverseSplat:
			b.WriteString("[*]")
		}
	}
	return b.String()
}

func keyString(k cty.Value) string {
	if !k.IsKnown() || k.IsNull() {
		return "*"
	}
	k, _ = k.Unmark()
	switch k.Type() {
	case cty.String:
		return fmt.Sprintf("%q", k.AsString())
	case cty.Number:
		f := k.AsBigFloat()
		if i, acc := f.Int64(); acc == big.Exact {
			return fmt.Sprint(i)
		}
		return f.Text('f', -1)
	}
	return "*"
}

// bodyExprsJSON is a resource body's expressions by argument name, with its
// nested blocks as lists of such objects, as Terraform writes blocks of
// providers built on its plugin SDK (a block given once is a list of one):
// policies written for Terraform plans index them that way, and
// terraform-json reads lists of blocks (and not a single one).
func bodyExprsJSON(body hcl.Body, spec hcldec.ObjectSpec) map[string]any {
	content, _, _ := body.PartialContent(hcldec.ImpliedSchema(spec))
	out := map[string]any{}
	if content == nil {
		return out
	}
	for name, a := range content.Attributes {
		out[name] = exprJSON(a.Expr)
	}
	nested := map[string]hcldec.ObjectSpec{}
	for _, s := range spec {
		if bs, ok := s.(*hcldec.BlockSpec); ok {
			if o, ok := bs.Nested.(hcldec.ObjectSpec); ok {
				nested[bs.TypeName] = o
			}
		}
	}
	for _, blk := range content.Blocks {
		list, _ := out[blk.Type].([]map[string]any)
		out[blk.Type] = append(list, bodyExprsJSON(blk.Body, nested[blk.Type]))
	}
	return out
}
