package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLifecycle walks a project through plan, apply, no-op, changes of an
// inline dataset and of a CSV file, count/for_each changes, a removal and a
// destroy.
func TestLifecycle(t *testing.T) {
	dir := project(t, "basic")

	r := ok(t, dir, "plan")
	contains(t, r.stdout,
		"# dataset.a will be created", "# dataset.f will be created",
		"# dataset.c[0] will be created", "# dataset.c[1] will be created",
		`# dataset.e["p"] will be created`, `# dataset.e["q"] will be created`,
		"Plan: 6 to add, 0 to change, 0 to destroy.")
	if _, err := os.Stat(filepath.Join(dir, "lepton.state.json")); err == nil {
		t.Fatal("plan wrote a state file")
	}
	exits(t, 2, dir, "plan", "-detailed-exitcode")

	r = ok(t, dir, "apply", "-auto-approve")
	contains(t, r.stdout, "dataset.a: Creation complete", "Apply complete! Resources: 6 added, 0 changed, 0 destroyed.",
		"a_rows = 4", "seed = <sensitive>")
	st := readState(t, dir)
	if len(st.Resources) != 6 {
		t.Fatalf("state holds %v, want 6 resources", addresses(st))
	}
	for _, res := range st.Resources {
		if res.Status != "ready" {
			t.Errorf("%s has status %q after a successful apply", res.Address, res.Status)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "lepton.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	serial := st.Serial

	r = ok(t, dir, "plan")
	contains(t, r.stdout, "No changes. Your infrastructure matches the configuration.")
	exits(t, 0, dir, "plan", "-detailed-exitcode")
	r = ok(t, dir, "apply", "-auto-approve")
	contains(t, r.stdout, "No changes.")
	if s := readState(t, dir); s.Serial != serial {
		t.Errorf("a no-op apply changed the serial from %d to %d", serial, s.Serial)
	}

	// An inline dataset changes: an in-place update.
	edit(t, dir, "main.lep.hcl", "x = [1, 2, 3, 4]", "x = [1, 2, 3, 4, 5]")
	edit(t, dir, "main.lep.hcl", "label = [0, 1, 0, 1]", "label = [0, 1, 0, 1, 0]")
	r = exits(t, 2, dir, "plan", "-detailed-exitcode")
	contains(t, r.stdout, "# dataset.a will be updated in-place", "x     = [1, 2, 3, 4, 5]",
		"Plan: 0 to add, 1 to change, 0 to destroy.", "~ a_rows = 4 -> (known after apply)")
	r = ok(t, dir, "apply", "-auto-approve")
	contains(t, r.stdout, "dataset.a: Modifications complete", "Apply complete! Resources: 0 added, 1 changed, 0 destroyed.", "a_rows = 5")
	st = readState(t, dir)
	if st.Serial <= serial {
		t.Errorf("serial did not increase: %d -> %d", serial, st.Serial)
	}
	backup, err := os.ReadFile(filepath.Join(dir, "lepton.state.json.backup"))
	if err != nil {
		t.Fatalf("no state backup after the second apply: %v", err)
	}
	if !strings.Contains(string(backup), `"x": [`) && !strings.Contains(string(backup), "dataset.a") {
		t.Errorf("backup does not hold the previous state:\n%s", backup)
	}
	ok(t, dir, "plan", "-detailed-exitcode")

	// The CSV file changes: the dataset is updated, with the reason.
	write(t, dir, "data/t.csv", "x,y\n1,2\n3,4\n5,6\n7,8\n")
	r = exits(t, 2, dir, "plan", "-detailed-exitcode")
	contains(t, r.stdout, "# dataset.f will be updated in-place", "# (the source content changed)", "~ f_digest")
	r = ok(t, dir, "apply", "-auto-approve")
	contains(t, r.stdout, "Apply complete! Resources: 0 added, 1 changed, 0 destroyed.")
	r = ok(t, dir, "state", "show", "dataset.f")
	contains(t, r.stdout, "rows", "4")
	// The processing report: written at apply for a file source, rebuilt
	// from the state for an inline one.
	r = ok(t, dir, "show", "dataset.f")
	contains(t, r.stdout, "Processing report:", "rows:    4 kept, 0 dropped", "steps:", "columns: 2: x, y")
	r = ok(t, dir, "show", "dataset.a")
	contains(t, r.stdout, "Processing report:", "rows:    5 kept, 0 dropped", "steps:")

	// count 2 -> 3 and a for_each key less.
	edit(t, dir, "main.lep.hcl", "count = 2", "count = 3")
	edit(t, dir, "main.lep.hcl", `toset(["p", "q"])`, `toset(["p"])`)
	r = exits(t, 2, dir, "plan", "-detailed-exitcode")
	contains(t, r.stdout, "# dataset.c[2] will be created", `# dataset.e["q"] will be destroyed`, "Plan: 1 to add, 0 to change, 1 to destroy.")
	lacks(t, r.stdout, "dataset.c[0] will", "dataset.c[1] will", `dataset.e["p"] will`)
	r = ok(t, dir, "apply", "-auto-approve")
	contains(t, r.stdout, "Apply complete! Resources: 1 added, 0 changed, 1 destroyed.")
	got := strings.Fields(ok(t, dir, "state", "list").stdout)
	want := []string{"dataset.a", "dataset.c[0]", "dataset.c[1]", "dataset.c[2]", `dataset.e["p"]`, "dataset.f"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("state list = %v, want %v", got, want)
	}

	// A resource removed from the configuration is destroyed.
	b := fileBytes(t, filepath.Join(dir, "main.lep.hcl"))
	i := strings.Index(string(b), `dataset "f" {`)
	j := strings.Index(string(b), `dataset "c" {`)
	cfg := string(b[:i]) + string(b[j:])
	cfg = strings.Replace(cfg, "value       = dataset.f.digest", `value       = "gone"`, 1)
	write(t, dir, "main.lep.hcl", cfg)
	r = exits(t, 2, dir, "plan", "-detailed-exitcode")
	contains(t, r.stdout, "# dataset.f will be destroyed", "Plan: 0 to add, 0 to change, 1 to destroy.")
	r = ok(t, dir, "apply", "-auto-approve")
	contains(t, r.stdout, "dataset.f: Destruction complete", "Apply complete! Resources: 0 added, 0 changed, 1 destroyed.")
	ok(t, dir, "plan", "-detailed-exitcode")

	// destroy removes everything.
	r = ok(t, dir, "plan", "-destroy")
	contains(t, r.stdout, "# dataset.a will be destroyed", "Plan: 0 to add, 0 to change, 5 to destroy.")
	exits(t, 1, dir, "destroy", "-input=false")
	r = ok(t, dir, "destroy", "-auto-approve")
	contains(t, r.stdout, "Destroy complete! Resources: 5 destroyed.")
	if st := readState(t, dir); len(st.Resources) != 0 {
		t.Errorf("state after destroy holds %v", addresses(st))
	}
	if s := strings.TrimSpace(ok(t, dir, "state", "list").stdout); s != "" {
		t.Errorf("state list after destroy: %q", s)
	}
	r = ok(t, dir, "plan")
	contains(t, r.stdout, "Plan: 5 to add, 0 to change, 0 to destroy.")
}

// TestApplyPrompt checks the confirmation: only "yes" proceeds.
func TestApplyPrompt(t *testing.T) {
	dir := project(t, "basic")
	r := runEnv(t, dir, nil, "no\n", "apply")
	if r.code != 1 {
		t.Fatalf("answering no: want exit 1, got\n%s", r)
	}
	contains(t, r.stdout, "Do you want to perform these actions?", "Apply cancelled.")
	if _, err := os.Stat(filepath.Join(dir, "lepton.state.json")); err == nil {
		if st := readState(t, dir); len(st.Resources) > 0 {
			t.Fatalf("a cancelled apply created %v", addresses(st))
		}
	}
	r = runEnv(t, dir, nil, "yes\n", "apply")
	if r.code != 0 {
		t.Fatalf("answering yes: want exit 0, got\n%s", r)
	}
	contains(t, r.stdout, "Apply complete! Resources: 6 added")
}

// TestTargetReplaceRefresh covers -target, -replace, -refresh=false and
// -refresh-only.
func TestTargetReplaceRefresh(t *testing.T) {
	dir := project(t, "basic")

	r := ok(t, dir, "plan", "-target=dataset.c")
	contains(t, r.stdout, "# dataset.c[0] will be created", "# dataset.c[1] will be created", "Plan: 2 to add, 0 to change, 0 to destroy.")
	lacks(t, r.stdout, "dataset.a will", "dataset.f will")
	r = ok(t, dir, "apply", "-auto-approve", "-target=dataset.c[1]")
	contains(t, r.stdout, "Apply complete! Resources: 1 added, 0 changed, 0 destroyed.")
	if got := addresses(readState(t, dir)); strings.Join(got, " ") != "dataset.c[1]" {
		t.Fatalf("after -target=dataset.c[1] state holds %v", got)
	}
	r = ok(t, dir, "apply", "-auto-approve")
	contains(t, r.stdout, "Apply complete! Resources: 5 added, 0 changed, 0 destroyed.")

	r = exits(t, 2, dir, "plan", "-replace=dataset.a", "-detailed-exitcode")
	contains(t, r.stdout, "# dataset.a will be replaced, as requested", "-/+", "Plan: 1 to add, 0 to change, 1 to destroy.")
	r = ok(t, dir, "apply", "-auto-approve", `-replace=dataset.e["q"]`)
	contains(t, r.stdout, "Apply complete! Resources: 1 added, 0 changed, 1 destroyed.")
	ok(t, dir, "plan", "-detailed-exitcode")

	edit(t, dir, "main.lep.hcl", "x = [1, 2, 3, 4]", "x = [4, 3, 2, 1]")
	r = exits(t, 2, dir, "plan", "-refresh=false", "-detailed-exitcode")
	contains(t, r.stdout, "# dataset.a will be updated in-place")
	// -refresh-only proposes no configuration change: local datasets have
	// no drift, so there is nothing to do.
	r = exits(t, 0, dir, "plan", "-refresh-only", "-detailed-exitcode")
	lacks(t, r.stdout, "will be updated", "will be created")
	serial := readState(t, dir).Serial
	r = ok(t, dir, "apply", "-refresh-only", "-auto-approve")
	lacks(t, r.stdout, "Modifications complete")
	if st := readState(t, dir); st.Serial != serial {
		t.Errorf("apply -refresh-only with no drift changed the serial %d -> %d", serial, st.Serial)
	}
	exits(t, 1, dir, "plan", "-refresh-only", "-destroy")
	r = exits(t, 2, dir, "plan", "-destroy", "-target=dataset.a", "-detailed-exitcode")
	contains(t, r.stdout, "# dataset.a will be destroyed", "Plan: 0 to add, 0 to change, 1 to destroy.")
	r = exits(t, 1, dir, "plan", "-target=dataset.nope[")
	contains(t, r.stderr, "dataset.nope[")
}

// TestSavedPlan applies a saved plan and refuses stale ones.
func TestSavedPlan(t *testing.T) {
	dir := project(t, "basic")
	r := ok(t, dir, "plan", "-out=p1")
	contains(t, r.stdout, `lepton apply "p1"`)
	fi, err := os.Stat(filepath.Join(dir, "p1"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("saved plan mode %v: it may hold sensitive values, want 0600", fi.Mode().Perm())
	}
	r = ok(t, dir, "show", "p1")
	contains(t, r.stdout, "Plan: 6 to add, 0 to change, 0 to destroy.")
	r = ok(t, dir, "show", "-json", "p1")
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("show -json PLANFILE: %v", err)
	}
	ok(t, dir, "plan", "-out=p2")

	r = ok(t, dir, "apply", "p1")
	contains(t, r.stdout, "Apply complete! Resources: 6 added, 0 changed, 0 destroyed.")
	lacks(t, r.stdout, "Do you want to perform")

	// p2 was made against the empty state: the state changed since.
	r = exits(t, 1, dir, "apply", "p2")
	contains(t, r.stderr, "stale")
	r = exits(t, 1, dir, "apply", "p1")
	contains(t, r.stderr, "stale")

	// A plan that updates a dataset from a file is refused once the file
	// changes again: the digest it planned no longer holds.
	write(t, dir, "data/t.csv", "x,y\n9,9\n")
	ok(t, dir, "plan", "-out=p3")
	write(t, dir, "data/t.csv", "x,y\n9,9\n8,8\n")
	r = exits(t, 1, dir, "apply", "p3")
	contains(t, r.stderr, "dataset.f", "stale")
	ok(t, dir, "apply", "-auto-approve")
	// ... and once the configuration changes.
	edit(t, dir, "main.lep.hcl", "count = 2", "count = 3")
	// ... and once the configuration changes.
	ok(t, dir, "plan", "-out=p4")
	edit(t, dir, "main.lep.hcl", "count = 3", "count = 4")
	r = exits(t, 1, dir, "apply", "p4")
	contains(t, r.stderr, "stale")
	// ... and once a variable changes.
	ok(t, dir, "plan", "-out=p5", "-var", "seed=8")
	r = exits(t, 1, dir, "apply", "-var", "seed=9", "p5")
	contains(t, r.stderr, "saved plan")
	exits(t, 1, dir, "apply", "-target=dataset.a", "p5")
	r = ok(t, dir, "apply", "p5")
	contains(t, r.stdout, "Apply complete!")
	if got := ok(t, dir, "output", "-raw", "seed").stdout; got != "8" {
		t.Errorf("after applying a plan made with seed=8, output seed = %q", got)
	}
	before := fileBytes(t, filepath.Join(dir, "lepton.state.json"))
	write(t, dir, "garbage.plan", "not a plan")
	exits(t, 1, dir, "apply", "garbage.plan")
	if after := fileBytes(t, filepath.Join(dir, "lepton.state.json")); string(after) != string(before) {
		t.Error("a refused plan changed the state")
	}
	edit(t, dir, "main.lep.hcl", "count = 4", "count = 5")
	ok(t, dir, "plan", "-out=p6")
	r = ok(t, dir, "apply", "p6")
	contains(t, r.stdout, "Apply complete! Resources: 1 added")
}

// TestOutputs covers output, -json, -raw and sensitive outputs.
func TestOutputs(t *testing.T) {
	dir := project(t, "basic")
	r := exits(t, 1, dir, "output", "a_rows")
	ok(t, dir, "apply", "-auto-approve", "-var", "seed=4242")

	r = ok(t, dir, "output")
	contains(t, r.stdout, "a_rows = 4", "seed = <sensitive>", `f_digest = "sha256:`)
	lacks(t, r.stdout, "4242")
	r = ok(t, dir, "output", "-json")
	var all map[string]struct {
		Value     any  `json:"value"`
		Type      any  `json:"type"`
		Sensitive bool `json:"sensitive"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil {
		t.Fatalf("output -json: %v\n%s", err, r.stdout)
	}
	if all["a_rows"].Value != float64(4) || all["a_rows"].Type != "number" || all["a_rows"].Sensitive {
		t.Errorf("output -json a_rows = %+v", all["a_rows"])
	}
	if !all["seed"].Sensitive {
		t.Errorf("output -json seed not marked sensitive: %+v", all["seed"])
	}
	lacks(t, r.stdout, "4242")
	r = ok(t, dir, "output", "-json", "a_rows")
	if strings.TrimSpace(r.stdout) != "4" {
		t.Errorf("output -json a_rows = %q", r.stdout)
	}
	r = ok(t, dir, "output", "-raw", "f_digest")
	if !strings.HasPrefix(r.stdout, "sha256:") || strings.Contains(r.stdout, `"`) {
		t.Errorf("output -raw f_digest = %q", r.stdout)
	}
	// Named, a sensitive output is shown.
	r = ok(t, dir, "output", "-raw", "seed")
	if strings.TrimSpace(r.stdout) != "4242" {
		t.Errorf("output -raw seed = %q", r.stdout)
	}
	r = exits(t, 1, dir, "output", "nope")
	contains(t, r.stderr, "nope")
}

// TestStateCommands covers state list/show/rm/pull/push.
func TestStateCommands(t *testing.T) {
	dir := project(t, "basic")
	r := exits(t, 1, dir, "state", "show", "dataset.a")
	ok(t, dir, "apply", "-auto-approve")

	r = ok(t, dir, "state", "list", "dataset.c")
	if got := strings.Fields(r.stdout); strings.Join(got, " ") != "dataset.c[0] dataset.c[1]" {
		t.Errorf("state list dataset.c = %v", got)
	}
	r = ok(t, dir, "state", "show", "dataset.a")
	contains(t, r.stdout, `dataset "a"`, "digest", "rows")
	r = ok(t, dir, "state", "pull")
	pulled := r.stdout
	var raw map[string]any
	if err := json.Unmarshal([]byte(pulled), &raw); err != nil {
		t.Fatalf("state pull is not JSON: %v", err)
	}
	for _, k := range []string{"version", "lepton_version", "serial", "lineage", "outputs", "resources"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("state lacks %q", k)
		}
	}

	r = ok(t, dir, "state", "rm", "dataset.c[0]")
	contains(t, r.stdout, "Removed dataset.c[0]")
	if strings.Contains(ok(t, dir, "state", "list").stdout, "dataset.c[0]") {
		t.Error("state rm did not remove dataset.c[0]")
	}
	r = exits(t, 2, dir, "plan", "-detailed-exitcode")
	contains(t, r.stdout, "# dataset.c[0] will be created", "Plan: 1 to add, 0 to change, 0 to destroy.")
	exits(t, 1, dir, "state", "rm", "dataset.nope")

	// Pushing the pulled copy back is refused: it is older than the state.
	write(t, dir, "old.json", pulled)
	r = exits(t, 1, dir, "state", "push", "old.json")
	contains(t, r.stderr, "serial")
	r = ok(t, dir, "state", "push", "-force", "old.json")
	if !strings.Contains(ok(t, dir, "state", "list").stdout, "dataset.c[0]") {
		t.Error("state push -force did not restore dataset.c[0]")
	}
	ok(t, dir, "plan", "-detailed-exitcode")

	// Another lineage is refused.
	other := strings.Replace(pulled, raw["lineage"].(string), "00000000-0000-4000-8000-000000000000", 1)
	write(t, dir, "other.json", other)
	r = exits(t, 1, dir, "state", "push", "other.json")
	contains(t, r.stderr, "lineage")
	write(t, dir, "bad.json", "{not json")
	exits(t, 1, dir, "state", "push", "bad.json")
	exits(t, 1, dir, "state", "frobnicate")

	r = ok(t, dir, "show", "-json")
	var shown struct {
		FormatVersion string `json:"format_version"`
		Values        struct {
			RootModule struct {
				Resources []struct {
					Address string `json:"address"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatalf("show -json: %v", err)
	}
	if len(shown.Values.RootModule.Resources) != 6 || shown.FormatVersion == "" {
		t.Errorf("show -json: %+v", shown)
	}
}

// TestMiscCommands covers fmt, validate, graph, init, version and -chdir.
func TestMiscCommands(t *testing.T) {
	dir := project(t, "basic")

	ok(t, dir, "fmt", "-check")
	write(t, dir, "ugly.lep.hcl", "dataset \"u\" {\nsource {\ninline = {x=[1]}\n}\n}\n")
	r := exits(t, 3, dir, "fmt", "-check")
	contains(t, r.stdout, "ugly.lep.hcl")
	if string(fileBytes(t, filepath.Join(dir, "ugly.lep.hcl"))) != "dataset \"u\" {\nsource {\ninline = {x=[1]}\n}\n}\n" {
		t.Error("fmt -check rewrote the file")
	}
	ok(t, dir, "fmt")
	contains(t, string(fileBytes(t, filepath.Join(dir, "ugly.lep.hcl"))), "  source {\n    inline = { x = [1] }")
	ok(t, dir, "fmt", "-check")

	r = ok(t, dir, "validate")
	contains(t, r.stdout, "valid")
	r = ok(t, dir, "validate", "-json")
	var v struct {
		Valid      bool `json:"valid"`
		ErrorCount int  `json:"error_count"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || !v.Valid {
		t.Errorf("validate -json: %v %s", err, r.stdout)
	}

	r = ok(t, dir, "graph")
	contains(t, r.stdout, "digraph", "dataset.a")

	r = ok(t, dir, "version")
	contains(t, r.stdout, "lepton", "go1.")
	r = ok(t, dir, "-version")
	contains(t, r.stdout, "lepton")

	// -chdir runs in another directory.
	parent := filepath.Dir(dir)
	r = ok(t, parent, "-chdir="+filepath.Base(dir), "plan")
	contains(t, r.stdout, "Plan: 7 to add")
	exits(t, 1, parent, "-chdir=does-not-exist", "plan")
	exits(t, 1, dir, "no-such-command")
	exits(t, 1, dir, "plan", "-no-such-flag")

	// init writes a project that applies (the small datasets starter: the
	// default quickstart trains on MNIST, which examples/ tests).
	empty := t.TempDir()
	r = ok(t, empty, "init", "-template", "datasets")
	contains(t, r.stdout, "successfully initialized")
	if _, err := os.Stat(filepath.Join(empty, ".lepton")); err != nil {
		t.Errorf("init did not create .lepton/: %v", err)
	}
	ok(t, empty, "validate")
	r = ok(t, empty, "apply", "-auto-approve")
	contains(t, r.stdout, "Apply complete!")
	ok(t, empty, "plan", "-detailed-exitcode")
	// init in a directory with a configuration keeps it.
	before := fileBytes(t, filepath.Join(dir, "main.lep.hcl"))
	ok(t, dir, "init")
	if string(fileBytes(t, filepath.Join(dir, "main.lep.hcl"))) != string(before) {
		t.Error("init changed an existing configuration")
	}
}

// TestHelp checks that every command has -help with an example, exit 0.
func TestHelp(t *testing.T) {
	dir := t.TempDir()
	// Every command the usage lists, and at least the ones SPEC section 2 names.
	usage := ok(t, dir, "-help").stdout
	cmds := map[string]bool{}
	for _, c := range []string{"init", "validate", "fmt", "plan", "apply", "destroy", "show", "output", "state", "force-unlock", "graph", "version"} {
		cmds[c] = true
	}
	if i := strings.Index(usage, "Commands:\n"); i >= 0 {
		for _, line := range strings.Split(usage[i+len("Commands:\n"):], "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				break
			}
			cmds[f[0]] = true
		}
	}
	for c := range cmds {
		for _, flag := range []string{"-help", "--help"} {
			r := lep(t, dir, c, flag)
			if r.code != 0 {
				t.Errorf("lepton %s %s: exit %d\n%s", c, flag, r.code, r)
				continue
			}
			if !strings.Contains(r.stdout, "Usage: lepton "+c) || !strings.Contains(r.stdout, "Example") {
				t.Errorf("lepton %s %s lacks usage or examples:\n%s", c, flag, r.stdout)
			}
		}
	}
	for _, sub := range []string{"list", "show", "rm", "pull", "push"} {
		r := lep(t, dir, "state", sub, "-help")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: lepton state "+sub) || !strings.Contains(r.stdout, "Example") {
			t.Errorf("lepton state %s -help:\n%s", sub, r)
		}
	}
	r := ok(t, dir, "-help")
	contains(t, r.stdout, "Usage: lepton", "plan", "apply", "Examples")
}

// TestNoPrompt checks that a missing variable is an error naming it when
// there is no terminal, or with -input=false.
func TestNoPrompt(t *testing.T) {
	dir := project(t, "basic")
	write(t, dir, "req.lep.hcl", "variable \"region_name\" {\n  type = string\n}\n")
	for _, args := range [][]string{{"plan"}, {"plan", "-input=false"}, {"apply", "-auto-approve"}, {"apply", "-input=false", "-auto-approve"}} {
		r := lep(t, dir, args...)
		if r.code != 1 {
			t.Errorf("lepton %v without a value for region_name: exit %d\n%s", args, r.code, r)
		}
		contains(t, r.stderr, "region_name", "req.lep.hcl:1:1")
	}
	if _, err := os.Stat(filepath.Join(dir, "lepton.state.json")); err == nil {
		t.Error("a refused run wrote state")
	}
	// The value from the environment, a file or -var is enough.
	ok(t, dir, "plan", "-var", "region_name=x")
	r := runEnv(t, dir, []string{"LEPTON_VAR_region_name=y"}, "", "plan")
	if r.code != 0 {
		t.Errorf("LEPTON_VAR_region_name: %s", r)
	}
	write(t, dir, "v.auto.lepvars.hcl", "region_name = \"z\"\n")
	ok(t, dir, "plan", "-input=false")
}
