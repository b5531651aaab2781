package planner

import (
	"encoding/json"
	"github.com/leptonml/lepton/providers"
	"io"
	"sort"
	"sync"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// JSONFormatVersion is the version of Terraform's JSON plan format lepton follows.
const JSONFormatVersion = "1.2"

type jsonPlan struct {
	FormatVersion    string                  `json:"format_version"`
	TerraformVersion string                  `json:"terraform_version"`
	Variables        map[string]jsonVariable `json:"variables,omitempty"`
	PlannedValues    jsonValues              `json:"planned_values"`
	ResourceDrift    []jsonResourceChange    `json:"resource_drift,omitempty"`
	ResourceChanges  []jsonResourceChange    `json:"resource_changes,omitempty"`
	OutputChanges    map[string]jsonChange   `json:"output_changes,omitempty"`
	PriorState       *jsonState              `json:"prior_state,omitempty"`
	Configuration    jsonConfig              `json:"configuration"`
	Applyable        bool                    `json:"applyable"`
	Complete         bool                    `json:"complete"`
	Errored          bool                    `json:"errored"`
	Lepton           jsonLepton              `json:"lepton"`
	RelevantAttrs    []any                   `json:"relevant_attributes,omitempty"`
	Checks           []any                   `json:"checks,omitempty"`
}

type jsonVariable struct {
	Value any `json:"value"`
}

type jsonValues struct {
	Outputs    map[string]jsonOutput `json:"outputs,omitempty"`
	RootModule jsonModule            `json:"root_module"`
}

type jsonOutput struct {
	Sensitive bool `json:"sensitive"`
	Value     any  `json:"value,omitempty"`
	Type      any  `json:"type,omitempty"`
}

type jsonModule struct {
	Resources []jsonResource `json:"resources,omitempty"`
}

type jsonResource struct {
	Address         string         `json:"address"`
	Mode            string         `json:"mode"`
	Type            string         `json:"type"`
	Name            string         `json:"name"`
	Index           any            `json:"index,omitempty"`
	ProviderName    string         `json:"provider_name"`
	SchemaVersion   int            `json:"schema_version"`
	Values          map[string]any `json:"values"`
	SensitiveValues any            `json:"sensitive_values"`
	DependsOn       []string       `json:"depends_on,omitempty"`
	Tainted         bool           `json:"tainted,omitempty"`
}

type jsonResourceChange struct {
	Address      string     `json:"address"`
	Mode         string     `json:"mode"`
	Type         string     `json:"type"`
	Name         string     `json:"name"`
	Index        any        `json:"index,omitempty"`
	Deposed      string     `json:"deposed,omitempty"` // a deposed object's key, as Terraform
	ProviderName string     `json:"provider_name"`
	Change       jsonChange `json:"change"`
	ActionReason string     `json:"action_reason,omitempty"`
}

type jsonChange struct {
	Actions         []string `json:"actions"`
	Before          any      `json:"before"`
	After           any      `json:"after"`
	AfterUnknown    any      `json:"after_unknown"`
	BeforeSensitive any      `json:"before_sensitive"`
	AfterSensitive  any      `json:"after_sensitive"`
	ReplacePaths    [][]any  `json:"replace_paths,omitempty"`
}

type jsonState struct {
	FormatVersion    string     `json:"format_version"`
	TerraformVersion string     `json:"terraform_version"`
	Values           jsonValues `json:"values"`
}

type jsonConfig struct {
	ProviderConfig map[string]jsonProviderConfig `json:"provider_config,omitempty"`
	RootModule     jsonConfigModule              `json:"root_module"`
}

type jsonProviderConfig struct {
	Name        string         `json:"name"`
	FullName    string         `json:"full_name"`
	Alias       string         `json:"alias,omitempty"`
	Expressions map[string]any `json:"expressions,omitempty"`
}

type jsonConfigModule struct {
	Outputs   map[string]jsonConfigOutput   `json:"outputs,omitempty"`
	Resources []jsonConfigResource          `json:"resources,omitempty"`
	Variables map[string]jsonConfigVariable `json:"variables,omitempty"`
}

type jsonConfigOutput struct {
	Expression  jsonExpr `json:"expression"`
	Sensitive   bool     `json:"sensitive,omitempty"`
	DependsOn   []string `json:"depends_on,omitempty"`
	Description string   `json:"description,omitempty"`
}

type jsonConfigResource struct {
	Address           string         `json:"address"`
	Mode              string         `json:"mode"`
	Type              string         `json:"type"`
	Name              string         `json:"name"`
	ProviderConfigKey string         `json:"provider_config_key"`
	Expressions       map[string]any `json:"expressions,omitempty"`
	SchemaVersion     int            `json:"schema_version"`
	CountExpression   *jsonExpr      `json:"count_expression,omitempty"`
	ForEachExpression *jsonExpr      `json:"for_each_expression,omitempty"`
	DependsOn         []string       `json:"depends_on,omitempty"`
}

type jsonConfigVariable struct {
	Default     any    `json:"default,omitempty"`
	Description string `json:"description,omitempty"`
	Sensitive   bool   `json:"sensitive,omitempty"`
}

type jsonLepton struct {
	Mode string   `json:"mode"`
	Cost jsonCost `json:"cost"`
	// Compute lists the runs that get nodes of their own (resources { }),
	// with the offer chosen for them; their price is paid while they run,
	// so it is not in cost.
	Compute []jsonCompute `json:"compute,omitempty"`
}

type jsonCompute struct {
	Address string `json:"address"`
	*providers.Compute
}

type jsonCost struct {
	AddPerHour    float64 `json:"add_per_hour"`
	RemovePerHour float64 `json:"remove_per_hour"`
	TotalPerHour  float64 `json:"total_per_hour"`
	Currency      string  `json:"currency"`
}

// RenderJSON writes the plan in the shape of Terraform's JSON plan format, so
// terraform-json, OPA and conftest read it. As Terraform does, unknown values
// are left out of before, after and planned values (after_unknown lists
// them) and arguments left unset show their default; unlike Terraform,
// sensitive values are left out too (*_sensitive marks them), so they never
// appear.
func RenderJSON(w io.Writer, p *Plan, cfg *lang.Config, version string) error {
	p.LoadValues()
	defs := kindDefaults()
	jp := jsonPlan{
		FormatVersion:    JSONFormatVersion,
		TerraformVersion: version,
		Variables:        map[string]jsonVariable{},
		Applyable:        p.HasChanges() && !p.Errored,
		Complete:         !p.Errored,
		Errored:          p.Errored,
	}
	for name, v := range p.Variables {
		jp.Variables[name] = jsonVariable{Value: plainJSON(v)}
	}
	for _, c := range p.Changes {
		jp.ResourceChanges = append(jp.ResourceChanges, changeJSON(c, defs))
		if c.Action == Delete {
			continue
		}
		jp.PlannedValues.RootModule.Resources = append(jp.PlannedValues.RootModule.Resources, resourceJSON(c.Addr, c.Provider, defs.apply(c.Addr.Resource.Kind, c.After), c.Dependencies, false))
	}
	for _, c := range p.Drift {
		jp.ResourceDrift = append(jp.ResourceDrift, changeJSON(c, defs))
	}
	if len(p.Outputs) > 0 {
		jp.OutputChanges = map[string]jsonChange{}
		jp.PlannedValues.Outputs = map[string]jsonOutput{}
	}
	for _, o := range p.Outputs {
		before, after := o.Before, o.After
		if o.Sensitive {
			before, after = before.Mark(lang.Sensitive), after.Mark(lang.Sensitive)
		}
		jp.OutputChanges[o.Name] = jsonChange{
			Actions: o.Action.JSONActions(), Before: knownJSON(before), After: knownJSON(after),
			AfterUnknown: !after.IsWhollyKnown(), BeforeSensitive: o.Sensitive, AfterSensitive: o.Sensitive,
		}
		if o.Action != Delete {
			jp.PlannedValues.Outputs[o.Name] = jsonOutput{Sensitive: o.Sensitive, Value: knownJSON(after)}
		}
	}
	// prior_state is the state as refreshed, as Terraform's is: what the
	// plan compares the configuration with (resource_drift says what
	// refresh changed). A plan saved before lepton kept the refreshed state
	// has only the state as read.
	prior := p.Refreshed
	if prior == nil {
		prior = p.Prior
	}
	if prior != nil {
		ps, err := stateJSON(prior, version, defs)
		if err != nil {
			return err
		}
		jp.PriorState = ps
	}
	if cfg != nil {
		jp.Configuration = configJSON(cfg)
	}
	a, r, now, _ := p.Cost()
	jp.Lepton = jsonLepton{Mode: p.Mode.String(), Cost: jsonCost{AddPerHour: a, RemovePerHour: r, TotalPerHour: now, Currency: "USD"}}
	for _, c := range p.Changes {
		if c.Compute != nil && c.Action != NoOp && c.Action != Delete {
			jp.Lepton.Compute = append(jp.Lepton.Compute, jsonCompute{Address: c.Address(), Compute: c.Compute})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jp)
}

func changeJSON(c *ResourceChange, defs defaulter) jsonResourceChange {
	before, after := defs.apply(c.Addr.Resource.Kind, c.Before), defs.apply(c.Addr.Resource.Kind, c.After)
	ch := jsonChange{
		Actions:         c.Action.JSONActions(),
		Before:          knownJSON(before),
		After:           knownJSON(after),
		AfterUnknown:    markTree(after, isUnknown),
		BeforeSensitive: markTree(before, isSensitive),
		AfterSensitive:  markTree(after, isSensitive),
	}
	if after.IsNull() {
		// Terraform's after_unknown for a wholly known value (null
		// included) is an empty object.
		ch.AfterUnknown = map[string]any{}
	}
	for _, p := range c.RequiresReplace {
		ch.ReplacePaths = append(ch.ReplacePaths, pathToJSON(p))
	}
	return jsonResourceChange{
		Address: c.Address(), Mode: "managed", Type: c.Addr.Resource.Kind, Name: c.Addr.Resource.Name,
		Index: lang.KeyJSON(c.Addr.Key), Deposed: c.DeposedKey, ProviderName: providerName(c.Provider), Change: ch, ActionReason: c.ActionReason,
	}
}

func providerName(p string) string {
	if p == "" {
		p = "local"
	}
	return "lepton/" + p
}

func resourceJSON(addr lang.Instance, provider string, v cty.Value, deps []string, tainted bool) jsonResource {
	vals, _ := knownJSON(v).(map[string]any)
	if vals == nil {
		vals = map[string]any{}
	}
	sens := markTree(v, isSensitive)
	if sens == false {
		sens = map[string]any{}
	}
	return jsonResource{
		Address: addr.String(), Mode: "managed", Type: addr.Resource.Kind, Name: addr.Resource.Name,
		Index: lang.KeyJSON(addr.Key), ProviderName: providerName(provider), Values: vals, SensitiveValues: sens,
		DependsOn: deps, Tainted: tainted,
	}
}

// knownJSON is v as plain JSON without what before, after and values leave
// out: unknown values (after_unknown lists them) and sensitive ones
// (*_sensitive and sensitive_values mark them). An object or a map drops
// such an attribute; a list keeps its place with null, since the marks are
// matched to elements by position.
func knownJSON(v cty.Value) any {
	if v == cty.NilVal || v.HasMark(lang.Sensitive) || !v.IsKnown() || v.IsNull() {
		return nil
	}
	v, _ = v.Unmark()
	ty := v.Type()
	switch {
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		out := make([]any, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, knownJSON(e))
		}
		return out
	case ty.IsMapType() || ty.IsObjectType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if e.HasMark(lang.Sensitive) || !e.IsKnown() {
				continue
			}
			out[k.AsString()] = knownJSON(e)
		}
		return out
	}
	return plainJSON(v)
}

// defaulter fills in the kinds' argument defaults (lang.KindSchema.Defaults).
type defaulter map[string]*lang.KindSchema

// kindDefaults is built once: the schemas' defaults never change.
var kindDefaults = sync.OnceValue(newDefaulter)

func newDefaulter() defaulter {
	d := defaulter{}
	for kind, s := range lang.Schemas() {
		if len(s.Defaults) > 0 {
			d[kind] = s
		}
	}
	return d
}

func (d defaulter) apply(kind string, v cty.Value) cty.Value {
	if s := d[kind]; s != nil {
		return s.WithDefaults(v)
	}
	return v
}

// StateJSON is the state in Terraform's state representation (show -json).
func StateJSON(st *state.State, version string) (*jsonState, error) {
	return stateJSON(st, version, kindDefaults())
}

func stateJSON(st *state.State, version string, defs defaulter) (*jsonState, error) {
	out := &jsonState{FormatVersion: "1.0", TerraformVersion: version}
	schemas := lang.Schemas()
	for _, r := range st.Resources {
		addr, err := lang.ParseInstance(r.Address)
		if err != nil {
			return nil, err
		}
		schema := schemas[r.Kind]
		if schema == nil {
			continue
		}
		v, err := decodeInstance(r, schema.StateType())
		if err != nil {
			return nil, err
		}
		out.Values.RootModule.Resources = append(out.Values.RootModule.Resources, resourceJSON(addr, r.Provider, defs.apply(r.Kind, v), r.Dependencies, r.Status == state.StatusTainted))
	}
	if len(st.Outputs) > 0 {
		out.Values.Outputs = map[string]jsonOutput{}
		names := make([]string, 0, len(st.Outputs))
		for n := range st.Outputs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			o := st.Outputs[n]
			v, err := decodeValue(o.Value, o.Type)
			if err != nil {
				return nil, err
			}
			jo := jsonOutput{Sensitive: o.Sensitive, Type: json.RawMessage(o.Type)}
			if !o.Sensitive {
				jo.Value = knownJSON(v)
			}
			out.Values.Outputs[n] = jo
		}
	}
	return out, nil
}

// RenderStateJSON writes `show -json` for a state.
func RenderStateJSON(w io.Writer, st *state.State, version string) error {
	js, err := StateJSON(st, version)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(js)
}

func configJSON(cfg *lang.Config) jsonConfig {
	jc := jsonConfig{ProviderConfig: map[string]jsonProviderConfig{"local": {Name: "local", FullName: "lepton/local"}}}
	for _, p := range cfg.SortedProviders() {
		pc := jsonProviderConfig{Name: p.Name, FullName: "lepton/" + p.Name, Alias: p.Alias}
		// A provider's arguments have no schema here: its attributes are
		// what can be shown (a provider body has no blocks today).
		if attrs, d := p.Body.JustAttributes(); !d.HasErrors() && len(attrs) > 0 {
			pc.Expressions = map[string]any{}
			for name, a := range attrs {
				pc.Expressions[name] = exprJSON(a.Expr)
			}
		}
		jc.ProviderConfig[p.Addr()] = pc
	}
	for _, rb := range cfg.Resources {
		refs, _ := cfg.ResourceRefs(rb)
		key := "local"
		if rb.Provider != "" {
			key = rb.Provider
		}
		jr := jsonConfigResource{
			Address: rb.Addr.String(), Mode: "managed", Type: rb.Addr.Kind, Name: rb.Addr.Name,
			ProviderConfigKey: key, DependsOn: resourceDeps(refs),
		}
		if rb.Schema != nil && rb.Body != nil {
			jr.Expressions = bodyExprsJSON(rb.Body, rb.Schema.Config)
		}
		if rb.Count != nil {
			e := exprJSON(rb.Count)
			jr.CountExpression = &e
		}
		if rb.ForEach != nil {
			e := exprJSON(rb.ForEach)
			jr.ForEachExpression = &e
		}
		jc.RootModule.Resources = append(jc.RootModule.Resources, jr)
	}
	if len(cfg.Outputs) > 0 {
		jc.RootModule.Outputs = map[string]jsonConfigOutput{}
		for _, o := range cfg.SortedOutputs() {
			jo := jsonConfigOutput{Sensitive: o.Sensitive, Description: o.Description}
			if o.Value != nil {
				jo.Expression = exprJSON(o.Value)
			}
			for _, t := range o.DependsOn {
				jo.DependsOn = append(jo.DependsOn, traversalString(t))
			}
			jc.RootModule.Outputs[o.Name] = jo
		}
	}
	if len(cfg.Variables) > 0 {
		jc.RootModule.Variables = map[string]jsonConfigVariable{}
		for _, v := range cfg.SortedVariables() {
			jv := jsonConfigVariable{Description: v.Description, Sensitive: v.Sensitive}
			if v.Default != cty.NilVal && !v.Sensitive {
				d, err := convert.Convert(v.Default, v.Default.Type())
				if err == nil {
					jv.Default = plainJSON(d)
				}
			}
			jc.RootModule.Variables[v.Name] = jv
		}
	}
	return jc
}
