package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/leptonml/lepton/internal/state"
)

// secret is the value of the sensitive variable in testdata/golden: no
// output of any command may show it.
const secret = "s3cr3t-TOKEN-4242"

var secretEnv = []string{"LEPTON_VAR_token=" + secret}

// goldenProject applies testdata/golden/v1, round-trips its state through
// state pull/push, and puts v2 in place: the project whose plan the golden files pin. It returns
// the directory and every output printed on the way.
func goldenProject(t *testing.T) (string, []string) {
	t.Helper()
	dir := project(t, "golden/v1")
	var outs []string
	run := func(stdin string, args ...string) result {
		t.Helper()
		r := runEnv(t, dir, secretEnv, stdin, args...)
		outs = append(outs, r.stdout, r.stderr)
		return r
	}

	r := run("", "apply", "-auto-approve")
	if r.code != 0 {
		t.Fatalf("apply v1:\n%s", r)
	}
	contains(t, r.stdout, "dataset.src: Creation complete", "training.score: Creation complete", "Apply complete!")
	st := readState(t, dir)
	if len(st.Resources) != 9 {
		t.Fatalf("state after v1 holds %v, want 8 datasets and the training", addresses(st))
	}
	for _, res := range st.Resources {
		if res.Status != state.StatusReady {
			t.Errorf("%s: status %q, want %q", res.Address, res.Status, state.StatusReady)
		}
	}

	// state pull/push round trip, as an operator editing state would.
	// state pull prints the raw state, secrets included, as the file holds
	// them: it is not collected for the secret check.
	r = runEnv(t, dir, secretEnv, "", "state", "pull")
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("state pull: %v", err)
	}
	for _, res := range raw["resources"].([]any) {
		m := res.(map[string]any)
		if m["address"] == "training.score" && m["status"] != "ready" {
			t.Errorf("training.score is %v in state pull", m["status"])
		}
	}
	raw["serial"] = raw["serial"].(float64) + 1
	b, _ := json.MarshalIndent(raw, "", "  ")
	write(t, dir, "edited.json", string(b))
	if r := run("", "state", "push", "edited.json"); r.code != 0 {
		t.Fatalf("state push: %s", r)
	}
	if r := run("", "plan", "-detailed-exitcode"); r.code != 0 {
		t.Fatalf("v1 after a state round trip should plan no changes:\n%s", r)
	}
	write(t, dir, "main.lep.hcl", string(fileBytes(t, filepath.Join("testdata", "golden", "v2", "main.lep.hcl"))))
	return dir, outs
}

// TestGoldenPlans pins the human, JSON and Markdown renderings of a plan that
// creates, updates, replaces (because a consumed dataset changed) and
// destroys (a removed resource and a count shrink), with a sensitive variable
// flowing into attributes; and checks that the secret appears in no output.
func TestGoldenPlans(t *testing.T) {
	dir, outs := goldenProject(t)
	run := func(args ...string) result {
		t.Helper()
		r := runEnv(t, dir, secretEnv, "", args...)
		outs = append(outs, r.stdout, r.stderr)
		return r
	}
	// must runs a command that has to succeed: a failing command would
	// otherwise pass the secret check with nothing to check.
	must := func(args ...string) result {
		t.Helper()
		r := run(args...)
		if r.code != 0 {
			t.Errorf("lepton %s failed:\n%s", strings.Join(args, " "), r)
		}
		return r
	}

	human := run("plan")
	if human.code != 0 {
		t.Fatalf("plan: %s", human)
	}
	contains(t, human.stdout,
		"# training.score must be replaced", "# (dataset.src changed)", "-/+ training \"score\"",
		"# dataset.fresh will be created", `k = [(sensitive value), "b"]`,
		"# dataset.upd will be updated in-place", "# dataset.src will be updated in-place",
		"# dataset.gone will be destroyed", "# dataset.shard[2] will be destroyed",
		"Plan: 2 to add, 2 to change, 3 to destroy.")
	golden(t, "plan.txt", human.stdout)

	js := run("plan", "-json")
	if js.code != 0 {
		t.Fatalf("plan -json: %s", js)
	}
	golden(t, "plan.json", normalizeJSON(t, js.stdout))

	md := run("plan", "-markdown")
	if md.code != 0 {
		t.Fatalf("plan -markdown: %s", md)
	}
	contains(t, md.stdout, "`training.score`", "dataset.src changed", "<details>", "```diff")
	if len(md.stdout) > 60000 {
		t.Errorf("markdown plan is %d characters, over 60,000", len(md.stdout))
	}
	golden(t, "plan.md", md.stdout)

	// Every other way of looking at the plan, the state and the outputs.
	must("plan", "-out=saved.plan")
	must("show", "saved.plan")
	must("show", "-json", "saved.plan")
	must("show", "-markdown", "saved.plan")
	must("show")
	must("show", "-json")
	must("output")
	must("output", "-json")
	must("graph")
	must("validate")
	for _, a := range addresses(readState(t, dir)) {
		must("state", "show", a)
		must("show", a)
	}
	r := must("apply", "-auto-approve")
	contains(t, r.stdout, "dataset.fresh: Creation complete", "dataset.gone: Destruction complete")
	must("plan")
	// Named, a sensitive output is printed: that is how a script reads it.
	// (Asked before the destroy below removes every output; it is not
	// collected for the secret check.)
	if r := runEnv(t, dir, secretEnv, "", "output", "-raw", "token_echo"); r.code != 0 || r.stdout != "token="+secret {
		t.Errorf("output -raw token_echo = %q, exit %d, want %q and success:\n%s", r.stdout, r.code, "token="+secret, r)
	}
	must("destroy", "-auto-approve")
	for i, o := range outs {
		if strings.Contains(o, secret) {
			t.Errorf("output %d shows the secret:\n%s", i, o)
		}
	}
}

var lineageRe = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// normalizeJSON indents a JSON document and replaces what differs between
// runs (lineage) or releases (the version).
func normalizeJSON(t *testing.T, s string) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	if _, ok := doc["terraform_version"]; ok {
		doc["terraform_version"] = "VERSION"
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return lineageRe.ReplaceAllString(string(b), "LINEAGE") + "\n"
}

// golden compares got with testdata/golden/NAME; -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/lepton -run %s -update to create it)", err, t.Name())
	}
	if bytes.Equal(want, []byte(got)) {
		return
	}
	wl, gl := strings.Split(string(want), "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			t.Errorf("%s differs from the golden file at line %d (go test ./cmd/lepton -run %s -update accepts the change):\nwant: %q\ngot:  %q\n\nfull output:\n%s", name, i+1, t.Name(), w, g, got)
			return
		}
	}
}
