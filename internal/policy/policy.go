// Package policy checks a JSON plan against Rego policies with conftest's
// conventions, so the policy files a team already runs with
// `conftest test plan.json` give the same verdicts under `lepton plan -policy`:
//
//   - every *.rego file under the policy directory is loaded (recursively),
//     parsed as Rego v1 by default, as conftest 0.57 and later do (v0 on
//     request, as conftest's --rego-version v0);
//   - only the rules of the package named by the namespace (default main)
//     count: deny, violation and their deny_*/violation_* variants fail,
//     warn and warn_* warn;
//   - a rule yields a set of messages, each a string or an object with a
//     string msg (other keys are kept as metadata);
//   - exception[_][_] naming a rule without its prefix ("spot" for
//     deny_spot) turns that rule's results into exceptions;
//   - a deny/warn rule written with "if" but without "contains" is an error,
//     as conftest reports it (it would be a boolean, never a message).
package policy

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// DefaultNamespace is conftest's default namespace.
const DefaultNamespace = "main"

var (
	failureRule = regexp.MustCompile(`^(deny|violation)(_[a-zA-Z0-9]+)*$`)
	warningRule = regexp.MustCompile(`^warn(_[a-zA-Z0-9]+)*$`)
)

// Engine holds compiled policies.
type Engine struct {
	compiler *ast.Compiler
	modules  map[string]*ast.Module
}

// ParseRegoVersion reads a -policy-rego-version value: v0 or v1.
func ParseRegoVersion(s string) (ast.RegoVersion, error) {
	switch strings.ToLower(s) {
	case "v1", "":
		return ast.RegoV1, nil
	case "v0":
		return ast.RegoV0, nil
	}
	return ast.RegoUndefined, fmt.Errorf("unknown Rego version %q: use v1 (the default) or v0", s)
}

// Load parses and compiles every .rego file under dir.
func Load(dir string, version ast.RegoVersion) (*Engine, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("reading policies: %w", err)
	}
	var files []string
	if info.IsDir() {
		err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(d.Name(), ".rego") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading policies: %w", err)
		}
	} else {
		files = []string{dir}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no policies found in %s (no .rego files)", dir)
	}
	sort.Strings(files)
	modules := make(map[string]*ast.Module, len(files))
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading policies: %w", err)
		}
		m, err := ast.ParseModuleWithOpts(f, string(src), ast.ParserOptions{RegoVersion: version, ProcessAnnotation: true})
		if err != nil {
			return nil, fmt.Errorf("parsing policies: %w", err)
		}
		modules[f] = m
	}
	c := ast.NewCompiler().WithEnablePrintStatements(false)
	if c.Compile(modules); c.Failed() {
		return nil, fmt.Errorf("compiling policies: %w", c.Errors)
	}
	for _, m := range modules {
		for _, r := range m.Rules {
			// As conftest: in v1, "deny[msg] if { ... }" is an object
			// whose values are true (its head has a reference, no name),
			// not the set of messages it was in v0.
			if r.Head.Name != "" || r.Head.Value == nil || len(r.Head.Reference) == 0 {
				continue
			}
			if name := r.Head.Reference[0].Value.String(); (isFailure(name) || isWarning(name)) && r.Head.Value.String() == "true" {
				return nil, fmt.Errorf("%s: rule %s uses \"if\" without \"contains\": in Rego v1 it is an object, not a set of messages (write %s contains msg if { ... }, or parse the policies as v0 with -policy-rego-version=v0)", r.Location, name, name)
			}
		}
	}
	return &Engine{compiler: c, modules: modules}, nil
}

// Result is one message of a rule.
type Result struct {
	Rule     string
	Message  string
	Metadata map[string]any // the other keys of an object message
}

// Report is the outcome of a check.
type Report struct {
	Namespace  string
	Failures   []Result
	Warnings   []Result
	Exceptions []Result
	Successes  int
}

// Failed reports whether any deny or violation rule fired.
func (r *Report) Failed() bool { return len(r.Failures) > 0 }

// Tests is the number of rules counted, as conftest counts them (each
// rule body once).
func (r *Report) Tests() int {
	return r.Successes + len(r.Failures) + len(r.Warnings) + len(r.Exceptions)
}

// Check evaluates the namespace's rules against input (a decoded JSON
// document).
func (e *Engine) Check(ctx context.Context, input any, namespace string) (*Report, error) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	pkg := "data." + namespace
	var rules []string
	count := 0
	seen := map[string]bool{}
	for _, m := range e.modules {
		if m.Package.Path.String() != pkg {
			continue
		}
		for _, r := range m.Rules {
			name := ruleName(r)
			if !isFailure(name) && !isWarning(name) {
				continue
			}
			count++
			if !seen[name] {
				seen[name] = true
				rules = append(rules, name)
			}
		}
	}
	sort.Strings(rules)
	rep := &Report{Namespace: namespace}
	for _, rule := range rules {
		excepted, err := e.excepted(ctx, input, pkg, rule)
		if err != nil {
			return nil, err
		}
		results, err := e.query(ctx, input, pkg+"."+rule, rule)
		if err != nil {
			return nil, err
		}
		switch {
		case excepted:
			// conftest counts one exception per rule and drops its
			// results.
			rep.Exceptions = append(rep.Exceptions, Result{Rule: rule, Message: fmt.Sprintf("%s.exception[_][_] == %q", pkg, strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(rule, "violation_"), "deny_"), "warn_"))})
		case isFailure(rule):
			rep.Failures = append(rep.Failures, results...)
		default:
			rep.Warnings = append(rep.Warnings, results...)
		}
	}
	if n := rep.Tests(); n < count {
		rep.Successes = count - n
	}
	return rep, nil
}

func (e *Engine) excepted(ctx context.Context, input any, pkg, rule string) (bool, error) {
	name := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(rule, "violation_"), "deny_"), "warn_")
	rs, err := rego.New(
		rego.Query(fmt.Sprintf("%s.exception[_][_] == %q", pkg, name)),
		rego.Compiler(e.compiler),
		rego.Input(input),
	).Eval(ctx)
	if err != nil {
		return false, fmt.Errorf("evaluating the exceptions of %s: %w", rule, err)
	}
	return len(rs) > 0, nil
}

func (e *Engine) query(ctx context.Context, input any, query, rule string) ([]Result, error) {
	rs, err := rego.New(
		rego.Query(query),
		rego.Compiler(e.compiler),
		rego.Input(input),
	).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", query, err)
	}
	var out []Result
	for _, r := range rs {
		for _, ex := range r.Expressions {
			// A set rule is a list of messages; anything else (an
			// undefined rule, a boolean) carries none.
			vals, _ := ex.Value.([]any)
			for _, v := range vals {
				switch v := v.(type) {
				case string:
					out = append(out, Result{Rule: rule, Message: v})
				case map[string]any:
					msg, ok := v["msg"]
					if !ok {
						return nil, fmt.Errorf("%s: a result has no msg field: %v", query, v)
					}
					s, ok := msg.(string)
					if !ok {
						return nil, fmt.Errorf("%s: the msg field must be a string: %v", query, v)
					}
					meta := map[string]any{}
					for k, mv := range v {
						if k != "msg" {
							meta[k] = mv
						}
					}
					out = append(out, Result{Rule: rule, Message: s, Metadata: meta})
				}
			}
		}
	}
	return out, nil
}

// ruleName is the name a rule defines, as conftest reads it: deny for
// "deny contains msg if", "" for a rule whose head is a longer reference.
func ruleName(r *ast.Rule) string { return r.Head.Name.String() }

func isFailure(rule string) bool { return failureRule.MatchString(rule) }
func isWarning(rule string) bool { return warningRule.MatchString(rule) }
