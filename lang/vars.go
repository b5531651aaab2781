package lang

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// AutoVarsSuffix is the extension of auto-loaded variable files.
const AutoVarsSuffix = ".auto.lepvars.hcl"

// EnvPrefix prefixes environment variables that set input variables.
const EnvPrefix = "LEPTON_VAR_"

// VarInputs are the places variable values come from, lowest precedence first:
// *.auto.lepvars.hcl files, -var-file files, LEPTON_VAR_ environment variables,
// then -var arguments (the last one wins).
type VarInputs struct {
	VarFiles []string // -var-file, in order
	Env      []string // os.Environ()-style NAME=value
	Vars     []string // -var name=value, in order
}

// rawValue is a value before conversion to the variable's type.
type rawValue struct {
	value cty.Value
	raw   *string // a string from -var or the environment, parsed per the type
	rng   hcl.Range
	from  string
}

// VariableValues resolves every declared variable. It returns the values it
// could resolve and the names of required variables that have none (the CLI
// asks for those on a terminal, or reports them).
func (c *Config) VariableValues(in VarInputs) (map[string]cty.Value, []string, map[string][]byte, hcl.Diagnostics) {
	raws := map[string]rawValue{}
	files := map[string][]byte{}
	var diags hcl.Diagnostics

	var auto []string
	if entries, err := os.ReadDir(c.Dir); err == nil {
		for _, e := range entries {
			if !e.IsDir() && strings.HasSuffix(e.Name(), AutoVarsSuffix) {
				auto = append(auto, e.Name())
			}
		}
	}
	sort.Strings(auto)
	for _, name := range auto {
		diags = append(diags, c.readVarFile(filepath.Join(c.Dir, name), name, raws, files, false)...)
	}
	for _, f := range in.VarFiles {
		p := f
		if !filepath.IsAbs(p) {
			p = filepath.Join(c.Dir, p)
		}
		diags = append(diags, c.readVarFile(p, f, raws, files, true)...)
	}
	for _, kv := range in.Env {
		if !strings.HasPrefix(kv, EnvPrefix) {
			continue
		}
		name, val, _ := strings.Cut(strings.TrimPrefix(kv, EnvPrefix), "=")
		if _, ok := c.Variables[name]; !ok {
			continue // as Terraform: unknown TF_VAR_ names are ignored
		}
		v := val
		raws[name] = rawValue{raw: &v, from: "environment variable " + EnvPrefix + name}
	}
	for _, kv := range in.Vars {
		name, val, ok := strings.Cut(kv, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid -var option", Detail: fmt.Sprintf("The -var option %q is not NAME=VALUE.", kv)})
			continue
		}
		if _, ok := c.Variables[name]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value for undeclared variable", Detail: fmt.Sprintf("A variable named %q was given with -var but is not declared in the configuration.", name)})
			continue
		}
		v := val
		raws[name] = rawValue{raw: &v, from: "-var " + name}
	}

	vals := map[string]cty.Value{}
	var missing []string
	for _, name := range sortedVarNames(c.Variables) {
		decl := c.Variables[name]
		rv, ok := raws[name]
		if !ok {
			if decl.Required() {
				missing = append(missing, name)
				continue
			}
			vals[name] = decl.Default
			continue
		}
		v, d := c.ConvertVariable(decl, rv.value, rv.raw, rv.from, rv.rng)
		diags = append(diags, d...)
		if !d.HasErrors() {
			vals[name] = v
		}
	}
	return vals, missing, files, diags
}

// ConvertVariable converts a value (or a raw string, for -var, the environment
// and prompts) to the variable's type.
func (c *Config) ConvertVariable(decl *Variable, v cty.Value, raw *string, from string, rng hcl.Range) (cty.Value, hcl.Diagnostics) {
	var subj *hcl.Range
	if rng.Filename != "" {
		subj = rng.Ptr()
	}
	if raw != nil {
		if decl.Type.IsPrimitiveType() || decl.Type == cty.DynamicPseudoType {
			v = cty.StringVal(*raw)
		} else {
			expr, d := hclsyntax.ParseExpression([]byte(*raw), from, hcl.InitialPos)
			if d.HasErrors() {
				return cty.NilVal, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid value for variable " + decl.Name, Detail: fmt.Sprintf("The value from %s is not a valid expression: %s", from, d[0].Detail)}}
			}
			var d2 hcl.Diagnostics
			v, d2 = expr.Value(nil)
			if d2.HasErrors() {
				return cty.NilVal, d2
			}
		}
	}
	if v.IsNull() && !decl.Nullable {
		return cty.NilVal, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Required variable set to null", Detail: fmt.Sprintf("Variable %q does not accept null (from %s).", decl.Name, from), Subject: subj}}
	}
	conv, err := convert.Convert(v, decl.Type)
	if err != nil {
		return cty.NilVal, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid value for variable " + decl.Name,
			Detail:   fmt.Sprintf("The value from %s is not compatible with the variable's type %s: %s.", from, decl.Type.FriendlyName(), err),
			Subject:  subj,
		}}
	}
	return conv, nil
}

func (c *Config) readVarFile(path, shown string, raws map[string]rawValue, files map[string][]byte, explicit bool) hcl.Diagnostics {
	src, err := os.ReadFile(path)
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read variables file", Detail: fmt.Sprintf("%s: %s", shown, err)}}
	}
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.HasSuffix(path, ".json") {
		f, diags = hcljson.Parse(src, shown)
	} else {
		f, diags = hclsyntax.ParseConfig(src, shown, hcl.InitialPos)
	}
	files[shown] = src
	if diags.HasErrors() {
		return diags
	}
	attrs, d := f.Body.JustAttributes()
	diags = append(diags, d...)
	for name, a := range attrs {
		if _, ok := c.Variables[name]; !ok {
			sev := hcl.DiagWarning
			if explicit {
				sev = hcl.DiagError
			}
			diags = append(diags, &hcl.Diagnostic{Severity: sev, Summary: "Value for undeclared variable", Detail: fmt.Sprintf("The file sets %q, which is not declared in the configuration.", name), Subject: a.NameRange.Ptr()})
			continue
		}
		v, d := a.Expr.Value(nil)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		raws[name] = rawValue{value: v, rng: a.Expr.Range(), from: shown}
	}
	return diags
}

func sortedVarNames(m map[string]*Variable) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// SortedVariables returns the declared variables by name.
func (c *Config) SortedVariables() []*Variable {
	out := make([]*Variable, 0, len(c.Variables))
	for _, n := range sortedVarNames(c.Variables) {
		out = append(out, c.Variables[n])
	}
	return out
}

// CheckVariables runs every validation block and marks sensitive values.
func (c *Config) CheckVariables(vals map[string]cty.Value) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	s := NewScope(c, nil)
	out := make(map[string]cty.Value, len(vals))
	for _, name := range sortedVarNames(c.Variables) {
		decl := c.Variables[name]
		v, ok := vals[name]
		if !ok {
			continue
		}
		for _, val := range decl.Validations {
			ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{name: v})}, Functions: s.funcs}
			res, d := val.Condition.Value(ctx)
			if d.HasErrors() {
				diags = append(diags, d...)
				continue
			}
			res, _ = res.Unmark()
			if !res.IsKnown() {
				continue
			}
			if res.IsNull() || res.Type() != cty.Bool {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid validation condition", Detail: "The condition must be true or false.", Subject: val.Condition.Range().Ptr()})
				continue
			}
			if res.True() {
				continue
			}
			msg := "The value is not valid."
			if m, d := val.ErrorMessage.Value(ctx); !d.HasErrors() {
				if m, _ = m.Unmark(); m.IsKnown() && !m.IsNull() && m.Type() == cty.String {
					msg = m.AsString()
				}
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid value for variable",
				Detail:   fmt.Sprintf("%s\n\nThis was checked by the validation rule at %s.", msg, val.DeclRange),
				Subject:  decl.DeclRange.Ptr(),
			})
		}
		if decl.Sensitive {
			v = v.Mark(Sensitive)
		}
		out[name] = v
	}
	return out, diags
}
