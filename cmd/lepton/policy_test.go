package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/open-policy-agent/opa/v1/rego"
)

// The JSON plan is read by real clients of Terraform's format: the
// terraform-json structs (with their own Validate) and an OPA policy of the
// kind written for Terraform plans.

// denyDeletes is a policy as written for Terraform plans (conftest style).
const denyDeletes = `
package terraform.plan

import rego.v1

deny contains msg if {
	rc := input.resource_changes[_]
	rc.change.actions[_] == "delete"
	msg := sprintf("%s would be deleted", [rc.address])
}
`

func parsePlan(t *testing.T, js string) *tfjson.Plan {
	t.Helper()
	var p tfjson.Plan
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		t.Fatalf("terraform-json cannot read the plan: %v", err)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("terraform-json rejects the plan: %v", err)
	}
	return &p
}

func evalDeny(t *testing.T, js string) []string {
	t.Helper()
	var input any
	if err := json.Unmarshal([]byte(js), &input); err != nil {
		t.Fatal(err)
	}
	q, err := rego.New(
		rego.Query("data.terraform.plan.deny"),
		rego.Module("deny_deletes.rego", denyDeletes),
	).PrepareForEval(context.Background())
	if err != nil {
		t.Fatalf("preparing the policy: %v", err)
	}
	rs, err := q.Eval(context.Background(), rego.EvalInput(input))
	if err != nil {
		t.Fatalf("evaluating the policy: %v", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		t.Fatalf("unexpected policy result %+v", rs)
	}
	var msgs []string
	for _, m := range rs[0].Expressions[0].Value.([]any) {
		msgs = append(msgs, m.(string))
	}
	return msgs
}

func TestJSONPlanTerraformClients(t *testing.T) {
	// A plan that only creates: allowed.
	fresh := project(t, "golden/v1")
	r := runEnv(t, fresh, secretEnv, "", "plan", "-json")
	if r.code != 0 {
		t.Fatalf("plan -json: %s", r)
	}
	p := parsePlan(t, r.stdout)
	if p.FormatVersion != "1.2" {
		t.Errorf("format_version %q, want 1.2", p.FormatVersion)
	}
	if len(p.ResourceChanges) != 9 {
		t.Errorf("%d resource changes, want 9", len(p.ResourceChanges))
	}
	for _, rc := range p.ResourceChanges {
		if !rc.Change.Actions.Create() {
			t.Errorf("%s: actions %v, want create", rc.Address, rc.Change.Actions)
		}
		if rc.Mode != tfjson.ManagedResourceMode || rc.Type == "" || rc.Name == "" || rc.ProviderName == "" {
			t.Errorf("%s: incomplete change %+v", rc.Address, rc)
		}
	}
	if msgs := evalDeny(t, r.stdout); len(msgs) != 0 {
		t.Errorf("a plan that only creates was denied: %v", msgs)
	}

	// The golden plan deletes two datasets and replaces the batch inference.
	dir, _ := goldenProject(t)
	r = runEnv(t, dir, secretEnv, "", "plan", "-json")
	if r.code != 0 {
		t.Fatalf("plan -json: %s", r)
	}
	p = parsePlan(t, r.stdout)
	byAddr := map[string]*tfjson.ResourceChange{}
	for _, rc := range p.ResourceChanges {
		byAddr[rc.Address] = rc
	}
	checks := []struct {
		addr string
		ok   func(tfjson.Actions) bool
	}{
		{"dataset.fresh", tfjson.Actions.Create},
		{"dataset.upd", tfjson.Actions.Update},
		{"dataset.gone", tfjson.Actions.Delete},
		{"dataset.shard[2]", tfjson.Actions.Delete},
		{"training.score", tfjson.Actions.DestroyBeforeCreate},
		{"dataset.keep", tfjson.Actions.NoOp},
	}
	for _, c := range checks {
		rc := byAddr[c.addr]
		if rc == nil {
			t.Errorf("no resource change for %s", c.addr)
			continue
		}
		if !c.ok(rc.Change.Actions) {
			t.Errorf("%s: actions %v", c.addr, rc.Change.Actions)
		}
	}
	if rc := byAddr["training.score"]; rc != nil && rc.ActionReason != tfjson.ActionReasonReplaceBecauseCannotUpdate {
		t.Errorf("training.score action_reason %q", rc.ActionReason)
	}
	if rc := byAddr["dataset.shard[2]"]; rc != nil {
		if rc.Index != float64(2) || rc.ActionReason != tfjson.ActionReasonDeleteBecauseCountIndex {
			t.Errorf("dataset.shard[2]: index %v, reason %q", rc.Index, rc.ActionReason)
		}
	}
	if rc := byAddr["dataset.fresh"]; rc != nil {
		as, _ := json.Marshal(rc.Change.AfterSensitive)
		if !strings.Contains(string(as), "true") {
			t.Errorf("dataset.fresh after_sensitive %s does not mark the secret", as)
		}
	}
	if p.PriorState == nil || p.PriorState.Values == nil || len(p.PriorState.Values.RootModule.Resources) != 9 {
		t.Errorf("prior_state lacks the 9 resources in state")
	}
	if p.Config == nil || p.Config.RootModule == nil || len(p.Config.RootModule.Resources) == 0 {
		t.Errorf("configuration lacks the resources")
	}
	if _, ok := p.Variables["token"]; !ok {
		t.Errorf("variables lack token")
	}
	if _, ok := p.OutputChanges["keep_digest"]; !ok {
		t.Errorf("output_changes lack keep_digest")
	}

	msgs := evalDeny(t, r.stdout)
	want := []string{"dataset.gone would be deleted", "dataset.shard[2] would be deleted", "training.score would be deleted"}
	for _, w := range want {
		found := false
		for _, m := range msgs {
			found = found || m == w
		}
		if !found {
			t.Errorf("policy did not deny %q; it said %v", w, msgs)
		}
	}
	if len(msgs) != len(want) {
		t.Errorf("policy denied %v, want exactly %v", msgs, want)
	}

	// show -json of a saved plan is the same document.
	if r := runEnv(t, dir, secretEnv, "", "plan", "-out=saved.plan"); r.code != 0 {
		t.Fatal(r)
	}
	r = runEnv(t, dir, secretEnv, "", "show", "-json", "saved.plan")
	if r.code != 0 {
		t.Fatalf("show -json: %s", r)
	}
	parsePlan(t, r.stdout)
	if msgs := evalDeny(t, r.stdout); len(msgs) != 3 {
		t.Errorf("show -json of the saved plan: policy says %v", msgs)
	}
}
