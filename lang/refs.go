package lang

import (
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
)

// RefKind says what a reference points at.
type RefKind int

// The kinds of reference.
const (
	RefVar RefKind = iota
	RefLocal
	RefResource
	RefCount
	RefEach
	RefPath
)

// Reference is one reference found in an expression.
type Reference struct {
	Kind     RefKind
	Name     string   // variable, local or resource name; attribute for count/each/path
	Resource Resource // for RefResource
	Range    hcl.Range
}

// Key identifies the referenced object (for de-duplication and graph edges).
func (r Reference) Key() string {
	switch r.Kind {
	case RefVar:
		return "var." + r.Name
	case RefLocal:
		return "local." + r.Name
	case RefResource:
		return r.Resource.String()
	case RefCount:
		return "count." + r.Name
	case RefEach:
		return "each." + r.Name
	}
	return "path." + r.Name
}

// parseRef turns a traversal into a Reference, with a diagnostic when it cannot
// refer to anything lepton knows.
func parseRef(t hcl.Traversal) (Reference, *hcl.Diagnostic) {
	root := t.RootName()
	rng := t.SourceRange()
	attrAt := func(i int) (string, bool) {
		if len(t) <= i {
			return "", false
		}
		a, ok := t[i].(hcl.TraverseAttr)
		if !ok {
			return "", false
		}
		return a.Name, true
	}
	bad := func(summary, detail string) (Reference, *hcl.Diagnostic) {
		return Reference{}, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()}
	}
	name, ok := attrAt(1)
	switch {
	case root == "var":
		if !ok {
			return bad("Invalid reference", "A reference to a variable must be var.NAME.")
		}
		return Reference{Kind: RefVar, Name: name, Range: rng}, nil
	case root == "local":
		if !ok {
			return bad("Invalid reference", "A reference to a local value must be local.NAME.")
		}
		return Reference{Kind: RefLocal, Name: name, Range: rng}, nil
	case IsKind(root):
		if !ok {
			return bad("Invalid reference", fmt.Sprintf("A reference to a resource must be %s.NAME.", root))
		}
		rng = hcl.RangeBetween(t[0].SourceRange(), t[1].SourceRange())
		return Reference{Kind: RefResource, Name: name, Resource: Resource{Kind: root, Name: name}, Range: rng}, nil
	case root == "count":
		if !ok || name != "index" {
			return bad("Invalid reference", "The only attribute of count is count.index.")
		}
		return Reference{Kind: RefCount, Name: name, Range: rng}, nil
	case root == "each":
		if !ok || (name != "key" && name != "value") {
			return bad("Invalid reference", "each has the attributes each.key and each.value.")
		}
		return Reference{Kind: RefEach, Name: name, Range: rng}, nil
	case root == "path":
		if !ok || (name != "module" && name != "root" && name != "cwd") {
			return bad("Invalid reference", "path has the attributes path.module, path.root and path.cwd.")
		}
		return Reference{Kind: RefPath, Name: name, Range: rng}, nil
	}
	return bad("Reference to undeclared name", fmt.Sprintf("There is no %q: a reference starts with var, local, path, count, each or a resource kind (dataset, cluster, training, batch_inference, endpoint).", root))
}

func refsOf(ts []hcl.Traversal) ([]Reference, hcl.Diagnostics) {
	var out []Reference
	var diags hcl.Diagnostics
	for _, t := range ts {
		r, d := parseRef(t)
		if d != nil {
			diags = append(diags, d)
			continue
		}
		out = append(out, r)
	}
	return out, diags
}

// ResourceRefs are the references in a resource block: its arguments, count,
// for_each and depends_on.
func (c *Config) ResourceRefs(r *ResourceBlock) ([]Reference, hcl.Diagnostics) {
	if r.refs != nil {
		// Full slice expressions: a caller's append must not write into the cache.
		return r.refs.refs[:len(r.refs.refs):len(r.refs.refs)], r.refs.diags[:len(r.refs.diags):len(r.refs.diags)]
	}
	refs, diags, _ := resourceRefs(r)
	return refs, diags
}

// resourceRefs computes ResourceRefs, and whether the body refers to nothing
// (its arguments then have the same value in every context).
func resourceRefs(r *ResourceBlock) ([]Reference, hcl.Diagnostics, bool) {
	refs, diags, static, _ := resourceRefsEval(r)
	return refs, diags, static
}

// resourceRefsEval is resourceRefs, and also the references whose values
// evaluating the block needs: all but depends_on's, which only order.
func resourceRefsEval(r *ResourceBlock) (refs []Reference, diags hcl.Diagnostics, static bool, eval []Reference) {
	ts := r.Schema.variables(r.Body)
	static = len(ts) == 0
	if r.Count != nil {
		ts = append(ts, r.Count.Variables()...)
	}
	if r.ForEach != nil {
		ts = append(ts, r.ForEach.Variables()...)
	}
	eval, _ = refsOf(ts)
	ts = append(ts, r.DependsOn...)
	refs, diags = refsOf(ts)
	return refs, diags, static, eval
}

// ResourceEvalRefs are the references whose values evaluating a resource
// block needs: ResourceRefs without depends_on's, which only order the graph
// (a plan need not look up, or decode, what a resource merely waits for).
func (c *Config) ResourceEvalRefs(r *ResourceBlock) []Reference {
	if r.refs != nil {
		return r.refs.eval[:len(r.refs.eval):len(r.refs.eval)]
	}
	_, _, _, eval := resourceRefsEval(r)
	return eval
}

// ExprRefs are the references of one expression.
func ExprRefs(e hcl.Expression) ([]Reference, hcl.Diagnostics) { return refsOf(e.Variables()) }

// OutputRefs are an output's references, depends_on included.
func (c *Config) OutputRefs(o *Output) ([]Reference, hcl.Diagnostics) {
	return refsOf(append(o.Value.Variables(), o.DependsOn...))
}

// ProviderRefs are the references in a provider block.
func (c *Config) ProviderRefs(p *Provider) ([]Reference, hcl.Diagnostics) {
	attrs, diags := p.Body.JustAttributes()
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	var ts []hcl.Traversal
	for _, n := range names {
		ts = append(ts, attrs[n].Expr.Variables()...)
	}
	refs, d := refsOf(ts)
	return refs, append(diags, d...)
}

// checkReferences reports every reference to something undeclared, and count
// or each used where they mean nothing.
func (c *Config) checkReferences() hcl.Diagnostics {
	var diags hcl.Diagnostics
	check := func(refs []Reference, hasCount, hasEach bool) {
		for _, r := range refs {
			var d *hcl.Diagnostic
			switch r.Kind {
			case RefVar:
				if _, ok := c.Variables[r.Name]; !ok {
					d = &hcl.Diagnostic{Summary: "Reference to undeclared input variable", Detail: fmt.Sprintf("An input variable named %q is not declared. Add a variable %q block.", r.Name, r.Name)}
				}
			case RefLocal:
				if _, ok := c.Locals[r.Name]; !ok {
					d = &hcl.Diagnostic{Summary: "Reference to undeclared local value", Detail: fmt.Sprintf("A local value named %q is not declared.", r.Name)}
				}
			case RefResource:
				if c.byAddr[r.Resource] == nil {
					d = &hcl.Diagnostic{Summary: "Reference to undeclared resource", Detail: fmt.Sprintf("A %s resource named %q is not declared.", r.Resource.Kind, r.Resource.Name)}
				}
			case RefCount:
				if !hasCount {
					d = &hcl.Diagnostic{Summary: "Reference to \"count\" in non-counted context", Detail: "count.index can only be used in a resource that sets count."}
				}
			case RefEach:
				if !hasEach {
					d = &hcl.Diagnostic{Summary: "Reference to \"each\" in context without for_each", Detail: "each.key and each.value can only be used in a resource that sets for_each."}
				}
			}
			if d != nil {
				d.Severity = hcl.DiagError
				d.Subject = r.Range.Ptr()
				diags = append(diags, d)
			}
		}
	}
	for _, r := range c.Resources {
		refs, d := c.ResourceRefs(r)
		diags = append(diags, d...)
		check(refs, r.Count != nil, r.ForEach != nil)
		for _, ref := range refs {
			if ref.Kind == RefResource && ref.Resource == r.Addr {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Self-referential block", Detail: fmt.Sprintf("%s refers to itself.", r.Addr), Subject: ref.Range.Ptr()})
			}
		}
		if r.Count != nil || r.ForEach != nil {
			for _, e := range []hcl.Expression{r.Count, r.ForEach} {
				if e == nil {
					continue
				}
				er, _ := ExprRefs(e)
				for _, ref := range er {
					if ref.Kind == RefCount || ref.Kind == RefEach {
						diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid reference", Detail: "count and for_each cannot refer to count or each.", Subject: ref.Range.Ptr()})
					}
				}
			}
		}
	}
	for _, l := range c.sortedLocals() {
		refs, d := ExprRefs(l.Expr)
		diags = append(diags, d...)
		check(refs, false, false)
	}
	for _, o := range c.SortedOutputs() {
		refs, d := c.OutputRefs(o)
		diags = append(diags, d...)
		check(refs, false, false)
	}
	for _, p := range c.SortedProviders() {
		refs, d := c.ProviderRefs(p)
		diags = append(diags, d...)
		check(refs, false, false)
		for _, ref := range refs {
			if ref.Kind == RefResource {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid provider reference", Detail: "Provider settings can refer to variables and locals, not to resources.", Subject: ref.Range.Ptr()})
			}
		}
	}
	return diags
}

func (c *Config) sortedLocals() []*Local {
	out := make([]*Local, 0, len(c.Locals))
	for _, l := range c.Locals {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SortedOutputs returns outputs by name.
func (c *Config) SortedOutputs() []*Output {
	out := make([]*Output, 0, len(c.Outputs))
	for _, o := range c.Outputs {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SortedProviders returns provider blocks by name.
func (c *Config) SortedProviders() []*Provider {
	out := make([]*Provider, 0, len(c.Providers))
	for _, p := range c.Providers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr() < out[j].Addr() })
	return out
}

// SortedLocals returns locals by name.
func (c *Config) SortedLocals() []*Local { return c.sortedLocals() }
