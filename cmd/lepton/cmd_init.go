package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/leptonml/lepton/examples"
	"github.com/leptonml/lepton/internal/backend"
	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
)

// templates are the example projects bundled in the binary.
var templates = examples.Templates

const initHelp = `
Usage: lepton init [options]

  Prepares the working directory: creates .lepton/ (artifacts, dataset
  reports, run directories, logs) and checks the backend. With -template, or
  in a directory with no configuration, writes a runnable starter project;
  existing files are never overwritten.

  A remote backend (s3, gcs, azurerm, pg) is set up here: its settings are
  the backend block's, with -backend-config values merged over them, and are
  recorded in .lepton/backend.json (mode 0600; credentials stay in the
  environment) for later commands. When the backend changed and the old one
  holds a state, -migrate-state copies it to the new one (after asking,
  unless -force-copy), and -reconfigure uses the new one without copying.

Templates:
%s
Examples:
  lepton init
  lepton init -template quickstart && lepton apply
  lepton init -backend-config bucket=ml-state -backend-config region=eu-west-1
  lepton init -backend-config=backend.hcl -migrate-state
`

func templateNames() []string {
	entries, _ := templates.ReadDir(".")
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

func cmdInit(m *meta, args []string) int {
	var list strings.Builder
	for _, n := range templateNames() {
		fmt.Fprintf(&list, "  %s\n", n)
	}
	fsf := m.flags("init", fmt.Sprintf(initHelp, list.String()))
	tmpl := fsf.String("template", "", "Write the starter project NAME into the working directory.")
	var bo backendOpts
	bo.register(fsf)
	if code, ok := parse(fsf, args); !ok {
		return code
	}
	if err := os.MkdirAll(m.path(".lepton"), 0o755); err != nil {
		return m.errorf("creating .lepton: %v", err)
	}
	existing, err := lang.ConfigFiles(m.dir)
	if err != nil {
		return m.errorf("%v", err)
	}
	name := *tmpl
	if name == "" && len(existing) == 0 {
		name = "quickstart"
	}
	if name != "" {
		root := name
		if _, err := fs.Stat(templates, root); err != nil {
			return m.errorf("unknown template %q: choose one of %s", name, strings.Join(templateNames(), ", "))
		}
		written := 0
		err := fs.WalkDir(templates, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel := strings.TrimPrefix(p, root+"/")
			dst := m.path(filepath.FromSlash(rel))
			if _, err := os.Stat(dst); err == nil {
				fmt.Fprintf(m.stdout, "Kept existing %s\n", rel)
				return nil
			}
			b, err := templates.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			written++
			fmt.Fprintf(m.stdout, "Wrote %s\n", rel)
			return os.WriteFile(dst, b, 0o644)
		})
		if err != nil {
			return m.errorf("writing the %s template: %v", name, err)
		}
		fmt.Fprintf(m.stdout, "\nWrote the %q starter project (%d files).\n", name, written)
	}
	cfg, _ := lang.Load(m.dir)
	if !m.initBackend(cfg, bo) {
		return 1
	}
	fmt.Fprintf(m.stdout, "\n%slepton has been successfully initialized!%s\n\nRun \"lepton plan\" to see what lepton would do, then \"lepton apply\".\n", m.green(), m.reset())
	return 0
}

// backendOpts are init's backend flags.
type backendOpts struct {
	configs     []string
	migrate     bool
	forceCopy   bool
	reconfigure bool
	input       bool
	lock        lockFlags
}

func (o *backendOpts) register(fs *flag.FlagSet) {
	fs.Func("backend-config", "A backend setting KEY=VALUE, or an HCL file of key = value lines, merged over the backend block (repeatable).", func(s string) error {
		o.configs = append(o.configs, s)
		return nil
	})
	fs.BoolVar(&o.migrate, "migrate-state", false, "Copy the state from the previous backend to the new one.")
	fs.BoolVar(&o.forceCopy, "force-copy", false, "Copy the state without asking (implies -migrate-state), overwriting a state the new backend holds.")
	fs.BoolVar(&o.reconfigure, "reconfigure", false, "Use the new backend without copying the state from the previous one.")
	fs.BoolVar(&o.input, "input", true, "Ask for confirmation on the terminal when needed.")
	o.lock.register(fs)
}

// initBackend sets up the configuration's backend: it merges
// -backend-config, checks the backend answers, migrates the state when asked
// and records the settings.
func (m *meta) initBackend(cfg *lang.Config, o backendOpts) bool {
	extra, err := backend.ParseFlags(o.configs, m.dir)
	if err != nil {
		return m.errorf("%v", err) == 0
	}
	want, err := backend.FromConfig(cfg)
	if err != nil {
		return m.errorf("%v", err) == 0
	}
	want = want.Merge(extra)
	rec, err := backend.LoadRecord(m.dir)
	if err != nil && !o.reconfigure {
		return m.errorf("%v", err) == 0
	}
	if rec != nil && len(extra) == 0 && rec.Type == want.Type && rec.Hash == want.Hash && !o.reconfigure {
		// init again with an unchanged block keeps the -backend-config
		// values given before, as Terraform does.
		want = *rec
	}
	// The backend in use until now: what init recorded, else the local one
	// (the block's own when it is local).
	prev := backend.Config{Type: "local"}
	if rec != nil {
		prev = *rec
	} else if want.Type == "local" {
		prev = want
	}
	if err := backend.CheckNoSecrets(want); err != nil {
		return m.errorf("%v", err) == 0
	}
	ctx := context.Background()
	be, err := m.openBackend(want)
	if err != nil {
		return m.errorf("%v", err) == 0
	}
	if want.Type != "local" {
		// Check now that the backend answers, rather than at the first plan.
		if _, err := be.Read(ctx); err != nil {
			return m.errorf("the %s backend at %s: %v", want.Type, be, err) == 0
		}
	}
	if !prev.Equal(want) && !o.reconfigure {
		old, err := m.openBackend(prev)
		if err != nil {
			return m.errorf("opening the previous backend: %v", err) == 0
		}
		if !m.migrate(ctx, old, be, prev, want, o) {
			return false
		}
	}
	if rec != nil || want.Type != "local" || len(extra) > 0 {
		if err := backend.SaveRecord(m.dir, want); err != nil {
			return m.errorf("recording the backend: %v", err) == 0
		}
	}
	if want.Type != "local" {
		fmt.Fprintf(m.stdout, "\nSuccessfully configured the backend %q! lepton will use it for this working directory\nuntil the backend configuration changes.\n", want.Type)
	}
	return true
}

// migrate copies the state from old to be when old holds one and -migrate-state
// (or -force-copy) allows it.
func (m *meta) migrate(ctx context.Context, old, be state.Backend, prev, want backend.Config, o backendOpts) bool {
	if o.lock.lock {
		unlock, ok := m.lock(ctx, old, o.lock, "init -migrate-state")
		if !ok {
			return false
		}
		defer unlock()
		unlock2, ok := m.lock(ctx, be, o.lock, "init -migrate-state")
		if !ok {
			return false
		}
		defer unlock2()
	}
	st, err := old.Read(ctx)
	if err != nil {
		return m.errorf("reading the state from the previous backend: %v", err) == 0
	}
	if st == nil {
		return true // nothing to move
	}
	if !o.migrate && !o.forceCopy {
		return m.errorf("Backend configuration changed: the state is in the %s backend (%s) and the configuration now uses the %s backend. Run \"lepton init -migrate-state\" to copy the state to the new backend, or \"lepton init -reconfigure\" to use the new backend without it.", prev, old, want) == 0
	}
	cur, err := be.Read(ctx)
	if err != nil {
		return m.errorf("reading the new backend's state: %v", err) == 0
	}
	if !o.forceCopy {
		q := fmt.Sprintf("Do you want to copy the existing state to the new backend?\n  The state (serial %d) in %s will be copied to %s.", st.Serial, old, be)
		if cur != nil {
			q = fmt.Sprintf("Do you want to overwrite the state in the new backend?\n  %s already holds a state (serial %d, lineage %s); the state (serial %d) in %s will replace it.", be, cur.Serial, cur.Lineage, st.Serial, old)
		}
		if !o.input {
			return m.errorf("copying the state needs a confirmation, and -input=false forbids asking: pass -force-copy to copy it") == 0
		}
		fmt.Fprintf(m.stdout, "\n%s\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ", q)
		answer, _ := m.readLine()
		if strings.TrimSpace(answer) != "yes" {
			return m.errorf("migration cancelled: the state was not copied") == 0
		}
	}
	if err := state.Write(ctx, be, st, state.WriteOptions{Force: cur != nil}); err != nil {
		return m.errorf("copying the state: %v", err) == 0
	}
	fmt.Fprintf(m.stdout, "\nSuccessfully copied the state (serial %d, %d resources) from %s to %s.\nThe previous backend still holds its copy; remove it when you no longer need it.\n", st.Serial, len(st.Resources), old, be)
	return true
}
