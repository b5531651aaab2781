package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/version"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

func cmdVersion(m *meta, args []string) int {
	fs := m.flags("version", "Usage: lepton version [-json]\n\n  Prints lepton's version, the Go version it was built with and the platform.\n\nExample:\n  lepton version -json\n")
	asJSON := fs.Bool("json", false, "Print as JSON.")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	platform := runtime.GOOS + "_" + runtime.GOARCH
	if *asJSON {
		b, _ := json.MarshalIndent(map[string]string{"lepton_version": version.Version, "go_version": runtime.Version(), "platform": platform}, "", "  ")
		fmt.Fprintln(m.stdout, string(b))
		return 0
	}
	fmt.Fprintf(m.stdout, "lepton v%s\non %s\nbuilt with %s\n", strings.TrimPrefix(version.Version, "v"), platform, runtime.Version())
	return 0
}

const showHelp = `
Usage: lepton show [options] [PLANFILE | ADDR]

  Shows a saved plan, one resource (with what its kind can tell: a dataset's
  processing report, a training's metrics), or the whole state. builtin.NAME
  shows a built-in dataset's column names (what label and features name),
  classes and rows, before anything is applied.

Examples:
  lepton show                    # the state
  lepton show -json              # the state, in Terraform's JSON state shape
  lepton show lepton.plan        # a saved plan
  lepton show -markdown lepton.plan
  lepton show dataset.digits
  lepton show builtin.iris       # a built-in dataset's columns and classes
  lepton show -png curves.png -confusion confusion.png training.digits
`

func cmdShow(m *meta, args []string) int {
	fs := m.flags("show", showHelp)
	asJSON := fs.Bool("json", false, "Print as JSON.")
	asMD := fs.Bool("markdown", false, "Print a plan as Markdown.")
	var charts chartFlags
	charts.register(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return m.errorf("show takes at most one argument")
	}
	if fs.NArg() == 1 {
		arg := fs.Arg(0)
		if _, err := os.Stat(m.path(arg)); err == nil {
			b, err := os.ReadFile(m.path(arg))
			if err != nil {
				return m.errorf("%v", err)
			}
			if b, err = m.openPlan(b); err != nil {
				return m.errorf("reading the plan file %s: %v", arg, err)
			}
			plan, err := planner.DecodePlan(b)
			if err != nil {
				return m.errorf("%s: %v", arg, err)
			}
			cfg, _ := lang.Load(m.dir)
			switch {
			case *asJSON:
				if err := planner.RenderJSON(m.stdout, plan, cfg, version.Version); err != nil {
					return m.errorf("%v", err)
				}
			case *asMD:
				planner.RenderMarkdown(m.stdout, plan)
			default:
				planner.RenderHuman(m.stdout, plan, m.colors())
			}
			return 0
		}
		if strings.HasPrefix(arg, builtinPrefix) {
			return showBuiltin(m, arg)
		}
		if _, err := lang.ParseInstance(arg); err != nil {
			return m.errorf("%q is neither a plan file nor a resource address: %v", arg, err)
		}
		if charts.set() {
			return showCharts(m, arg, charts)
		}
		return showResource(m, arg)
	}
	_, st, ok := m.readState()
	if !ok {
		return 1
	}
	if *asJSON {
		return stateJSON(m, st)
	}
	if st == nil || (len(st.Resources) == 0 && len(st.Outputs) == 0) {
		fmt.Fprintln(m.stdout, "The state is empty: nothing has been applied here yet.")
		return 0
	}
	for i, r := range st.Resources {
		if i > 0 {
			fmt.Fprintln(m.stdout)
		}
		text, err := planner.DescribeInstance(r)
		if err != nil {
			return m.errorf("%v", err)
		}
		fmt.Fprint(m.stdout, text)
	}
	printOutputs(m, st)
	return 0
}

func showResource(m *meta, addr string) int {
	_, st, ok := m.readState()
	if !ok {
		return 1
	}
	if st == nil {
		return m.errorf("no state: %s has not been applied", addr)
	}
	r := st.Find(addr)
	if r == nil {
		return m.errorf("no resource %s in state", addr)
	}
	text, err := planner.DescribeInstance(r)
	if err != nil {
		return m.errorf("%v", err)
	}
	fmt.Fprint(m.stdout, text)
	if d, ok := m.resource(r.Kind, r.Provider).(describer); ok {
		extra, err := d.Describe(context.Background(), m.view(r))
		if err != nil {
			return m.errorf("%v", err)
		}
		fmt.Fprint(m.stdout, extra)
	}
	return 0
}

const outputHelp = `
Usage: lepton output [options] [NAME]

  Prints output values from the state. Sensitive outputs show as <sensitive>
  unless named.

Examples:
  lepton output
  lepton output -json
  lepton output -raw test_accuracy
`

func cmdOutput(m *meta, args []string) int {
	fs := m.flags("output", outputHelp)
	asJSON := fs.Bool("json", false, "Print as JSON: {NAME: {value, type, sensitive}}, or the value alone with NAME.")
	raw := fs.Bool("raw", false, "Print a string, number or bool output without quotes (needs NAME).")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return m.errorf("output takes at most one name")
	}
	_, st, ok := m.readState()
	if !ok {
		return 1
	}
	outs := map[string]json.RawMessage{}
	if st != nil {
		for n, o := range st.Outputs {
			outs[n] = o.Value
		}
	}
	if fs.NArg() == 1 {
		name := fs.Arg(0)
		var o state.Output
		found := false
		if st != nil {
			o, found = st.Outputs[name]
		}
		if !found {
			return m.errorf("output %q not found: apply the configuration, or check the name", name)
		}
		switch {
		case *raw:
			ty, _ := ctyjson.UnmarshalType(o.Type)
			if !ty.IsPrimitiveType() {
				return m.errorf("-raw only prints strings, numbers and bools; %s is %s (use -json)", name, ty.FriendlyName())
			}
			var s any
			json.Unmarshal(o.Value, &s)
			fmt.Fprint(m.stdout, s)
		case *asJSON:
			fmt.Fprintln(m.stdout, string(o.Value))
		default:
			fmt.Fprintln(m.stdout, outputText(o, true))
		}
		return 0
	}
	if *raw {
		return m.errorf("-raw needs an output name")
	}
	names := make([]string, 0, len(outs))
	for n := range outs {
		names = append(names, n)
	}
	sort.Strings(names)
	if *asJSON {
		type jo struct {
			Sensitive bool            `json:"sensitive"`
			Type      json.RawMessage `json:"type"`
			Value     json.RawMessage `json:"value,omitempty"`
		}
		res := map[string]jo{}
		for _, n := range names {
			o := st.Outputs[n]
			j := jo{Sensitive: o.Sensitive, Type: o.Type, Value: o.Value}
			if o.Sensitive {
				j.Value = json.RawMessage(`"<sensitive>"`)
			}
			res[n] = j
		}
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(m.stdout, string(b))
		return 0
	}
	for _, n := range names {
		fmt.Fprintf(m.stdout, "%s = %s\n", n, outputText(st.Outputs[n], false))
	}
	return 0
}

func cmdGraph(m *meta, args []string) int {
	fs := m.flags("graph", "Usage: lepton graph\n\n  Prints the configuration's dependency graph in Graphviz DOT.\n\nExample:\n  lepton graph | dot -Tsvg > graph.svg\n")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	cfg, ok := m.loadConfig()
	if !ok {
		return 1
	}
	dot, d := m.newPlanner(cfg, nil).Graph()
	if m.diags(d) {
		return 1
	}
	fmt.Fprint(m.stdout, dot)
	return 0
}

const validateHelp = `
Usage: lepton validate [-json]

  Parses and type-checks the configuration. It reads no state, calls no
  provider and uses no network.

Examples:
  lepton validate
  lepton validate -json
`

func cmdValidate(m *meta, args []string) int {
	fs := m.flags("validate", validateHelp)
	asJSON := fs.Bool("json", false, "Print the result as JSON.")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	cfg, d := lang.Load(m.dir)
	if cfg != nil && !d.HasErrors() {
		d = append(d, m.newPlanner(cfg, nil).Validate()...)
	}
	if *asJSON {
		type pos struct {
			Line   int `json:"line"`
			Column int `json:"column"`
			Byte   int `json:"byte"`
		}
		type rng struct {
			Filename string `json:"filename"`
			Start    pos    `json:"start"`
			End      pos    `json:"end"`
		}
		type diag struct {
			Severity string `json:"severity"`
			Summary  string `json:"summary"`
			Detail   string `json:"detail,omitempty"`
			Range    *rng   `json:"range,omitempty"`
		}
		out := struct {
			FormatVersion string `json:"format_version"`
			Valid         bool   `json:"valid"`
			ErrorCount    int    `json:"error_count"`
			WarningCount  int    `json:"warning_count"`
			Diagnostics   []diag `json:"diagnostics"`
		}{FormatVersion: "1.0", Diagnostics: []diag{}}
		for _, x := range d {
			dg := diag{Severity: "error", Summary: x.Summary, Detail: x.Detail}
			if x.Severity == hcl.DiagWarning {
				dg.Severity = "warning"
				out.WarningCount++
			} else {
				out.ErrorCount++
			}
			if x.Subject != nil {
				s := x.Subject
				dg.Range = &rng{Filename: s.Filename, Start: pos{s.Start.Line, s.Start.Column, s.Start.Byte}, End: pos{s.End.Line, s.End.Column, s.End.Byte}}
			}
			out.Diagnostics = append(out.Diagnostics, dg)
		}
		out.Valid = out.ErrorCount == 0
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(m.stdout, string(b))
		if !out.Valid {
			return 1
		}
		return 0
	}
	if cfg != nil {
		for n, f := range cfg.Files {
			m.files[n] = f
		}
	}
	if m.diags(d) {
		return 1
	}
	fmt.Fprintf(m.stdout, "%sSuccess!%s The configuration is valid.\n", m.green(), m.reset())
	return 0
}

const fmtHelp = `
Usage: lepton fmt [options] [PATH...]

  Rewrites *.lep.hcl and *.lepvars.hcl files in the canonical format. With no
  PATH, the working directory.

Examples:
  lepton fmt
  lepton fmt -check -recursive     # exit 3 when a file needs formatting (CI)
  lepton fmt -diff main.lep.hcl
`

func cmdFmt(m *meta, args []string) int {
	fs := m.flags("fmt", fmtHelp)
	check := fs.Bool("check", false, "Only check; exit 3 if a file is not formatted.")
	diff := fs.Bool("diff", false, "Print the changes as a diff.")
	recursive := fs.Bool("recursive", false, "Also process subdirectories.")
	write := fs.Bool("write", true, "Write the formatted result back (-write=false prints the file names only).")
	list := fs.Bool("list", true, "List files whose formatting differs.")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{m.dir}
	}
	isConfig := func(name string) bool {
		return strings.HasSuffix(name, lang.FileSuffix) || strings.HasSuffix(name, ".lepvars.hcl")
	}
	var files []string
	for _, p := range paths {
		if !filepath.IsAbs(p) && len(fs.Args()) > 0 {
			p = m.path(p)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return m.errorf("%v", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		// A directory that cannot be read is an error, not a silently
		// skipped part of the tree: -check must not pass on what it missed.
		err = filepath.WalkDir(p, func(path string, d iofs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && (!*recursive || strings.HasPrefix(d.Name(), ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if isConfig(d.Name()) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return m.errorf("%v", err)
		}
	}
	sort.Strings(files)
	unformatted := 0
	var diags hcl.Diagnostics
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return m.errorf("%v", err)
		}
		_, d := hclwrite.ParseConfig(src, f, hcl.InitialPos)
		if d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		out := hclwrite.Format(src)
		if bytes.Equal(src, out) {
			continue
		}
		unformatted++
		rel := f
		if r, err := filepath.Rel(m.dir, f); err == nil && !strings.HasPrefix(r, "..") {
			rel = r
		}
		if *list {
			fmt.Fprintln(m.stdout, rel)
		}
		if *diff {
			fmt.Fprint(m.stdout, lineDiff(rel, string(src), string(out)))
		}
		if !*check && *write {
			fi, _ := os.Stat(f)
			if err := os.WriteFile(f, out, fi.Mode().Perm()); err != nil {
				return m.errorf("%v", err)
			}
		}
	}
	if m.diags(diags) {
		return 1
	}
	if *check && unformatted > 0 {
		return 3
	}
	return 0
}

// lineDiff is a small unified-style diff of changed lines, enough to see what
// fmt would do.
func lineDiff(name, a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var s strings.Builder
	fmt.Fprintf(&s, "--- old/%s\n+++ new/%s\n", name, name)
	n := len(al)
	if len(bl) > n {
		n = len(bl)
	}
	for i := 0; i < n; i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			if i < len(al) {
				fmt.Fprintf(&s, "-%s\n", x)
			}
			if i < len(bl) {
				fmt.Fprintf(&s, "+%s\n", y)
			}
		}
	}
	return s.String()
}
