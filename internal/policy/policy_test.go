package policy

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func writePolicies(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// input is a small plan: one endpoint created, one deleted.
var input = map[string]any{
	"resource_changes": []any{
		map[string]any{"address": "endpoint.a", "type": "endpoint", "change": map[string]any{"actions": []any{"create"}}},
		map[string]any{"address": "endpoint.b", "type": "endpoint", "change": map[string]any{"actions": []any{"delete"}}},
	},
}

func messages(rs []Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Rule+": "+r.Message)
	}
	return out
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name      string
		files     map[string]string
		namespace string
		version   string
		fail      []string
		warn      []string
		except    int
		successes int
		err       string
	}{
		{
			name: "deny with string messages, v1",
			files: map[string]string{"deny.rego": `package main
deny contains msg if {
	rc := input.resource_changes[_]
	"delete" in rc.change.actions
	msg := sprintf("%s would be destroyed", [rc.address])
}`},
			fail: []string{"deny: endpoint.b would be destroyed"},
		},
		{
			name: "violation with objects, warn, prefixed rules, a passing rule",
			files: map[string]string{"p.rego": `package main
import rego.v1
violation contains {"msg": msg, "severity": "high"} if {
	rc := input.resource_changes[_]
	rc.change.actions[_] == "create"
	msg := sprintf("%s is new", [rc.address])
}
warn_count contains msg if {
	count(input.resource_changes) > 1
	msg := "more than one change"
}
deny_nothing contains msg if {
	false
	msg := "never"
}`},
			fail:      []string{"violation: endpoint.a is new"},
			warn:      []string{"warn_count: more than one change"},
			successes: 1,
		},
		{
			name: "other namespaces do not count by default",
			files: map[string]string{"a.rego": `package other
deny contains "from other" if { true }`, "sub/b.rego": `package main
warn contains "from main" if { true }`},
			warn: []string{"warn: from main"},
		},
		{
			name:      "a chosen namespace",
			namespace: "terraform.plan",
			files: map[string]string{"a.rego": `package terraform.plan
deny contains "denied" if { true }`, "b.rego": `package main
deny contains "main" if { true }`},
			fail: []string{"deny: denied"},
		},
		{
			name: "an exception turns a rule's results into one exception",
			files: map[string]string{"a.rego": `package main
deny_destroy contains msg if {
	rc := input.resource_changes[_]
	"delete" in rc.change.actions
	msg := rc.address
}
exception contains rules if {
	rules := ["destroy"]
}`},
			except: 1,
		},
		{
			name:    "v0 syntax under v0",
			version: "v0",
			files: map[string]string{"a.rego": `package main
deny[msg] {
	rc := input.resource_changes[_]
	rc.change.actions[_] == "delete"
	msg := sprintf("%s would be destroyed", [rc.address])
}`},
			fail: []string{"deny: endpoint.b would be destroyed"},
		},
		{
			name: "v0 syntax under v1 is an error, as under conftest",
			files: map[string]string{"a.rego": `package main
deny[msg] {
	msg := "x"
}`},
			err: "parsing policies",
		},
		{
			name: "if without contains is an error, as under conftest",
			files: map[string]string{"a.rego": `package main
deny[msg] if {
	msg := "x"
}`},
			err: `uses "if" without "contains"`,
		},
		{
			name: "an object message without msg is an error",
			files: map[string]string{"a.rego": `package main
deny contains {"message": "x"} if { true }`},
			err: "no msg field",
		},
		{
			name: "a boolean deny never fails, as under conftest",
			files: map[string]string{"a.rego": `package main
deny if { true }`},
			successes: 1,
		},
		{
			name:  "no policies",
			files: map[string]string{"README.md": "none here"},
			err:   "no policies found",
		},
		{
			name:  "a compile error names the file",
			files: map[string]string{"a.rego": "package main\ndeny contains msg if { msg := undefined_thing }"},
			err:   "a.rego:2",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writePolicies(t, c.files)
			v, err := ParseRegoVersion(c.version)
			if err != nil {
				t.Fatal(err)
			}
			e, err := Load(dir, v)
			if err == nil {
				var rep *Report
				rep, err = e.Check(context.Background(), input, c.namespace)
				if err == nil {
					if got := messages(rep.Failures); !reflect.DeepEqual(got, c.fail) {
						t.Errorf("failures %q, want %q", got, c.fail)
					}
					if got := messages(rep.Warnings); !reflect.DeepEqual(got, c.warn) {
						t.Errorf("warnings %q, want %q", got, c.warn)
					}
					if len(rep.Exceptions) != c.except || rep.Successes != c.successes {
						t.Errorf("%d exceptions, %d successes; want %d, %d", len(rep.Exceptions), rep.Successes, c.except, c.successes)
					}
					if rep.Failed() != (len(c.fail) > 0) {
						t.Errorf("Failed() = %v", rep.Failed())
					}
				}
			}
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("error %v, want one containing %q", err, c.err)
			}
		})
	}
}

func TestMetadataKept(t *testing.T) {
	dir := writePolicies(t, map[string]string{"a.rego": `package main
deny contains {"msg": "m", "cost": 3} if { true }`})
	e, err := Load(dir, ast.RegoV1)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.Check(context.Background(), input, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failures) != 1 || rep.Failures[0].Message != "m" || rep.Failures[0].Metadata["cost"] == nil {
		t.Errorf("failures %+v", rep.Failures)
	}
}

func TestParseRegoVersion(t *testing.T) {
	for in, want := range map[string]ast.RegoVersion{"": ast.RegoV1, "v1": ast.RegoV1, "V0": ast.RegoV0} {
		if got, err := ParseRegoVersion(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParseRegoVersion("v2"); err == nil {
		t.Errorf("v2 accepted")
	}
}
