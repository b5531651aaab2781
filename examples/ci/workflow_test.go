// Package ci holds the GitHub Actions workflow that plans pull requests and
// applies their saved plans on merge; this test lints it with actionlint.
package ci

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
)

const workflow = ".github/workflows/lepton.yml"

// shellcheck is the shellcheck actionlint runs on the run: scripts
// (.ci/setup-shellcheck.sh installs it for CI); "" when there is none.
func shellcheck(t *testing.T) string {
	if p := os.Getenv("LEPTON_SHELLCHECK"); p != "" {
		return p
	}
	if p, err := exec.LookPath("shellcheck"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("shellcheck is missing (CI is set): .ci/setup-shellcheck.sh installs it")
	}
	t.Log("shellcheck is not installed: the run: scripts are not checked by it (the rest of actionlint's checks run)")
	return ""
}

func lint(t *testing.T, path string, content []byte) []*actionlint.Error {
	t.Helper()
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{
		Shellcheck: shellcheck(t),
		Color:      actionlint.ColorOptionKindNever,
	})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.Lint(path, content, nil)
	if err != nil {
		t.Fatalf("actionlint: %v", err)
	}
	return errs
}

// TestWorkflowLint fails on any actionlint finding: syntax, expressions,
// the inputs of the actions used, permissions, and (with shellcheck) the
// shell scripts.
func TestWorkflowLint(t *testing.T) {
	b, err := os.ReadFile(workflow)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range lint(t, workflow, b) {
		t.Errorf("%s:%d:%d: %s [%s]", workflow, e.Line, e.Column, e.Message, e.Kind)
	}
}

// TestLintCatchesMistakes: the linter as configured here does find the
// mistakes a workflow edit can make, so a clean result above means
// something.
func TestLintCatchesMistakes(t *testing.T) {
	b, err := os.ReadFile(workflow)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	cases := []struct{ name, from, to, kind string }{
		{"an unknown input of an action", "retention-days: 14", "retention-day: 14", "action"},
		{"an undefined step output", "steps.find.outputs.run_id != ''", "steps.finder.outputs.run_id != ''", "expression"},
		{"a typo in a context", "role-to-assume: ${{ secrets.AWS_ROLE_ARN }}", "role-to-assume: ${{ secret.AWS_ROLE_ARN }}", "expression"},
		{"a bad permission", "pull-requests: write # the plan comment", "pull-request: write", "permissions"},
	}
	if shellcheck(t) != "" {
		cases = append(cases, struct{ name, from, to, kind string }{"an unquoted shell variable", `echo "exitcode=${code}" >> "$GITHUB_OUTPUT"`, `echo "exitcode=${code}" >> $GITHUB_OUTPUT`, "shellcheck"})
	}
	for _, c := range cases {
		if !strings.Contains(src, c.from) {
			t.Fatalf("%s: the workflow no longer has %q", c.name, c.from)
		}
		errs := lint(t, filepath.Join(t.TempDir(), "lepton.yml"), []byte(strings.Replace(src, c.from, c.to, 1)))
		found := false
		for _, e := range errs {
			found = found || e.Kind == c.kind
		}
		if !found {
			t.Errorf("%s: actionlint found nothing of kind %q (%d findings)", c.name, c.kind, len(errs))
		}
	}
}

// TestWorkflowShape checks what the workflow is for: the plan job runs on
// pull requests, saves the plan, posts the Markdown as one updated comment
// and keeps the plan as an artifact; the apply job runs on pushes to main
// and applies the artifact of the pull request's plan, nothing else.
func TestWorkflowShape(t *testing.T) {
	b, err := os.ReadFile(workflow)
	if err != nil {
		t.Fatal(err)
	}
	w, errs := actionlint.Parse(b)
	if len(errs) > 0 {
		t.Fatalf("parse: %v", errs[0])
	}
	events := map[string]bool{}
	for _, ev := range w.On {
		events[ev.EventName()] = true
	}
	if !events["pull_request"] || !events["push"] {
		t.Errorf("triggers %v, want pull_request and push", events)
	}
	scripts := func(j *actionlint.Job) string {
		var all []string
		for _, s := range j.Steps {
			switch e := s.Exec.(type) {
			case *actionlint.ExecRun:
				all = append(all, e.Run.Value)
			case *actionlint.ExecAction:
				all = append(all, e.Uses.Value)
				for k, in := range e.Inputs {
					all = append(all, k+": "+in.Value.Value)
				}
			}
		}
		return strings.Join(all, "\n")
	}
	plan, apply := w.Jobs["plan"], w.Jobs["apply"]
	if plan == nil || apply == nil {
		t.Fatalf("jobs %v, want plan and apply", w.Jobs)
	}
	if !strings.Contains(plan.If.Value, "pull_request") || !strings.Contains(apply.If.Value, "push") {
		t.Errorf("plan runs if %q, apply if %q", plan.If.Value, apply.If.Value)
	}
	for _, want := range []string{
		"lepton init -input=false \\\n", `-backend-config="bucket=${STATE_BUCKET}"`,
		"lepton plan -input=false -no-color -lock-timeout=5m -out=lepton.plan -policy=policies",
		"lepton show -markdown lepton.plan > plan.md",
		"actions/upload-artifact@v4", "name: lepton-plan",
		"updateComment", "createComment", "<!-- lepton-plan -->",
	} {
		if !strings.Contains(scripts(plan), want) {
			t.Errorf("the plan job lacks %q", want)
		}
	}
	for _, want := range []string{
		"actions/download-artifact@v4", "run-id: ${{ steps.find.outputs.run_id }}",
		"lepton apply -input=false -no-color -lock-timeout=10m lepton.plan",
		"listWorkflowRuns", "head_sha: pr.head.sha",
	} {
		if !strings.Contains(scripts(apply), want) {
			t.Errorf("the apply job lacks %q", want)
		}
	}
	if strings.Contains(scripts(apply), "lepton plan -") {
		t.Errorf("the apply job plans again: it must apply the reviewed plan")
	}
	if apply.Concurrency == nil || apply.Concurrency.CancelInProgress == nil || apply.Concurrency.CancelInProgress.Value {
		t.Errorf("applies must not be cancelled half way")
	}
}
