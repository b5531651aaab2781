package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/leptonml/lepton/internal/policy"
	"github.com/leptonml/lepton/internal/version"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
)

// policyFlags are plan's -policy options.
type policyFlags struct {
	dir, namespace, regoVersion string
}

func (p *policyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.dir, "policy", "", "Check the plan against the Rego policies in this directory, as \"conftest test\" checks the JSON plan: deny/violation rules fail the plan (exit 1), warn rules warn.")
	fs.StringVar(&p.namespace, "policy-namespace", policy.DefaultNamespace, "The policies' package whose rules are checked (conftest's --namespace).")
	fs.StringVar(&p.regoVersion, "policy-rego-version", "v1", "Rego syntax of the policies: v1, or v0 for policies written before OPA 1.0 (conftest's --rego-version).")
}

// load reads the policies before anything is planned, so a policy that does
// not parse fails at once; nil when -policy is not given.
func (p *policyFlags) load(m *meta) (*policy.Engine, bool) {
	if p.dir == "" {
		return nil, true
	}
	v, err := policy.ParseRegoVersion(p.regoVersion)
	if err != nil {
		m.errorf("-policy-rego-version: %v", err)
		return nil, false
	}
	e, err := policy.Load(m.path(p.dir), v)
	if err != nil {
		m.errorf("-policy %s: %v", p.dir, err)
		return nil, false
	}
	return e, true
}

// checkPolicies runs the policies on the plan's JSON document and prints
// their messages as conftest does, to w. It reports whether the plan passes.
func (m *meta) checkPolicies(ctx context.Context, e *policy.Engine, p policyFlags, plan *planner.Plan, cfg *lang.Config, w io.Writer) bool {
	var buf bytes.Buffer
	if err := planner.RenderJSON(&buf, plan, cfg, version.Version); err != nil {
		m.errorf("rendering the plan for the policies: %v", err)
		return false
	}
	var input any
	if err := json.Unmarshal(buf.Bytes(), &input); err != nil {
		m.errorf("reading the JSON plan for the policies: %v", err)
		return false
	}
	rep, err := e.Check(ctx, input, p.namespace)
	if err != nil {
		m.errorf("-policy %s: %v", p.dir, err)
		return false
	}
	fmt.Fprintf(w, "\nPolicy checks (%s, namespace %s):\n", p.dir, rep.Namespace)
	for _, r := range rep.Warnings {
		fmt.Fprintf(w, "WARN - %s - %s\n", rep.Namespace, r.Message)
	}
	for _, r := range rep.Failures {
		fmt.Fprintf(w, "FAIL - %s - %s\n", rep.Namespace, r.Message)
	}
	for _, r := range rep.Exceptions {
		fmt.Fprintf(w, "EXCP - %s - %s\n", rep.Namespace, r.Message)
	}
	fmt.Fprintf(w, "\n%s, %d passed, %s, %s, %s\n", plural(rep.Tests(), "test"), rep.Successes,
		plural(len(rep.Warnings), "warning"), plural(len(rep.Failures), "failure"), plural(len(rep.Exceptions), "exception"))
	if rep.Failed() {
		m.errorf("the plan fails %s of %s", plural(len(rep.Failures), "policy check"), p.dir)
		return false
	}
	return true
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
