package main

import (
	"encoding/json"
	"testing"
)

// TestNoOpWithoutDecoding: after an apply, a plan finds the inline datasets
// up to date without decoding their state (planner.argsUpToDate); everything
// that shows their values must still show them: outputs that refer to them,
// the JSON plan's no-op changes, a saved plan and its apply.
func TestNoOpWithoutDecoding(t *testing.T) {
	dir := project(t, "basic")
	ok(t, dir, "apply", "-auto-approve")

	r := ok(t, dir, "plan", "-detailed-exitcode")
	contains(t, r.stdout, "No changes.")

	// The JSON plan: every instance a no-op, with its values.
	r = ok(t, dir, "plan", "-json")
	var plan struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				Actions []string        `json:"actions"`
				Before  json.RawMessage `json:"before"`
				After   json.RawMessage `json:"after"`
			} `json:"change"`
		} `json:"resource_changes"`
		PlannedValues struct {
			RootModule struct {
				Resources []struct {
					Address string         `json:"address"`
					Values  map[string]any `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"planned_values"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
		t.Fatalf("plan -json: %v\n%s", err, r.stdout)
	}
	if len(plan.ResourceChanges) != 6 {
		t.Fatalf("%d resource changes, want 6", len(plan.ResourceChanges))
	}
	for _, c := range plan.ResourceChanges {
		if len(c.Change.Actions) != 1 || c.Change.Actions[0] != "no-op" {
			t.Errorf("%s: actions %v, want [no-op]", c.Address, c.Change.Actions)
		}
		var before, after map[string]any
		json.Unmarshal(c.Change.Before, &before)
		json.Unmarshal(c.Change.After, &after)
		if before["digest"] == nil || after["digest"] == nil || before["rows"] == nil {
			t.Errorf("%s: no-op change without its values: before %s after %s", c.Address, c.Change.Before, c.Change.After)
		}
	}
	for _, res := range plan.PlannedValues.RootModule.Resources {
		if res.Values["digest"] == nil {
			t.Errorf("planned_values: %s has no digest", res.Address)
		}
	}

	// An output that refers to an up-to-date dataset still has its value.
	edit(t, dir, "main.lep.hcl", `output "a_rows" {`, "output \"a_cols\" {\n  value = dataset.a.columns\n}\n\noutput \"a_rows\" {")
	r = exits(t, 2, dir, "plan", "-detailed-exitcode")
	contains(t, r.stdout, "Changes to Outputs:", `+ a_cols = ["x"]`)

	// A saved plan of no resource changes applies, and keeps the state's values.
	ok(t, dir, "plan", "-out", "p.plan")
	r = ok(t, dir, "apply", "p.plan")
	contains(t, r.stdout, "Apply complete! Resources: 0 added, 0 changed, 0 destroyed.", "a_rows = 4")
	st := readState(t, dir)
	if len(st.Resources) != 6 {
		t.Fatalf("state holds %v after applying the saved plan", addresses(st))
	}
	r = ok(t, dir, "output", "-json", "a_cols")
	contains(t, r.stdout, `"x"`)
	ok(t, dir, "plan", "-detailed-exitcode")

	// -refresh=false takes the same shortcut.
	r = ok(t, dir, "plan", "-refresh=false", "-detailed-exitcode")
	contains(t, r.stdout, "No changes.")
}
