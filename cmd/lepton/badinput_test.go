package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// copyDir copies a working directory (configuration, data, state).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestBadInput checks that each kind of bad input gets a clear diagnostic
// naming FILE:LINE:COL, exit 1 from plan, apply and validate (where it
// applies), and leaves the state file byte for byte as it was.
func TestBadInput(t *testing.T) {
	applied := project(t, "basic")
	ok(t, applied, "apply", "-auto-approve")

	cases := []struct {
		name  string
		files map[string]string // written over the applied project
		args  []string          // extra arguments to plan and apply
		want  []string          // in stderr
		// validate is true when `lepton validate` must catch it too (it
		// reads no state, no data and no variable values).
		validate bool
	}{
		{
			name:     "syntax error",
			files:    map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  source {\n    inline = { x = [1, 2 }\n  }\n}\n"},
			want:     []string{"bad.lep.hcl:3:"},
			validate: true,
		},
		{
			name:     "unknown block",
			files:    map[string]string{"bad.lep.hcl": "\ndatasett \"x\" {\n}\n"},
			want:     []string{"bad.lep.hcl:2:1", "datasett"},
			validate: true,
		},
		{
			name:     "unknown attribute",
			files:    map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  source {\n    inline = { x = [1] }\n  }\n  colour = \"red\"\n}\n"},
			want:     []string{"bad.lep.hcl:5:3", "colour"},
			validate: true,
		},
		{
			name:     "unknown attribute in a nested block",
			files:    map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  source {\n    inline = { x = [1] }\n    fil = \"a.csv\"\n  }\n}\n"},
			want:     []string{"bad.lep.hcl:4:5", "fil"},
			validate: true,
		},
		{
			name:     "type mismatch",
			files:    map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  source {\n    inline = { x = [1] }\n  }\n  features = \"x\"\n}\n"},
			want:     []string{"bad.lep.hcl:5:", "features", "list of string"},
			validate: true,
		},
		{
			name:     "variable default of the wrong type",
			files:    map[string]string{"bad.lep.hcl": "variable \"n\" {\n  type    = number\n  default = \"many\"\n}\n"},
			want:     []string{"bad.lep.hcl:3:", "number"},
			validate: true,
		},
		{
			name:     "undeclared variable",
			files:    map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  source {\n    inline = { x = [1] }\n  }\n  label = var.nope\n}\n"},
			want:     []string{"bad.lep.hcl:5:11", "nope"},
			validate: true,
		},
		{
			name:     "undeclared resource",
			files:    map[string]string{"bad.lep.hcl": "output \"o\" {\n  value = dataset.missing.digest\n}\n"},
			want:     []string{"bad.lep.hcl:2:11", "dataset.missing"},
			validate: true,
		},
		{
			name: "dependency cycle",
			files: map[string]string{"bad.lep.hcl": `dataset "p" {
  source {
    inline = { x = [1] }
  }
  label = dataset.q.digest
}

dataset "q" {
  source {
    inline = { x = [1] }
  }
  label = dataset.p.digest
}
`},
			want:     []string{"ycle", "dataset.p", "dataset.q", "bad.lep.hcl:"},
			validate: true,
		},
		{
			name:     "duplicate resource name",
			files:    map[string]string{"bad.lep.hcl": "dataset \"a\" {\n  source {\n    inline = { x = [1] }\n  }\n}\n"},
			want:     []string{"main.lep.hcl:10:1", "bad.lep.hcl:1,1", `dataset.a`},
			validate: true,
		},
		{
			name:     "for_each over a number",
			files:    map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  for_each = 5\n  source {\n    inline = { x = [1] }\n  }\n}\n"},
			want:     []string{"bad.lep.hcl:2:", "for_each"},
			validate: true,
		},
		{
			name:     "for_each over a list with duplicates",
			files:    map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  for_each = [\"a\", \"a\"]\n  source {\n    inline = { x = [1] }\n  }\n}\n"},
			want:     []string{"bad.lep.hcl:2:", "for_each", "toset"},
			validate: true,
		},
		{
			name:     "count that is negative",
			files:    map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  count = -1\n  source {\n    inline = { x = [1] }\n  }\n}\n"},
			want:     []string{"bad.lep.hcl:2:", "count"},
			validate: true,
		},
		{
			name: "variable failing its validation",
			files: map[string]string{"bad.lep.hcl": `variable "epochs" {
  type    = number
  default = 3
  validation {
    condition     = var.epochs > 0
    error_message = "epochs must be positive."
  }
}
`},
			args: []string{"-var", "epochs=0"},
			want: []string{"epochs must be positive.", "bad.lep.hcl:"},
		},
		{
			name:  "variable given a value of the wrong type",
			files: map[string]string{"bad.lep.hcl": "variable \"epochs\" {\n  type    = number\n  default = 3\n}\n"},
			args:  []string{"-var", "epochs=lots"},
			want:  []string{"epochs", "number"},
		},
		{
			name:  "undeclared variable given",
			files: map[string]string{},
			args:  []string{"-var", "nosuch=1"},
			want:  []string{"nosuch"},
		},
		{
			name:  "required variable missing, no terminal",
			files: map[string]string{"bad.lep.hcl": "variable \"region_name\" {\n  type = string\n}\n"},
			args:  []string{"-input=false"},
			want:  []string{"bad.lep.hcl:1:1", "region_name"},
		},
		{
			name:  "missing data file",
			files: map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  source {\n    file = \"data/missing.csv\"\n  }\n}\n"},
			want:  []string{"data/missing.csv", "bad.lep.hcl:1:1", "dataset.x"},
		},
		{
			name:  "corrupt state file",
			files: map[string]string{"lepton.state.json": "{\"version\": 1, \"serial\": 3, \"resources\": [{\"address\": "},
			want:  []string{"lepton.state.json"},
		},
		{
			name:  "state file of a newer format",
			files: map[string]string{"lepton.state.json": "{\"version\": 99, \"serial\": 3, \"lineage\": \"x\", \"resources\": []}\n"},
			want:  []string{"lepton.state.json", "version"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, applied)
			for name, content := range c.files {
				write(t, dir, name, content)
			}
			statePath := filepath.Join(dir, "lepton.state.json")
			before := fileBytes(t, statePath)
			runs := [][]string{
				append([]string{"plan"}, c.args...),
				append([]string{"apply", "-auto-approve"}, c.args...),
			}
			if c.validate {
				runs = append(runs, []string{"validate"})
			}
			for _, args := range runs {
				r := lep(t, dir, args...)
				if r.code != 1 {
					t.Errorf("lepton %s: want exit 1, got\n%s", strings.Join(args, " "), r)
					continue
				}
				if !strings.Contains(r.stderr, "Error") {
					t.Errorf("lepton %s: no error message:\n%s", strings.Join(args, " "), r)
				}
				for _, w := range c.want {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("lepton %s: stderr lacks %q:\n%s", strings.Join(args, " "), w, r.stderr)
					}
				}
				if strings.Contains(r.all(), "panic") || strings.Contains(r.all(), "goroutine ") {
					t.Errorf("lepton %s crashed:\n%s", strings.Join(args, " "), r)
				}
				if string(fileBytes(t, statePath)) != string(before) {
					t.Fatalf("lepton %s changed the state file", strings.Join(args, " "))
				}
			}
		})
	}
}

// TestEveryErrorReported checks that several errors in one file are all
// reported, each with its location.
func TestEveryErrorReported(t *testing.T) {
	dir := project(t, "basic")
	write(t, dir, "bad.lep.hcl", `dataset "x" {
  source {
    inline = { x = [1] }
  }
  colour = "red"
}

dataset "y" {
  source {
    inline = { x = [1] }
  }
  label = var.nope
}

output "z" {
  value = dataset.missing.rows
}

datasett "w" {
}
`)
	for _, args := range [][]string{{"validate"}, {"plan"}} {
		r := exits(t, 1, dir, args...)
		for _, w := range []string{"bad.lep.hcl:5:3", "bad.lep.hcl:12:11", "bad.lep.hcl:16:11", "bad.lep.hcl:19:1"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("lepton %v: stderr lacks %q:\n%s", args, w, r.stderr)
			}
		}
		if n := len(regexp.MustCompile(`(?m)^Error: `).FindAllString(r.stderr, -1)); n < 4 {
			t.Errorf("lepton %v: %d errors reported, want 4:\n%s", args, n, r.stderr)
		}
	}
	// Syntax errors in two files are both reported.
	write(t, dir, "bad.lep.hcl", "dataset \"x\" {\n  source = {\n")
	write(t, dir, "worse.lep.hcl", "output \"o\" {\n  value = [1, \n}\n")
	r := exits(t, 1, dir, "validate")
	contains(t, r.stderr, "bad.lep.hcl:", "worse.lep.hcl:")
	r = exits(t, 1, dir, "validate", "-json")
	contains(t, r.stdout, `"valid": false`, "bad.lep.hcl", "worse.lep.hcl")
}

// TestMalformedDataFile: a data file that cannot be parsed is found at apply
// (plan only reads its bytes for the digest); the error names the file and
// line, the dataset is left tainted and the next plan replaces it.
func TestMalformedDataFile(t *testing.T) {
	dir := project(t, "basic")
	ok(t, dir, "apply", "-auto-approve")
	write(t, dir, "data/bad.jsonl", "{\"x\": 1}\n{\"x\": \n")
	write(t, dir, "bad.lep.hcl", "dataset \"x\" {\n  source {\n    file = \"data/bad.jsonl\"\n  }\n}\n")
	r := exits(t, 1, dir, "apply", "-auto-approve")
	contains(t, r.stderr, "dataset.x", "data/bad.jsonl", "bad.lep.hcl:1:1")
	st := readState(t, dir)
	if res := st.Find("dataset.x"); res == nil || res.Status != "tainted" {
		t.Fatalf("dataset.x after a failed create: %+v", res)
	}
	if len(st.Resources) != 7 {
		t.Errorf("state holds %v", addresses(st))
	}
	r = exits(t, 2, dir, "plan", "-detailed-exitcode")
	contains(t, r.stdout, "dataset.x is tainted, so must be replaced", "Plan: 1 to add, 0 to change, 1 to destroy.")
	write(t, dir, "data/bad.jsonl", "{\"x\": 1}\n{\"x\": 2}\n")
	ok(t, dir, "apply", "-auto-approve")
	ok(t, dir, "plan", "-detailed-exitcode")
}
