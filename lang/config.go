// Package lang loads lepton's configuration language: every *.lep.hcl file of a
// directory, merged into one Config, with diagnostics that carry file, line and
// column. It knows nothing about providers or state.
package lang

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// FileSuffix is the extension of configuration files.
const FileSuffix = ".lep.hcl"

// Config is a whole configuration, merged from every file of a directory.
type Config struct {
	Dir       string
	Files     map[string]*hcl.File // by file name, for diagnostics with snippets
	Lepton    *LeptonBlock
	Variables map[string]*Variable
	Locals    map[string]*Local
	Outputs   map[string]*Output
	Providers map[string]*Provider
	// Resources in declaration order (file order, then position).
	Resources []*ResourceBlock
	byAddr    map[Resource]*ResourceBlock
	schemas   map[string]*KindSchema
}

// LeptonBlock is the top-level `lepton` block.
type LeptonBlock struct {
	RequiredVersion string
	Backend         *Backend
	DeclRange       hcl.Range
}

// Backend is `backend "TYPE" { ... }`; its arguments are evaluated without
// references, as Terraform's are.
type Backend struct {
	Type      string
	Config    map[string]cty.Value
	DeclRange hcl.Range
}

// Variable is a `variable` block.
type Variable struct {
	Name        string
	Type        cty.Type
	Default     cty.Value // cty.NilVal when there is none (the variable is required)
	Description string
	Sensitive   bool
	Nullable    bool
	Validations []*Validation
	DeclRange   hcl.Range
}

// Required reports whether a value must be given.
func (v *Variable) Required() bool { return v.Default == cty.NilVal }

// Validation is a `validation` block of a variable.
type Validation struct {
	Condition    hcl.Expression
	ErrorMessage hcl.Expression
	DeclRange    hcl.Range
}

// Local is one named value of a `locals` block.
type Local struct {
	Name      string
	Expr      hcl.Expression
	DeclRange hcl.Range
}

// Output is an `output` block.
type Output struct {
	Name        string
	Value       hcl.Expression
	Description string
	Sensitive   bool
	DependsOn   []hcl.Traversal
	DeclRange   hcl.Range
}

// Provider is a `provider` block; its body is evaluated by the planner.
type Provider struct {
	Name string
	// Alias names a second configuration of the provider (`alias = "west"`);
	// empty for the default one.
	Alias     string
	Body      hcl.Body // the arguments, alias removed
	DeclRange hcl.Range
}

// Addr is how resources name the configuration: "aws", or "aws.west" for
// an aliased one. Config.Providers is keyed by it.
func (p *Provider) Addr() string {
	if p.Alias != "" {
		return p.Name + "." + p.Alias
	}
	return p.Name
}

// ResourceBlock is one resource block of any kind.
type ResourceBlock struct {
	Addr      Resource
	Count     hcl.Expression // nil when absent
	ForEach   hcl.Expression // nil when absent
	DependsOn []hcl.Traversal
	Lifecycle Lifecycle
	// Provider is the provider configuration the resource's `provider`
	// meta-argument names ("aws.west"), or "" for the default ones.
	Provider      string
	providerRange hcl.Range
	Body          hcl.Body // the kind's own arguments, meta-arguments removed
	Schema        *KindSchema
	DeclRange     hcl.Range
	// refs caches ResourceRefs, computed once when the block is loaded: the
	// planner asks for them several times per instance, and hcldec.Variables
	// rebuilds the kind's body schema on every call.
	refs *cachedRefs
}

type cachedRefs struct {
	refs  []Reference
	eval  []Reference // refs without depends_on's
	diags hcl.Diagnostics
	// static: the body refers to nothing (no variable, local, resource,
	// count, each or path), so DecodeResource decodes it once, at validation,
	// and plan and apply reuse that value instead of decoding it again.
	static  bool
	once    sync.Once
	decoded cty.Value
	ddiags  hcl.Diagnostics
	marked  bool // decoded contains marks
}

// Lifecycle holds the lifecycle meta-arguments.
type Lifecycle struct {
	PreventDestroy      bool
	CreateBeforeDestroy bool
	IgnoreChanges       []string // top-level attribute names
	IgnoreAll           bool
}

// Resource returns the block with that address, or nil.
func (c *Config) Resource(r Resource) *ResourceBlock { return c.byAddr[r] }

// Schema returns a kind's schema.
func (c *Config) Schema(kind string) *KindSchema { return c.schemas[kind] }

// topSchema is the file's blocks: the language's own, then one per kind.
var topSchema = func() *hcl.BodySchema {
	s := &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "lepton"},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "output", LabelNames: []string{"name"}},
		{Type: "provider", LabelNames: []string{"name"}},
	}}
	for _, k := range Kinds {
		s.Blocks = append(s.Blocks, hcl.BlockHeaderSchema{Type: k, LabelNames: []string{"name"}})
	}
	return s
}()

// ConfigFiles lists the configuration files of dir in lexical order.
func ConfigFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading configuration directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), FileSuffix) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Load parses and merges every *.lep.hcl file in dir. It reports every error it
// finds, not only the first; the Config is usable for display even with errors.
func Load(dir string) (*Config, hcl.Diagnostics) {
	names, err := ConfigFiles(dir)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: err.Error()}}
	}
	srcs := make(map[string][]byte, len(names))
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration file", Detail: err.Error()}}
		}
		srcs[n] = b
	}
	return LoadSources(dir, names, srcs)
}

// LoadSources is Load over in-memory files (used by tests and the fuzzer).
func LoadSources(dir string, names []string, srcs map[string][]byte) (*Config, hcl.Diagnostics) {
	cfg := &Config{
		Dir:       dir,
		Files:     map[string]*hcl.File{},
		Variables: map[string]*Variable{},
		Locals:    map[string]*Local{},
		Outputs:   map[string]*Output{},
		Providers: map[string]*Provider{},
		byAddr:    map[Resource]*ResourceBlock{},
		schemas:   Schemas(),
	}
	var diags hcl.Diagnostics
	if len(names) == 0 {
		diags = diags.Append(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "No configuration files",
			Detail:   fmt.Sprintf("The directory %s has no %s files. Run `lepton init` to write a starter project.", dir, FileSuffix),
		})
		return cfg, diags
	}
	for _, name := range names {
		f, d := parseFile(srcs[name], name)
		diags = append(diags, d...)
		if f == nil {
			continue
		}
		cfg.Files[name] = f
		diags = append(diags, cfg.addFile(f)...)
	}
	// Each resource's references, found once here, on every core.
	parallelFor(len(cfg.Resources), func(i int) {
		r := cfg.Resources[i]
		refs, d, static, eval := resourceRefsEval(r)
		r.refs = &cachedRefs{refs: refs, diags: d, static: static, eval: eval}
	})
	diags = append(diags, cfg.checkReferences()...)
	for _, r := range cfg.Resources {
		diags = append(diags, cfg.checkResourceProvider(r)...)
	}
	// Bodies are checked even when something else failed, so that every
	// error is reported at once; an error at a place already reported (an
	// undeclared reference met again while evaluating) is not repeated.
	var reported []hcl.Range
	for _, d := range diags {
		if d.Subject != nil {
			reported = append(reported, *d.Subject)
		}
	}
body:
	for _, d := range cfg.validateBodies() {
		for _, r := range reported {
			if d.Subject != nil && r.Overlaps(*d.Subject) {
				continue body
			}
		}
		diags = append(diags, d)
	}
	return cfg, diags
}

func (c *Config) addFile(f *hcl.File) hcl.Diagnostics {
	content, diags := f.Body.Content(topSchema)
	for _, b := range content.Blocks {
		switch b.Type {
		case "lepton":
			diags = append(diags, c.addLepton(b)...)
		case "variable":
			diags = append(diags, c.addVariable(b)...)
		case "locals":
			diags = append(diags, c.addLocals(b)...)
		case "output":
			diags = append(diags, c.addOutput(b)...)
		case "provider":
			diags = append(diags, c.addProvider(b)...)
		default:
			diags = append(diags, c.addResource(b)...)
		}
	}
	return diags
}

func validName(name string) bool { return hclsyntax.ValidIdentifier(name) }

func badName(b *hcl.Block, what string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid " + what + " name",
		Detail:   fmt.Sprintf("%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter or underscore.", b.Labels[0]),
		Subject:  b.LabelRanges[0].Ptr(),
	}
}

func duplicate(what, name string, first hcl.Range, b *hcl.Block) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Duplicate " + what,
		Detail:   fmt.Sprintf("%s %q was already declared at %s. Each name must be unique.", what, name, first),
		Subject:  b.DefRange.Ptr(),
	}
}

func (c *Config) addLepton(b *hcl.Block) hcl.Diagnostics {
	if c.Lepton != nil {
		return hcl.Diagnostics{duplicate("lepton block", "lepton", c.Lepton.DeclRange, b)}
	}
	content, diags := b.Body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "required_version"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "backend", LabelNames: []string{"type"}}},
	})
	lb := &LeptonBlock{DeclRange: b.DefRange}
	if a, ok := content.Attributes["required_version"]; ok {
		var d hcl.Diagnostics
		lb.RequiredVersion, d = staticString(a.Expr)
		diags = append(diags, d...)
	}
	for _, bb := range content.Blocks {
		if lb.Backend != nil {
			diags = append(diags, duplicate("backend block", bb.Labels[0], lb.Backend.DeclRange, bb))
			continue
		}
		attrs, d := bb.Body.JustAttributes()
		diags = append(diags, d...)
		be := &Backend{Type: bb.Labels[0], Config: map[string]cty.Value{}, DeclRange: bb.DefRange}
		for name, a := range attrs {
			v, d := a.Expr.Value(nil)
			diags = append(diags, d...)
			be.Config[name] = v
		}
		switch be.Type {
		case "local", "s3", "gcs", "azurerm", "pg":
		default:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown backend type",
				Detail:   fmt.Sprintf("Backend %q is not one of local, s3, gcs, azurerm, pg.", be.Type),
				Subject:  bb.LabelRanges[0].Ptr(),
			})
		}
		lb.Backend = be
	}
	c.Lepton = lb
	return diags
}

func staticString(e hcl.Expression) (string, hcl.Diagnostics) {
	v, diags := e.Value(nil)
	if diags.HasErrors() {
		return "", diags
	}
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return "", hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Expected a string", Detail: "This value must be a literal string.", Subject: e.Range().Ptr()}}
	}
	return v.AsString(), nil
}

func staticBool(e hcl.Expression) (bool, hcl.Diagnostics) {
	v, diags := e.Value(nil)
	if diags.HasErrors() {
		return false, diags
	}
	v, err := convert.Convert(v, cty.Bool)
	if err != nil || v.IsNull() {
		return false, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Expected a bool", Detail: "This value must be true or false.", Subject: e.Range().Ptr()}}
	}
	return v.True(), nil
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"}, {Name: "nullable"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "validation"}},
}

func (c *Config) addVariable(b *hcl.Block) hcl.Diagnostics {
	name := b.Labels[0]
	if !validName(name) {
		return hcl.Diagnostics{badName(b, "variable")}
	}
	if prev, ok := c.Variables[name]; ok {
		return hcl.Diagnostics{duplicate("variable", name, prev.DeclRange, b)}
	}
	content, diags := b.Body.Content(variableSchema)
	v := &Variable{Name: name, Type: cty.DynamicPseudoType, Nullable: true, DeclRange: b.DefRange}
	if a, ok := content.Attributes["type"]; ok {
		t, d := typeexpr.TypeConstraint(a.Expr)
		diags = append(diags, d...)
		if !d.HasErrors() {
			v.Type = t
		}
	}
	if a, ok := content.Attributes["description"]; ok {
		s, d := staticString(a.Expr)
		diags = append(diags, d...)
		v.Description = s
	}
	if a, ok := content.Attributes["sensitive"]; ok {
		s, d := staticBool(a.Expr)
		diags = append(diags, d...)
		v.Sensitive = s
	}
	if a, ok := content.Attributes["nullable"]; ok {
		s, d := staticBool(a.Expr)
		diags = append(diags, d...)
		v.Nullable = s
	}
	if a, ok := content.Attributes["default"]; ok {
		val, d := a.Expr.Value(nil)
		diags = append(diags, d...)
		if !d.HasErrors() {
			conv, err := convert.Convert(val, v.Type)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid default value for variable",
					Detail:   fmt.Sprintf("This default value is not compatible with the variable's type constraint: %s.", err),
					Subject:  a.Expr.Range().Ptr(),
				})
			} else {
				v.Default = conv
			}
		}
	}
	for _, vb := range content.Blocks {
		vc, d := vb.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
			{Name: "condition", Required: true}, {Name: "error_message", Required: true},
		}})
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		cond := vc.Attributes["condition"].Expr
		for _, t := range cond.Variables() {
			if t.RootName() != "var" || len(t) < 2 || !isAttr(t[1], name) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid reference in variable validation",
					Detail:   fmt.Sprintf("The condition for variable %q can only refer to the variable itself, as var.%s.", name, name),
					Subject:  t.SourceRange().Ptr(),
				})
			}
		}
		v.Validations = append(v.Validations, &Validation{Condition: cond, ErrorMessage: vc.Attributes["error_message"].Expr, DeclRange: vb.DefRange})
	}
	c.Variables[name] = v
	return diags
}

func isAttr(t hcl.Traverser, name string) bool {
	a, ok := t.(hcl.TraverseAttr)
	return ok && a.Name == name
}

func (c *Config) addLocals(b *hcl.Block) hcl.Diagnostics {
	attrs, diags := b.Body.JustAttributes()
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := attrs[n]
		if prev, ok := c.Locals[n]; ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate local value",
				Detail:   fmt.Sprintf("local.%s was already defined at %s.", n, prev.DeclRange),
				Subject:  a.NameRange.Ptr(),
			})
			continue
		}
		c.Locals[n] = &Local{Name: n, Expr: a.Expr, DeclRange: a.Range}
	}
	return diags
}

func (c *Config) addOutput(b *hcl.Block) hcl.Diagnostics {
	name := b.Labels[0]
	if !validName(name) {
		return hcl.Diagnostics{badName(b, "output")}
	}
	if prev, ok := c.Outputs[name]; ok {
		return hcl.Diagnostics{duplicate("output", name, prev.DeclRange, b)}
	}
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "value", Required: true}, {Name: "description"}, {Name: "sensitive"}, {Name: "depends_on"},
	}})
	o := &Output{Name: name, DeclRange: b.DefRange}
	if a, ok := content.Attributes["value"]; ok {
		o.Value = a.Expr
	}
	if a, ok := content.Attributes["description"]; ok {
		s, d := staticString(a.Expr)
		diags = append(diags, d...)
		o.Description = s
	}
	if a, ok := content.Attributes["sensitive"]; ok {
		s, d := staticBool(a.Expr)
		diags = append(diags, d...)
		o.Sensitive = s
	}
	if a, ok := content.Attributes["depends_on"]; ok {
		t, d := traversalList(a.Expr)
		diags = append(diags, d...)
		o.DependsOn = t
	}
	if o.Value == nil {
		o.Value = hcl.StaticExpr(cty.NullVal(cty.DynamicPseudoType), b.DefRange)
	}
	c.Outputs[name] = o
	return diags
}

// ProviderNames are the providers lepton has.
var ProviderNames = []string{"local", "aws", "gcp", "azure", "kubernetes"}

func (c *Config) addProvider(b *hcl.Block) hcl.Diagnostics {
	name := b.Labels[0]
	known := false
	for _, p := range ProviderNames {
		known = known || p == name
	}
	if !known {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Unknown provider",
			Detail:   fmt.Sprintf("Provider %q is not one of %s.", name, strings.Join(ProviderNames, ", ")),
			Subject:  b.LabelRanges[0].Ptr(),
		}}
	}
	content, body, diags := b.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "alias"}}})
	p := &Provider{Name: name, Body: body, DeclRange: b.DefRange}
	if a, ok := content.Attributes["alias"]; ok {
		v, d := a.Expr.Value(nil)
		if d.HasErrors() || v.Type() != cty.String || v.IsNull() || !validName(v.AsString()) {
			return append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid provider alias",
				Detail:   "alias must be a literal name: letters, digits, underscores and dashes, starting with a letter or underscore.",
				Subject:  a.Expr.Range().Ptr(),
			})
		}
		p.Alias = v.AsString()
	}
	if prev, ok := c.Providers[p.Addr()]; ok {
		what := "provider"
		if p.Alias != "" {
			what = "provider alias"
		}
		return append(diags, duplicate(what, p.Addr(), prev.DeclRange, b))
	}
	c.Providers[p.Addr()] = p
	return diags
}

// checkResourceProvider resolves a resource's `provider` meta-argument once
// every provider block is loaded: an alias must be declared.
func (c *Config) checkResourceProvider(r *ResourceBlock) hcl.Diagnostics {
	if r.Provider == "" {
		return nil
	}
	name, alias, _ := strings.Cut(r.Provider, ".")
	known := false
	for _, p := range ProviderNames {
		known = known || p == name
	}
	switch {
	case !known:
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unknown provider", Detail: fmt.Sprintf("Provider %q is not one of %s.", name, strings.Join(ProviderNames, ", ")), Subject: r.providerRange.Ptr()}}
	case alias != "" && c.Providers[r.Provider] == nil:
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Provider configuration not present", Detail: fmt.Sprintf("%s refers to provider %s, but no provider %q block declares alias = %q.", r.Addr, r.Provider, name, alias), Subject: r.providerRange.Ptr()}}
	}
	return nil
}

var resourceMetaSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "count"}, {Name: "for_each"}, {Name: "depends_on"}, {Name: "provider"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "lifecycle"}},
}

func (c *Config) addResource(b *hcl.Block) hcl.Diagnostics {
	name := b.Labels[0]
	if !validName(name) {
		return hcl.Diagnostics{badName(b, b.Type)}
	}
	addr := Resource{Kind: b.Type, Name: name}
	if prev, ok := c.byAddr[addr]; ok {
		return hcl.Diagnostics{duplicate("resource", addr.String(), prev.DeclRange, b)}
	}
	content, remain, diags := b.Body.PartialContent(resourceMetaSchema)
	r := &ResourceBlock{Addr: addr, Body: remain, Schema: c.schemas[b.Type], DeclRange: b.DefRange}
	if a, ok := content.Attributes["count"]; ok {
		r.Count = a.Expr
	}
	if a, ok := content.Attributes["for_each"]; ok {
		r.ForEach = a.Expr
		if r.Count != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid combination of count and for_each",
				Detail:   "A resource may use count or for_each, not both.",
				Subject:  a.NameRange.Ptr(),
			})
		}
	}
	if a, ok := content.Attributes["depends_on"]; ok {
		t, d := traversalList(a.Expr)
		diags = append(diags, d...)
		r.DependsOn = t
	}
	if a, ok := content.Attributes["provider"]; ok {
		// provider = aws or provider = aws.west: a reference to a provider
		// configuration, not an expression, as in Terraform.
		t, d := hcl.AbsTraversalForExpr(a.Expr)
		r.providerRange = a.Expr.Range()
		switch {
		case d.HasErrors() || len(t) > 2:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid provider reference", Detail: "provider takes a provider name, or NAME.ALIAS for an aliased configuration (provider = aws.west).", Subject: a.Expr.Range().Ptr()})
		case len(t) == 2:
			step, ok := t[1].(hcl.TraverseAttr)
			if !ok {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid provider reference", Detail: "provider takes a provider name, or NAME.ALIAS for an aliased configuration (provider = aws.west).", Subject: a.Expr.Range().Ptr()})
				break
			}
			r.Provider = t.RootName() + "." + step.Name
		default:
			r.Provider = t.RootName()
		}
	}
	for i, lb := range content.Blocks {
		if i > 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate lifecycle block", Detail: "A resource has at most one lifecycle block.", Subject: lb.DefRange.Ptr()})
			continue
		}
		diags = append(diags, decodeLifecycle(lb, r)...)
	}
	c.byAddr[addr] = r
	c.Resources = append(c.Resources, r)
	return diags
}

func decodeLifecycle(b *hcl.Block, r *ResourceBlock) hcl.Diagnostics {
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "prevent_destroy"}, {Name: "create_before_destroy"}, {Name: "ignore_changes"},
	}})
	if a, ok := content.Attributes["prevent_destroy"]; ok {
		v, d := staticBool(a.Expr)
		diags = append(diags, d...)
		r.Lifecycle.PreventDestroy = v
	}
	if a, ok := content.Attributes["create_before_destroy"]; ok {
		v, d := staticBool(a.Expr)
		diags = append(diags, d...)
		r.Lifecycle.CreateBeforeDestroy = v
	}
	if a, ok := content.Attributes["ignore_changes"]; ok {
		if kw := hcl.ExprAsKeyword(a.Expr); kw == "all" {
			r.Lifecycle.IgnoreAll = true
			return diags
		}
		exprs, d := hcl.ExprList(a.Expr)
		diags = append(diags, d...)
		for _, e := range exprs {
			t, d := hcl.RelTraversalForExpr(e)
			diags = append(diags, d...)
			if d.HasErrors() || len(t) == 0 {
				continue
			}
			// A relative traversal starts with an attribute step, not a
			// root (RootName would panic).
			var name string
			switch s := t[0].(type) {
			case hcl.TraverseAttr:
				name = s.Name
			case hcl.TraverseRoot:
				name = s.Name
			}
			if _, ok := r.Schema.StateType().AttributeTypes()[name]; !ok {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Unsupported attribute in ignore_changes",
					Detail:   fmt.Sprintf("%s has no attribute %q.", r.Addr.Kind, name),
					Subject:  e.Range().Ptr(),
				})
				continue
			}
			r.Lifecycle.IgnoreChanges = append(r.Lifecycle.IgnoreChanges, name)
		}
	}
	return diags
}

func traversalList(e hcl.Expression) ([]hcl.Traversal, hcl.Diagnostics) {
	exprs, diags := hcl.ExprList(e)
	var out []hcl.Traversal
	for _, x := range exprs {
		t, d := hcl.AbsTraversalForExpr(x)
		diags = append(diags, d...)
		if !d.HasErrors() {
			out = append(out, t)
		}
	}
	return out, diags
}
