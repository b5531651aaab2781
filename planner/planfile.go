package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/leptonml/lepton/providers"
	"sort"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// planFileFormat identifies lepton's saved plan files.
const planFileFormat = "lepton-plan/1"

type savedValue struct {
	Value     json.RawMessage `json:"value"`
	Type      json.RawMessage `json:"type"`
	Unknown   [][]any         `json:"unknown,omitempty"`
	Sensitive [][]any         `json:"sensitive,omitempty"`
}

type savedChange struct {
	Address         string             `json:"address"`
	Provider        string             `json:"provider"`
	Action          string             `json:"action"`
	Before          savedValue         `json:"before"`
	After           savedValue         `json:"after"`
	RequiresReplace [][]any            `json:"requires_replace,omitempty"`
	ActionReason    string             `json:"action_reason,omitempty"`
	Reason          string             `json:"reason,omitempty"`
	Dependencies    []string           `json:"dependencies,omitempty"`
	PricePerHour    float64            `json:"price_per_hour,omitempty"`
	PriorPrice      float64            `json:"prior_price,omitempty"`
	Detail          []string           `json:"detail,omitempty"`
	Compute         *providers.Compute `json:"compute,omitempty"`
	Status          string             `json:"status,omitempty"`
	Private         []byte             `json:"private,omitempty"`
	PriorPrivate    []byte             `json:"prior_private,omitempty"`
	DeposedKey      string             `json:"deposed,omitempty"`
	ProviderConfig  string             `json:"provider_config,omitempty"`
	PriorProvConfig string             `json:"prior_provider_config,omitempty"`
}

type savedOutput struct {
	Name      string     `json:"name"`
	Action    string     `json:"action"`
	Before    savedValue `json:"before"`
	After     savedValue `json:"after"`
	Sensitive bool       `json:"sensitive,omitempty"`
}

type planFile struct {
	Format        string                `json:"format"`
	LeptonVersion string                `json:"lepton_version"`
	Mode          string                `json:"mode"`
	Targets       []string              `json:"targets,omitempty"`
	Replace       []string              `json:"replace,omitempty"`
	Refresh       bool                  `json:"refresh"`
	ConfigHash    string                `json:"config_hash"`
	Lineage       string                `json:"lineage,omitempty"`
	Serial        uint64                `json:"serial"`
	Variables     map[string]savedValue `json:"variables"`
	Changes       []savedChange         `json:"changes"`
	Drift         []savedChange         `json:"drift,omitempty"`
	Outputs       []savedOutput         `json:"outputs,omitempty"`
	Prior         *state.State          `json:"prior,omitempty"`
	Refreshed     *state.State          `json:"refreshed,omitempty"`
	Errored       bool                  `json:"errored,omitempty"`
}

func saveValue(v cty.Value) (savedValue, error) {
	unmarked, pvm := v.UnmarkDeepWithPaths()
	var sv savedValue
	for _, pm := range pvm {
		if _, ok := pm.Marks[lang.Sensitive]; ok {
			sv.Sensitive = append(sv.Sensitive, pathToJSON(pm.Path))
		}
	}
	if !unmarked.IsKnown() {
		sv.Unknown = [][]any{{}}
		unmarked = cty.NullVal(unmarked.Type())
	} else if !unmarked.IsWhollyKnown() {
		cty.Walk(unmarked, func(p cty.Path, v cty.Value) (bool, error) {
			if !v.IsKnown() {
				sv.Unknown = append(sv.Unknown, pathToJSON(p))
				return false, nil
			}
			return true, nil
		})
		unmarked = unknownAsNull(unmarked)
	}
	ty := unmarked.Type()
	b, err := ctyjson.Marshal(unmarked, ty)
	if err != nil {
		return sv, err
	}
	t, err := ctyjson.MarshalType(ty)
	if err != nil {
		return sv, err
	}
	sv.Value, sv.Type = b, t
	return sv, nil
}

func loadValue(sv savedValue) (cty.Value, error) {
	ty, err := ctyjson.UnmarshalType(sv.Type)
	if err != nil {
		return cty.NilVal, err
	}
	v, err := ctyjson.Unmarshal(sv.Value, ty)
	if err != nil {
		return cty.NilVal, err
	}
	for _, p := range sv.Unknown {
		if len(p) == 0 {
			v = cty.UnknownVal(ty)
			break
		}
		want := pathFromJSON(p, ty)
		v, err = cty.Transform(v, func(path cty.Path, x cty.Value) (cty.Value, error) {
			if path.Equals(want) {
				return cty.UnknownVal(x.Type()), nil
			}
			return x, nil
		})
		if err != nil {
			return cty.NilVal, err
		}
	}
	if len(sv.Sensitive) > 0 {
		var pvm []cty.PathValueMarks
		for _, p := range sv.Sensitive {
			pvm = append(pvm, cty.PathValueMarks{Path: pathFromJSON(p, ty), Marks: cty.NewValueMarks(lang.Sensitive)})
		}
		v = v.MarkWithPaths(pvm)
	}
	return v, nil
}

func saveChange(c *ResourceChange) (savedChange, error) {
	b, err := saveValue(c.Before)
	if err != nil {
		return savedChange{}, fmt.Errorf("%s: %w", c.Address(), err)
	}
	a, err := saveValue(c.After)
	if err != nil {
		return savedChange{}, fmt.Errorf("%s: %w", c.Address(), err)
	}
	sc := savedChange{Address: c.Address(), Provider: c.Provider, Action: c.Action.String(), Before: b, After: a,
		ActionReason: c.ActionReason, Reason: c.Reason, Dependencies: c.Dependencies, PricePerHour: c.PricePerHour, Compute: c.Compute,
		PriorPrice: c.PriorPrice, Detail: c.Detail, Status: c.Status,
		Private: c.Private, PriorPrivate: c.PriorPrivate, DeposedKey: c.DeposedKey,
		ProviderConfig: c.ProviderConfig, PriorProvConfig: c.PriorProviderConfig}
	for _, p := range c.RequiresReplace {
		sc.RequiresReplace = append(sc.RequiresReplace, pathToJSON(p))
	}
	return sc, nil
}

func loadChange(sc savedChange) (*ResourceChange, error) {
	addr, err := lang.ParseInstance(sc.Address)
	if err != nil {
		return nil, err
	}
	act, ok := ParseAction(sc.Action)
	if !ok {
		return nil, fmt.Errorf("%s: unknown action %q", sc.Address, sc.Action)
	}
	schema := lang.Schemas()[addr.Resource.Kind]
	ty := schema.StateType()
	b, err := loadValue(sc.Before)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sc.Address, err)
	}
	a, err := loadValue(sc.After)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sc.Address, err)
	}
	c := &ResourceChange{Addr: addr, Provider: sc.Provider, Action: act, Before: b, After: a, Type: ty,
		ActionReason: sc.ActionReason, Reason: sc.Reason, Dependencies: sc.Dependencies, PricePerHour: sc.PricePerHour, Compute: sc.Compute,
		PriorPrice: sc.PriorPrice, Detail: sc.Detail, Status: sc.Status,
		Private: sc.Private, PriorPrivate: sc.PriorPrivate, DeposedKey: sc.DeposedKey,
		ProviderConfig: sc.ProviderConfig, PriorProviderConfig: sc.PriorProvConfig}
	for _, p := range sc.RequiresReplace {
		c.RequiresReplace = append(c.RequiresReplace, pathFromJSON(p, ty))
	}
	return c, nil
}

// Encode serialises the plan for `plan -out`. The file holds variable values
// (sensitive ones too, as Terraform's plan files do): it is written 0600.
func (p *Plan) Encode(version string) ([]byte, error) {
	p.LoadValues()
	pf := planFile{Format: planFileFormat, LeptonVersion: version, Mode: p.Mode.String(), Refresh: p.Refresh,
		ConfigHash: p.ConfigHash, Lineage: p.Lineage, Serial: p.Serial, Variables: map[string]savedValue{},
		Prior: p.Prior, Refreshed: p.Refreshed, Errored: p.Errored}
	for _, t := range p.Targets {
		pf.Targets = append(pf.Targets, t.String())
	}
	for _, t := range p.Replace {
		pf.Replace = append(pf.Replace, t.String())
	}
	for name, v := range p.Variables {
		sv, err := saveValue(v)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", name, err)
		}
		pf.Variables[name] = sv
	}
	for _, c := range p.Changes {
		sc, err := saveChange(c)
		if err != nil {
			return nil, err
		}
		pf.Changes = append(pf.Changes, sc)
	}
	for _, c := range p.Drift {
		sc, err := saveChange(c)
		if err != nil {
			return nil, err
		}
		pf.Drift = append(pf.Drift, sc)
	}
	for _, o := range p.Outputs {
		b, err := saveValue(o.Before)
		if err != nil {
			return nil, err
		}
		a, err := saveValue(o.After)
		if err != nil {
			return nil, err
		}
		pf.Outputs = append(pf.Outputs, savedOutput{Name: o.Name, Action: o.Action.String(), Before: b, After: a, Sensitive: o.Sensitive})
	}
	return json.MarshalIndent(pf, "", " ")
}

// DecodePlan reads a saved plan file.
func DecodePlan(b []byte) (*Plan, error) {
	var pf planFile
	if err := json.Unmarshal(b, &pf); err != nil {
		return nil, fmt.Errorf("not a lepton plan file: %w", err)
	}
	if pf.Format != planFileFormat {
		return nil, fmt.Errorf("not a lepton plan file (format %q, want %q)", pf.Format, planFileFormat)
	}
	p := &Plan{Refresh: pf.Refresh, ConfigHash: pf.ConfigHash, Lineage: pf.Lineage, Serial: pf.Serial,
		Variables: map[string]cty.Value{}, Prior: pf.Prior, Refreshed: pf.Refreshed, Errored: pf.Errored}
	switch pf.Mode {
	case "destroy":
		p.Mode = DestroyMode
	case "refresh-only":
		p.Mode = RefreshOnlyMode
	}
	for _, s := range pf.Targets {
		t, err := lang.ParseTarget(s)
		if err != nil {
			return nil, err
		}
		p.Targets = append(p.Targets, t)
	}
	for _, s := range pf.Replace {
		t, err := lang.ParseTarget(s)
		if err != nil {
			return nil, err
		}
		p.Replace = append(p.Replace, t)
	}
	for name, sv := range pf.Variables {
		v, err := loadValue(sv)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", name, err)
		}
		p.Variables[name] = v
	}
	for _, sc := range pf.Changes {
		c, err := loadChange(sc)
		if err != nil {
			return nil, err
		}
		p.Changes = append(p.Changes, c)
	}
	for _, sc := range pf.Drift {
		c, err := loadChange(sc)
		if err != nil {
			return nil, err
		}
		p.Drift = append(p.Drift, c)
	}
	for _, so := range pf.Outputs {
		act, _ := ParseAction(so.Action)
		b, err := loadValue(so.Before)
		if err != nil {
			return nil, err
		}
		a, err := loadValue(so.After)
		if err != nil {
			return nil, err
		}
		p.Outputs = append(p.Outputs, &OutputChange{Name: so.Name, Action: act, Before: b, After: a, Sensitive: so.Sensitive})
	}
	return p, nil
}

// ConfigHash digests the configuration files and the variable values, so a
// saved plan can tell when either changed.
func ConfigHash(cfg *lang.Config, vars map[string]cty.Value) string {
	h := sha256.New()
	names := make([]string, 0, len(cfg.Files))
	for n := range cfg.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "file %q %d\n", n, len(cfg.Files[n].Bytes))
		h.Write(cfg.Files[n].Bytes)
	}
	vnames := make([]string, 0, len(vars))
	for n := range vars {
		vnames = append(vnames, n)
	}
	sort.Strings(vnames)
	for _, n := range vnames {
		sv, err := saveValue(vars[n])
		if err != nil {
			continue
		}
		fmt.Fprintf(h, "var %q %s %s\n", n, sv.Type, sv.Value)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Stale reports why a saved plan no longer applies, or "".
func (p *Plan) Stale(current *state.State, configHash string) string {
	if configHash != p.ConfigHash {
		return "the configuration or the variable values changed since the plan was made"
	}
	switch {
	case current == nil && p.Lineage != "":
		return "the state was removed since the plan was made"
	case current != nil && p.Lineage != "" && current.Lineage != p.Lineage:
		return fmt.Sprintf("the state's lineage is %s, the plan was made for %s", current.Lineage, p.Lineage)
	case current != nil && current.Serial != p.Serial:
		return fmt.Sprintf("the state changed since the plan was made (serial %d, the plan was made at serial %d)", current.Serial, p.Serial)
	}
	return ""
}
