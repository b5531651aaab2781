package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	goversion "github.com/hashicorp/go-version"
	"github.com/hashicorp/hcl/v2"
	"github.com/leptonml/lepton/internal/backend"
	"github.com/leptonml/lepton/internal/crypt"
	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/version"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/local"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/term"
)

// meta is what every command shares: streams, the working directory, colour.
type meta struct {
	dir    string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	env    []string
	color  bool
	in     *bufio.Reader
	files  map[string]*hcl.File // for diagnostic snippets
	// registries are the provider sets this command configured, closed
	// when it ends.
	registries []*providers.Registry
	// views are the providers the read-only commands (show, status,
	// logs, predict) ask, configured once.
	views *providers.Registry
}

func newMeta(stdin io.Reader, stdout, stderr io.Writer, env []string) *meta {
	m := &meta{dir: ".", stdin: stdin, stdout: stdout, stderr: stderr, env: env, files: map[string]*hcl.File{}}
	m.color = isTTY(stdout) && m.getenv("NO_COLOR") == ""
	return m
}

func (m *meta) getenv(k string) string {
	for _, kv := range m.env {
		if name, v, ok := strings.Cut(kv, "="); ok && name == k {
			return v
		}
	}
	return ""
}

func isTTY(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (m *meta) colors() planner.Colors {
	if m.color {
		return planner.ANSI()
	}
	return planner.Colors{}
}

// flags makes a flag set whose -help prints the command's help text.
func (m *meta) flags(name, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	fs.Usage = func() {
		fmt.Fprint(m.stdout, strings.TrimLeft(help, "\n"))
		fmt.Fprintln(m.stdout, "\nOptions:")
		fs.SetOutput(m.stdout)
		fs.PrintDefaults()
		fs.SetOutput(m.stderr)
	}
	fs.BoolFunc("no-color", "Disable coloured output.", func(string) error { m.color = false; return nil })
	return fs
}

// parse parses flags; it returns (exit code, false) when the command should
// stop (help shown, or bad flags).
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 1, false
	}
	return 0, true
}

func (m *meta) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(m.dir, p)
}

func (m *meta) errorf(format string, args ...any) int {
	fmt.Fprintf(m.stderr, "%sError:%s %s\n", m.red(), m.reset(), fmt.Sprintf(format, args...))
	return 1
}

func (m *meta) red() string {
	if m.color {
		return "\x1b[31;1m"
	}
	return ""
}

func (m *meta) reset() string {
	if m.color {
		return "\x1b[0m"
	}
	return ""
}

// diags prints diagnostics with file, line, column and a snippet; it reports
// whether any was an error.
func (m *meta) diags(d hcl.Diagnostics) bool {
	if len(d) == 0 {
		return false
	}
	width := 0
	if f, ok := m.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		width, _, _ = term.GetSize(int(f.Fd()))
	}
	for _, diag := range d {
		writeDiag(m.stderr, m.files, uint(width), m.color, diag)
	}
	return d.HasErrors()
}

// loadConfig loads the configuration, printing diagnostics.
func (m *meta) loadConfig() (*lang.Config, bool) {
	cfg, d := lang.Load(m.dir)
	if cfg != nil {
		for n, f := range cfg.Files {
			m.files[n] = f
		}
	}
	if m.diags(d) {
		return nil, false
	}
	if lb := cfg.Lepton; lb != nil && lb.RequiredVersion != "" {
		c, err := goversion.NewConstraint(lb.RequiredVersion)
		if err != nil {
			m.diags(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid required_version", Detail: err.Error(), Subject: lb.DeclRange.Ptr()}})
			return nil, false
		}
		v, err := goversion.NewVersion(version.Version)
		if err == nil && !c.Check(v.Core()) {
			m.diags(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unsupported lepton version", Detail: fmt.Sprintf("This configuration requires lepton %s; this is lepton %s.", lb.RequiredVersion, version.Version), Subject: lb.DeclRange.Ptr()}})
			return nil, false
		}
	}
	return cfg, true
}

// varFlags collects -var and -var-file in order.
type varFlags struct {
	vars  []string
	files []string
}

func (v *varFlags) register(fs *flag.FlagSet) {
	fs.Func("var", "Set a variable: -var 'name=value' (repeatable).", func(s string) error { v.vars = append(v.vars, s); return nil })
	fs.Func("var-file", "Load variable values from a file (HCL, or JSON if it ends in .json; repeatable).", func(s string) error { v.files = append(v.files, s); return nil })
}

// variables resolves variable values, asking on a terminal for missing ones.
func (m *meta) variables(cfg *lang.Config, vf varFlags, input bool) (map[string]cty.Value, bool) {
	vals, missing, files, d := cfg.VariableValues(lang.VarInputs{VarFiles: vf.files, Env: m.env, Vars: vf.vars})
	for name, src := range files {
		if f, _ := parseForSnippet(name, src); f != nil {
			m.files[name] = f
		}
	}
	if m.diags(d) {
		return nil, false
	}
	if len(missing) > 0 {
		interactive := input && isTTY(m.stdin)
		if !interactive {
			var diags hcl.Diagnostics
			for _, name := range missing {
				decl := cfg.Variables[name]
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "No value for required variable",
					Detail:   fmt.Sprintf("The variable %q has no default and no value was given. Set it with -var '%s=...', a -var-file, a *%s file or the environment variable %s%s.", name, name, lang.AutoVarsSuffix, lang.EnvPrefix, name),
					Subject:  decl.DeclRange.Ptr(),
				})
			}
			m.diags(diags)
			return nil, false
		}
		for _, name := range missing {
			decl := cfg.Variables[name]
			fmt.Fprintf(m.stdout, "var.%s\n", name)
			if decl.Description != "" {
				fmt.Fprintf(m.stdout, "  %s\n", decl.Description)
			}
			fmt.Fprint(m.stdout, "\n  Enter a value: ")
			line, err := m.readLine()
			if err != nil {
				return nil, m.errorf("reading a value for var.%s: %v", name, err) == 0
			}
			fmt.Fprintln(m.stdout)
			v, d := cfg.ConvertVariable(decl, cty.NilVal, &line, "the prompt", hcl.Range{})
			if m.diags(d) {
				return nil, false
			}
			vals[name] = v
		}
	}
	checked, d := cfg.CheckVariables(vals)
	if m.diags(d) {
		return nil, false
	}
	return checked, true
}

func parseForSnippet(name string, src []byte) (*hcl.File, hcl.Diagnostics) {
	return &hcl.File{Bytes: src}, nil
}

func (m *meta) readLine() (string, error) {
	if m.in == nil {
		m.in = bufio.NewReader(m.stdin)
	}
	line, err := m.in.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// defaultStatePath is where the local backend keeps state unless configured.
const defaultStatePath = backend.DefaultStatePath

// backend returns the state backend the configuration names, with the
// settings lepton init recorded for it.
func (m *meta) backend(cfg *lang.Config) (state.Backend, error) {
	c, err := backend.Resolve(cfg, m.dir)
	if err != nil {
		return nil, err
	}
	return m.openBackend(c)
}

// openBackend opens c, encrypting state on the client when
// LEPTON_STATE_PASSPHRASE (or the fallback) is set.
func (m *meta) openBackend(c backend.Config) (state.Backend, error) {
	be, err := backend.Open(context.Background(), c, m.dir)
	if err != nil {
		return nil, err
	}
	if k := m.keys(); k != nil {
		be = state.Encrypted(be, k)
	}
	return be, nil
}

// keys returns the state and plan encryption keys, or nil when none is set.
func (m *meta) keys() *crypt.Keys { return crypt.FromEnv(m.getenv) }

// sealPlan encrypts a saved plan when a passphrase is set.
func (m *meta) sealPlan(b []byte) ([]byte, error) {
	if k := m.keys(); k != nil {
		return k.Seal(b, nil)
	}
	return b, nil
}

// openPlan decrypts a saved plan that was encrypted.
func (m *meta) openPlan(b []byte) ([]byte, error) {
	if !crypt.IsEnvelope(b) {
		return b, nil
	}
	return m.keys().Open(b)
}

// lockFlags are -lock and -lock-timeout.
type lockFlags struct {
	lock    bool
	timeout time.Duration
}

func (l *lockFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&l.lock, "lock", true, "Hold the state lock while the command runs.")
	fs.DurationVar(&l.timeout, "lock-timeout", 0, "How long to wait for the state lock (e.g. 30s).")
}

func (m *meta) lock(ctx context.Context, be state.Backend, lf lockFlags, op string) (func(), bool) {
	if !lf.lock {
		return func() {}, true
	}
	info, err := be.Lock(ctx, state.LockInfo{Operation: op, Version: version.Version}, lf.timeout)
	if err != nil {
		m.errorf("%v", err)
		return nil, false
	}
	return func() {
		// Not ctx: the lock is released even when the command was cancelled.
		if err := be.Unlock(context.Background(), info.ID); err != nil {
			m.errorf("releasing the state lock: %v", err)
		}
	}, true
}

// registry returns the providers available for a configuration, configured
// with its evaluated provider blocks; the command closes them when it ends.
func (m *meta) registry(ctx context.Context, blocks map[string]map[string]string, env providers.Env) (*providers.Registry, error) {
	reg := providers.NewRegistry(m.providerSet()...)
	m.registries = append(m.registries, reg)
	return reg, reg.Configure(ctx, providers.ConfigureRequest{Blocks: blocks, Env: env})
}

// providerSet is every provider lepton has, the default first.
func (m *meta) providerSet() []providers.Provider {
	return []providers.Provider{local.New()}
}

// closeProviders closes every provider the command configured.
func (m *meta) closeProviders() error {
	var errs []error
	for _, r := range m.registries {
		errs = append(errs, r.Close())
	}
	m.registries = nil
	return errors.Join(errs...)
}

func (m *meta) newPlanner(cfg *lang.Config, vars map[string]cty.Value) *planner.Planner {
	scope := lang.NewScope(cfg, vars)
	provs := map[string]map[string]string{}
	if vars != nil {
		for _, p := range cfg.SortedProviders() {
			refs, _ := cfg.ProviderRefs(p)
			v, d := scope.DecodeProvider(p, scope.EvalContext(refs, func(lang.Reference) cty.Value { return cty.DynamicVal }, nil))
			if !m.diags(d) {
				provs[p.Addr()] = v
			}
		}
	}
	env := m.providerEnv()
	env.Providers = provs
	reg, err := m.registry(context.Background(), provs, env)
	if err != nil {
		// The resource calls report what is wrong with the provider again,
		// with the resource they are for.
		m.errorf("%v", err)
	}
	return &planner.Planner{
		Config:    cfg,
		Scope:     scope,
		Providers: reg,
		Env:       env,
	}
}

// targetsFlag collects repeatable -target/-replace addresses.
type targetsFlag struct{ list []lang.Target }

func (t *targetsFlag) set(s string) error {
	tg, err := lang.ParseTarget(s)
	if err != nil {
		return err
	}
	t.list = append(t.list, tg)
	return nil
}
