package examples

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// run runs the binary in dir and returns its exit code, stdout and stderr.
func run(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-chdir=" + dir}, args...)...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("lepton %s: %v", strings.Join(args, " "), err)
	return 0, "", ""
}

// policyCase is a configuration of examples/policies/testdata planned under
// one of the example policies.
type policyCase struct {
	name, config, policy string
	args                 []string
	code                 int      // 1: a deny or violation fired
	want                 []string // lines of the policy report
}

var policyCases = []policyCase{
	{"spot behind an endpoint", "serving-spot", "no-spot-endpoint", nil, 1,
		[]string{"FAIL - main - endpoint.api would serve from cluster.gpu, which runs on spot instances"}},
	{"on-demand behind an endpoint", "serving-ondemand", "no-spot-endpoint", nil, 0,
		[]string{"1 test, 1 passed, 0 warnings, 0 failures, 0 exceptions"}},
	{"within the budget", "training-cluster", "max-cost", []string{"-var", "nodes=1"}, 0,
		[]string{"2 tests, 2 passed, 0 warnings, 0 failures, 0 exceptions"}},
	{"close to the budget", "training-cluster", "max-cost", []string{"-var", "nodes=3"}, 0,
		[]string{"WARN - main - the plan costs $44.08/hr once applied, 88% of the budget of $50/hr"}},
	{"over the budget", "training-cluster", "max-cost", []string{"-var", "nodes=4"}, 1,
		[]string{"FAIL - main - the plan costs $58.77/hr once applied, over the budget of $50/hr (it adds $58.77/hr)"}},
	{"auth = false", "open-endpoint", "endpoint-auth", nil, 1,
		[]string{"FAIL - main - endpoint.api sets auth = false: every endpoint requires a token"}},
	{"auth left unset (default true)", "guarded-endpoint", "endpoint-auth", nil, 0,
		[]string{"2 tests, 2 passed, 0 warnings, 0 failures, 0 exceptions"}},
	{"every policy at once", "serving-spot", ".", nil, 1,
		[]string{"FAIL - main - endpoint.api would serve from cluster.gpu", "6 tests, 5 passed, 0 warnings, 1 failure, 0 exceptions"}},
}

// TestExamplePolicies runs each example policy through lepton plan -policy
// on a configuration it passes and one it fails.
func TestExamplePolicies(t *testing.T) {
	for _, c := range policyCases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyExample(t, filepath.Join("policies", "testdata", c.config))
			pol, _ := filepath.Abs(filepath.Join("policies", c.policy))
			args := append([]string{"plan", "-input=false", "-policy", pol, "-out", "p.plan"}, c.args...)
			code, stdout, stderr := run(t, dir, args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, stdout, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("the report lacks %q:\n%s", w, stdout)
				}
			}
			_, err := os.Stat(filepath.Join(dir, "p.plan"))
			if c.code == 1 {
				if !strings.Contains(stderr, "Error: the plan fails") {
					t.Errorf("stderr lacks the error: %s", stderr)
				}
				if err == nil {
					t.Errorf("a plan that fails its policies was saved")
				}
			} else if err != nil {
				t.Errorf("a plan that passes was not saved: %v", err)
			}

			// With -json, stdout is the JSON plan alone; the report goes
			// to stderr.
			args = append([]string{"plan", "-input=false", "-json", "-policy", pol}, c.args...)
			code, stdout, stderr = run(t, dir, args...)
			var doc map[string]any
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
				t.Errorf("plan -json -policy: stdout is not one JSON document: %v", err)
			}
			if code != c.code || !strings.Contains(stderr, c.want[0]) {
				t.Errorf("plan -json -policy: exit %d, stderr %s", code, stderr)
			}
		})
	}
}

// TestExamplePoliciesUnderConftest runs the same policies with conftest on
// lepton plan -json: they must give the same verdicts and messages.
// .ci/setup-conftest.sh installs conftest for CI.
func TestExamplePoliciesUnderConftest(t *testing.T) {
	conftest := os.Getenv("LEPTON_CONFTEST")
	if conftest == "" {
		conftest, _ = exec.LookPath("conftest")
	}
	if conftest == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("conftest is missing (CI is set): .ci/setup-conftest.sh installs it")
		}
		t.Skip("conftest is not installed (set LEPTON_CONFTEST or put it on PATH); the verdicts are not compared with conftest's")
	}
	for _, c := range policyCases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyExample(t, filepath.Join("policies", "testdata", c.config))
			pol, _ := filepath.Abs(filepath.Join("policies", c.policy))
			code, stdout, stderr := run(t, dir, append([]string{"plan", "-input=false", "-json"}, c.args...)...)
			if code != 0 {
				t.Fatalf("plan -json: exit %d\n%s", code, stderr)
			}
			planFile := filepath.Join(dir, "plan.json")
			if err := os.WriteFile(planFile, []byte(stdout), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(conftest, "test", "--no-color", "--policy", pol, "--namespace", "main", planFile)
			out, err := cmd.CombinedOutput()
			got := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				got = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if got != c.code {
				t.Fatalf("conftest exit %d, lepton plan -policy %d:\n%s", got, c.code, out)
			}
			// conftest writes "FAIL - FILE - main - MSG"; lepton leaves
			// the file out.
			report := strings.ReplaceAll(string(out), " - "+planFile+" - ", " - ")
			for _, w := range c.want {
				if !strings.Contains(report, w) {
					t.Errorf("conftest's report lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestEndpointDestroyPolicy applies an endpoint (a real server process) and
// checks the no-endpoint-destroy policy on plans that would destroy it and
// on one that changes it in place.
func TestEndpointDestroyPolicy(t *testing.T) {
	dir := copyExample(t, filepath.Join("policies", "testdata", "guarded-endpoint"))
	t.Cleanup(func() {
		exec.Command(bin, "-chdir="+dir, "destroy", "-auto-approve").Run()
	})
	lepton(t, dir, "apply", "-auto-approve")
	pol, _ := filepath.Abs(filepath.Join("policies", "no-endpoint-destroy"))
	cfg := filepath.Join(dir, "main.lep.hcl")
	orig, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	withoutEndpoint := string(orig)[:strings.Index(string(orig), `endpoint "api"`)]
	inPlace := strings.Replace(string(orig), "model = training.t.model", "model    = training.t.model\n  replicas = 2", 1)
	cases := []struct {
		name, config string
		args         []string
		code         int
		want         string
	}{
		{"destroy everything", string(orig), []string{"-destroy"}, 1, "FAIL - main - endpoint.api would be destroyed: endpoints are never destroyed by a plan"},
		{"endpoint removed from the configuration", withoutEndpoint, nil, 1, "FAIL - main - endpoint.api would be destroyed"},
		{"replicas changed in place", inPlace, nil, 0, "1 test, 1 passed, 0 warnings, 0 failures, 0 exceptions"},
	}
	for _, c := range cases {
		if err := os.WriteFile(cfg, []byte(c.config), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := run(t, dir, append([]string{"plan", "-input=false", "-policy", pol}, c.args...)...)
		if code != c.code || !strings.Contains(stdout, c.want) {
			t.Errorf("%s: exit %d (want %d), report lacks %q:\n%s%s", c.name, code, c.code, c.want, stdout, stderr)
		}
	}
	if err := os.WriteFile(cfg, orig, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyErrors: policies that cannot be read fail before anything is
// planned, naming the problem.
func TestPolicyErrors(t *testing.T) {
	dir := copyExample(t, filepath.Join("policies", "testdata", "guarded-endpoint"))
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "bad.rego"), []byte("package main\n\ndeny contains msg if {\n\tmsg := \n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v0 := t.TempDir()
	if err := os.WriteFile(filepath.Join(v0, "old.rego"), []byte("package main\n\ndeny[msg] {\n\tinput.lepton.cost.total_per_hour > 100\n\tmsg := \"too dear\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-policy", filepath.Join(dir, "missing")}, 1, "Error: -policy"},
		{[]string{"-policy", dir}, 1, "no policies found"},
		{[]string{"-policy", bad}, 1, "bad.rego:5"},
		{[]string{"-policy", v0}, 1, "old.rego:3"},
		{[]string{"-policy", v0, "-policy-rego-version", "v0"}, 0, ""},
		{[]string{"-policy", v0, "-policy-rego-version", "v7"}, 1, "unknown Rego version"},
	}
	for _, c := range cases {
		code, stdout, stderr := run(t, dir, append([]string{"plan", "-input=false"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("plan %v: exit %d (want %d), stderr lacks %q:\n%s", c.args, code, c.code, c.want, stderr)
		}
		if c.code == 1 && strings.Contains(stdout, "Plan:") {
			t.Errorf("plan %v: planned despite unreadable policies", c.args)
		}
	}
}
