package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/leptonml/lepton/examples"
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

Templates:
%s
Examples:
  lepton init
  lepton init -template quickstart && lepton apply
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
	if _, err := m.backend(cfg); err != nil {
		return m.errorf("%v", err)
	}
	fmt.Fprintf(m.stdout, "\n%slepton has been successfully initialized!%s\n\nRun \"lepton plan\" to see what lepton would do, then \"lepton apply\".\n", m.green(), m.reset())
	return 0
}
