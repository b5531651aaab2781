package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/ui"
	"github.com/leptonml/lepton/internal/version"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
	"github.com/zclconf/go-cty/cty"
)

const planHelp = `
Usage: lepton plan [options]

  Refreshes what really exists, compares it with the configuration and prints
  the changes that apply would make. Nothing is changed.

Examples:
  lepton plan
  lepton plan -out=lepton.plan          # save it; apply it later with "lepton apply lepton.plan"
  lepton plan -target=dataset.digits    # only this resource and what it depends on
  lepton plan -json | conftest test -   # policy checks written for Terraform plans
  lepton plan -policy=policies          # the same checks in process: deny fails (exit 1), warn warns
  lepton plan -markdown > plan.md       # a pull-request comment
  lepton plan -markdown -charts-dir charts -charts-url "$ARTIFACTS_URL" > plan.md
  lepton plan -detailed-exitcode        # exit 2 when there are changes
`

const applyHelp = `
Usage: lepton apply [options] [PLANFILE]

  Plans, shows the plan, asks for confirmation ("yes"), then makes the
  changes. With a saved PLANFILE it checks that the plan is not stale and
  applies it without asking again. State is written as each resource finishes.
  The first Ctrl-C stops starting new work and waits for what runs; the second
  stops at once. Either way, what finished is kept in state.

Examples:
  lepton apply
  lepton apply -auto-approve -var 'epochs=5'
  lepton apply lepton.plan
  lepton apply -replace=training.digits   # retrain even though nothing changed
`

const destroyHelp = `
Usage: lepton destroy [options]

  Plans and carries out the removal of everything in state (or, with -target,
  of those resources and everything that depends on them).

Examples:
  lepton destroy
  lepton destroy -auto-approve -target=endpoint.digits
`

// opFlags are the flags shared by plan, apply and destroy.
type opFlags struct {
	vars        varFlags
	lock        lockFlags
	targets     targetsFlag
	replace     targetsFlag
	destroy     bool
	refresh     bool
	refreshOnly bool
	parallelism int
	input       bool
	json        bool
	markdown    bool
	chartsDir   string
	chartsURL   string
}

func (o *opFlags) register(fs *flag.FlagSet, withDestroy bool) {
	o.vars.register(fs)
	o.lock.register(fs)
	fs.Func("target", "Limit the operation to this resource and its dependencies (repeatable).", o.targets.set)
	fs.Func("replace", "Force replacement of this resource instance (repeatable).", o.replace.set)
	if withDestroy {
		fs.BoolVar(&o.destroy, "destroy", false, "Plan the destruction of everything in state.")
	}
	fs.BoolVar(&o.refresh, "refresh", true, "Read the real objects before planning (-refresh=false skips it).")
	fs.BoolVar(&o.refreshOnly, "refresh-only", false, "Only update the state to match the real objects.")
	fs.IntVar(&o.parallelism, "parallelism", 10, "How many operations run at once.")
	fs.BoolVar(&o.input, "input", true, "Ask for missing variables and confirmation on a terminal (-input=false never asks).")
	fs.BoolVar(&o.json, "json", false, "Print the plan in Terraform's JSON plan format (1.2).")
	fs.BoolVar(&o.markdown, "markdown", false, "Print the plan as Markdown for a pull-request comment.")
	fs.StringVar(&o.chartsDir, "charts-dir", "", "With -markdown: write each training's curves and confusion matrix as PNG files into this directory, and embed them.")
	fs.StringVar(&o.chartsURL, "charts-url", "", "With -charts-dir: the URL prefix the images are served from (the CI's artifact URL); default the directory itself.")
}

func (o *opFlags) options() planner.Options {
	mode := planner.NormalMode
	switch {
	case o.destroy:
		mode = planner.DestroyMode
	case o.refreshOnly:
		mode = planner.RefreshOnlyMode
	}
	return planner.Options{Mode: mode, Targets: o.targets.list, Replace: o.replace.list, Refresh: o.refresh || o.refreshOnly, Parallelism: o.parallelism}
}

func cmdPlan(m *meta, args []string) int {
	var o opFlags
	fs := m.flags("plan", planHelp)
	o.register(fs, true)
	out := fs.String("out", "", "Save the plan to this file, to apply it later exactly.")
	detailed := fs.Bool("detailed-exitcode", false, "Exit 0 with no changes, 2 with changes, 1 on error.")
	var pol policyFlags
	pol.register(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return m.errorf("plan takes no arguments (got %q); did you mean -out=%s?", fs.Arg(0), fs.Arg(0))
	}
	if o.destroy && o.refreshOnly {
		return m.errorf("-destroy and -refresh-only cannot be used together")
	}
	if (o.chartsDir != "" && !o.markdown) || (o.chartsURL != "" && o.chartsDir == "") {
		return m.errorf("-charts-dir goes with -markdown, and -charts-url with -charts-dir")
	}
	engine, ok := pol.load(m)
	if !ok {
		return 1
	}
	ctx := context.Background()
	op, ok := m.prepare(ctx, &o, "plan")
	if !ok {
		return 1
	}
	defer op.unlock()
	plan, d := op.planner.Plan(ctx, op.prior, o.options())
	if m.diags(d) {
		return 1
	}
	plan.ConfigHash = planner.ConfigHash(op.cfg, op.vars)
	if !m.render(plan, op, o) {
		return 1
	}
	if engine != nil {
		// Policy messages follow a human plan; they go to stderr when
		// stdout carries a JSON or Markdown document. A failing plan is
		// not saved, so it cannot be applied.
		w := m.stdout
		if o.json || o.markdown {
			w = m.stderr
		}
		if !m.checkPolicies(ctx, engine, pol, plan, op.cfg, w) {
			return 1
		}
	}
	if *out != "" {
		b, err := plan.Encode(version.Version)
		if err == nil {
			b, err = m.sealPlan(b)
		}
		if err != nil {
			return m.errorf("saving the plan: %v", err)
		}
		if err := os.WriteFile(m.path(*out), b, 0o600); err != nil {
			return m.errorf("saving the plan: %v", err)
		}
		if !o.json && !o.markdown {
			fmt.Fprintf(m.stdout, "\nSaved the plan to: %s\n\nTo perform exactly these actions, run:\n    lepton apply %q\n", *out, *out)
		}
	}
	if *detailed && plan.HasChanges() {
		return 2
	}
	return 0
}

func (m *meta) render(plan *planner.Plan, op *operation, o opFlags) bool {
	switch {
	case o.json:
		if err := planner.RenderJSON(m.stdout, plan, op.cfg, version.Version); err != nil {
			m.errorf("rendering the plan: %v", err)
			return false
		}
	case o.markdown:
		planner.RenderMarkdown(m.stdout, plan)
		if o.chartsDir != "" {
			if err := markdownCharts(m, plan, o.chartsDir, o.chartsURL); err != nil {
				m.errorf("drawing the training charts: %v", err)
				return false
			}
		}
	default:
		planner.RenderHuman(m.stdout, plan, m.colors())
	}
	return true
}

// operation is a loaded, locked working directory ready to plan.
type operation struct {
	cfg     *lang.Config
	vars    map[string]cty.Value
	be      state.Backend
	prior   *state.State
	planner *planner.Planner
	unlock  func()
}

func (m *meta) prepare(ctx context.Context, o *opFlags, opName string) (*operation, bool) {
	// The default state file is parsed while the configuration loads; the
	// parse is used only if the backend is that file and it is unchanged
	// once locked.
	pf := state.PrefetchLocal(m.path(defaultStatePath))
	cfg, ok := m.loadConfig()
	if !ok {
		return nil, false
	}
	vars, ok := m.variables(cfg, o.vars, o.input)
	if !ok {
		return nil, false
	}
	be, err := m.backend(cfg)
	if err != nil {
		m.errorf("%v", err)
		return nil, false
	}
	unlock, ok := m.lock(ctx, be, o.lock, opName)
	if !ok {
		return nil, false
	}
	prior, err := state.ReadWith(ctx, be, pf)
	if err != nil {
		unlock()
		m.errorf("%v", err)
		return nil, false
	}
	return &operation{cfg: cfg, vars: vars, be: be, prior: prior, planner: m.newPlanner(cfg, vars), unlock: unlock}, true
}

func cmdApply(m *meta, args []string) int {
	var o opFlags
	fs := m.flags("apply", applyHelp)
	o.register(fs, true)
	auto := fs.Bool("auto-approve", false, "Skip the confirmation prompt.")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return m.errorf("apply takes at most one argument, a saved plan file")
	}
	if fs.NArg() == 1 {
		return m.applySaved(&o, fs.Arg(0))
	}
	return m.planAndApply(&o, *auto, "apply")
}

func cmdDestroy(m *meta, args []string) int {
	var o opFlags
	fs := m.flags("destroy", destroyHelp)
	o.register(fs, false)
	auto := fs.Bool("auto-approve", false, "Skip the confirmation prompt.")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return m.errorf("destroy takes no arguments")
	}
	o.destroy = true
	return m.planAndApply(&o, *auto, "destroy")
}

func (m *meta) planAndApply(o *opFlags, auto bool, opName string) int {
	if !auto && !o.input {
		return m.errorf("-auto-approve is required with -input=false: there is no one to ask")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	op, ok := m.prepare(ctx, o, opName)
	if !ok {
		return 1
	}
	defer op.unlock()
	plan, d := op.planner.Plan(ctx, op.prior, o.options())
	if m.diags(d) {
		return 1
	}
	m.render(plan, op, *o)
	if !plan.HasChanges() {
		m.afterApply(opName, nil, planner.ApplyResult{}, nil, op.prior)
		if plan.Mode == planner.DestroyMode {
			fmt.Fprintf(m.stdout, "\nDestroy complete! Resources: 0 destroyed.\n")
		}
		return 0
	}
	if !auto {
		q := "Do you want to perform these actions?"
		if plan.Mode == planner.DestroyMode {
			q = "Do you really want to destroy all resources?"
		}
		fmt.Fprintf(m.stdout, "\n%s\n  lepton will perform the actions described above.\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ", q)
		answer, _ := m.readLine()
		if strings.TrimSpace(answer) != "yes" {
			fmt.Fprintln(m.stdout, "\nApply cancelled.")
			return 1
		}
	}
	return m.execute(ctx, cancel, op, plan, o.parallelism)
}

func (m *meta) applySaved(o *opFlags, file string) int {
	if len(o.vars.vars) > 0 || len(o.vars.files) > 0 {
		// The plan carries the values it was made with; others would be ignored.
		return m.errorf("can't set variables when applying a saved plan: the plan %s holds the values it was made with; make a new plan to change them", file)
	}
	if len(o.targets.list) > 0 || len(o.replace.list) > 0 || o.destroy || o.refreshOnly {
		return m.errorf("-target, -replace, -destroy and -refresh-only belong to the plan: make a new plan with them instead of applying %s", file)
	}
	b, err := os.ReadFile(m.path(file))
	if err != nil {
		return m.errorf("reading the plan file: %v", err)
	}
	if b, err = m.openPlan(b); err != nil {
		return m.errorf("reading the plan file %s: %v", file, err)
	}
	plan, err := planner.DecodePlan(b)
	if err != nil {
		return m.errorf("%s: %v", file, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg, ok := m.loadConfig()
	if !ok {
		return 1
	}
	be, err := m.backend(cfg)
	if err != nil {
		return m.errorf("%v", err)
	}
	unlock, ok := m.lock(ctx, be, o.lock, "apply")
	if !ok {
		return 1
	}
	defer unlock()
	current, err := be.Read(ctx)
	if err != nil {
		return m.errorf("%v", err)
	}
	if why := plan.Stale(current, planner.ConfigHash(cfg, plan.Variables)); why != "" {
		return m.errorf("Saved plan is stale: %s.\n\nThe plan no longer describes what apply would do. Run \"lepton plan\" again to make a new one.", why)
	}
	op := &operation{cfg: cfg, vars: plan.Variables, be: be, prior: current, planner: m.newPlanner(cfg, plan.Variables), unlock: unlock}
	return m.execute(ctx, cancel, op, plan, o.parallelism)
}

// execute applies a plan with Ctrl-C handling and prints the summary.
func (m *meta) execute(ctx context.Context, cancel context.CancelFunc, op *operation, plan *planner.Plan, parallelism int) int {
	st := op.prior
	if st == nil {
		st = state.New(version.Version)
	} else {
		st = st.Clone()
	}
	st.LeptonVersion = version.Version
	pers := state.NewPersister(state.Sink(context.WithoutCancel(ctx), op.be), st)
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		n := 0
		for range sigs {
			n++
			if n == 1 {
				fmt.Fprintln(m.stderr, "\nInterrupt received.\nlepton starts no new work and waits for what is running; its state is kept.\nPress Ctrl-C again to stop at once (what finished is still saved).")
				close(stop)
				continue
			}
			fmt.Fprintln(m.stderr, "\nTwo interrupts received. Stopping now.")
			cancel()
			return
		}
	}()
	fmt.Fprintln(m.stdout)
	hooks := ui.NewRecorder(&printHooks{m: m})
	if isTTY(m.stderr) {
		op.planner.Env.Progress, op.planner.Env.ProgressTTY = m.stderr, true
	} else {
		op.planner.Env.Progress = m.stdout
	}
	res, d := op.planner.Apply(ctx, plan, pers, planner.ApplyOptions{Parallelism: parallelism, Stop: stop, Hooks: hooks})
	if err := pers.Close(); err != nil {
		m.errorf("writing state: %v", err)
		return 1
	}
	var final *state.State
	pers.View(func(s *state.State) { final = s.Clone() })
	m.afterApply(map[bool]string{true: "destroy", false: "apply"}[plan.Mode == planner.DestroyMode], hooks, res, d, final)
	failed := m.diags(d)
	if res.Interrupted {
		fmt.Fprintln(m.stderr, "\nApply interrupted: what finished is recorded in state; run apply again to continue.")
		return 1
	}
	if failed {
		return 1
	}
	if plan.Mode == planner.DestroyMode {
		fmt.Fprintf(m.stdout, "\n%sDestroy complete! Resources: %d destroyed.%s\n", m.green(), res.Destroyed, m.reset())
		return 0
	}
	fmt.Fprintf(m.stdout, "\n%sApply complete! Resources: %d added, %d changed, %d destroyed.%s\n", m.green(), res.Added, res.Changed, res.Destroyed, m.reset())
	printOutputs(m, final)
	return 0
}

func (m *meta) green() string {
	if m.color {
		return "\x1b[32;1m"
	}
	return ""
}

// printHooks prints apply progress, Terraform style.
type printHooks struct {
	m  *meta
	mu sync.Mutex
}

func (h *printHooks) line(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintln(h.m.stdout, s)
}

func (h *printHooks) Start(addr string, a planner.Action) {
	verb := map[planner.Action]string{planner.Create: "Creating...", planner.Update: "Modifying...", planner.Delete: "Destroying..."}[a]
	h.line(fmt.Sprintf("%s: %s", addr, verb))
}

func (h *printHooks) Done(addr string, a planner.Action, elapsed time.Duration, summary string) {
	verb := map[planner.Action]string{planner.Create: "Creation complete", planner.Update: "Modifications complete", planner.Delete: "Destruction complete"}[a]
	s := fmt.Sprintf("%s: %s after %s", addr, verb, elapsed.Round(time.Second))
	if summary != "" {
		s += " [" + summary + "]"
	}
	h.line(s)
}

func (h *printHooks) Failed(addr string, a planner.Action, err error) {
	h.line(fmt.Sprintf("%s: %s failed", addr, strings.ToLower(a.String())))
}

func (h *printHooks) Log(addr, line string) { h.line(addr + ": " + line) }

func printOutputs(m *meta, st *state.State) {
	if st == nil || len(st.Outputs) == 0 {
		return
	}
	names := make([]string, 0, len(st.Outputs))
	for n := range st.Outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(m.stdout, "\nOutputs:")
	fmt.Fprintln(m.stdout)
	for _, n := range names {
		fmt.Fprintf(m.stdout, "%s = %s\n", n, outputText(st.Outputs[n], false))
	}
}
