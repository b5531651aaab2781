package planner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/leptonml/lepton/planner"
	"github.com/leptonml/lepton/providers"
	"github.com/zclconf/go-cty/cty"
)

// A training whose apply changes its cluster's real object (it replaced a
// lost node) has the planner read the cluster again (Env.Reread): the new
// value is in state and for Lookup at once, so the next plan finds neither
// drift nor change. An address not in state is an error.
func TestApplyRereadsAnotherInstance(t *testing.T) {
	const v1 = "cluster \"a\" {\n  nodes = 1\n}\n\ntraining \"t\" {\n  cluster = cluster.a\n  epochs  = 3\n}\n"
	v2 := strings.Replace(v1, "epochs  = 3", "epochs  = 4", 1)
	w := newWorld(t)
	w.up(v1)
	before := w.attr("cluster.a", "status")

	var seen string
	var missing error
	w.fake.onApply = map[string]func(context.Context, providers.ApplyRequest) error{
		"training.t": func(ctx context.Context, req providers.ApplyRequest) error {
			if req.Env.Reread == nil {
				return fmt.Errorf("no Env.Reread during apply")
			}
			w.fake.drift("cluster.a", map[string]cty.Value{"status": cty.StringVal("adopted-node")})
			if err := req.Env.Reread(ctx, "cluster.a"); err != nil {
				return err
			}
			v, _ := req.Env.Lookup("cluster.a")
			seen = v.GetAttr("status").AsString()
			missing = req.Env.Reread(ctx, "cluster.nope")
			return nil
		},
	}
	w.up(v2)
	if seen != "adopted-node" || before == "adopted-node" {
		t.Errorf("Lookup after Reread: status %q (before %q)", seen, before)
	}
	if missing == nil {
		t.Error("Reread of an address not in state succeeded")
	}
	if got := w.attr("cluster.a", "status"); got != "adopted-node" {
		t.Errorf("cluster.a's status in state: %q", got)
	}
	w.fake.onApply = nil
	pl := w.plan(v2, planner.Options{Refresh: true})
	if len(pl.Drift) != 0 || pl.HasChanges() {
		t.Errorf("plan after the apply: %d drift, changes:\n%s", len(pl.Drift), actions(pl))
	}
}
