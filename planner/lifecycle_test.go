package planner_test

import (
	"context"
	"strings"
	"testing"

	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
)

func target(t *testing.T, s string) lang.Target {
	t.Helper()
	tg, err := lang.ParseTarget(s)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

const (
	clusterT4 = `
cluster "a" {
  gpu   = "t4"
  nodes = 1
}
`
	clusterT4Two = `
cluster "a" {
  gpu   = "t4"
  nodes = 2
}
`
	clusterA100 = `
cluster "a" {
  gpu   = "a100"
  nodes = 1
}
`
	clusterA100CBD = `
cluster "a" {
  gpu   = "a100"
  nodes = 1
  lifecycle {
    create_before_destroy = true
  }
}
`
)

// TestLifecycle applies v1, then plans and applies v2, and checks the plan's
// actions, the provider calls the second apply makes (in order: they are
// serial here, since each case has one instance or a chain), and the state
// it leaves.
func TestLifecycle(t *testing.T) {
	cases := []struct {
		name      string
		v1, v2    string
		opts      planner.Options // Refresh is set
		want      string          // "address action" lines
		reason    string          // the action reason of the first change
		calls     []string        // apply and delete calls of the second apply
		state     string          // "address status" lines after it
		added     int
		changed   int
		destroyed int
	}{
		{
			name: "create", v1: ``, v2: clusterT4,
			want: "cluster.a create", calls: []string{"apply cluster.a#1"}, state: "cluster.a ready", added: 1,
		},
		{
			name: "update in place", v1: clusterT4, v2: clusterT4Two,
			want: "cluster.a update", calls: []string{"apply cluster.a#1"}, state: "cluster.a ready", changed: 1,
		},
		{
			name: "no change", v1: clusterT4, v2: clusterT4,
			want: "", state: "cluster.a ready",
		},
		{
			name: "replace because an argument cannot change", v1: clusterT4, v2: clusterA100,
			want: "cluster.a replace", reason: planner.ReasonCannotUpdate,
			calls: []string{"delete cluster.a#1", "apply cluster.a#2"}, state: "cluster.a ready", added: 1, destroyed: 1,
		},
		{
			name: "create_before_destroy creates the new object first", v1: clusterT4, v2: clusterA100CBD,
			want: "cluster.a replace (create before destroy)", reason: planner.ReasonCannotUpdate,
			calls: []string{"apply cluster.a#2", "delete cluster.a#1"}, state: "cluster.a ready", added: 1, destroyed: 1,
		},
		{
			name: "-replace", v1: clusterT4, v2: clusterT4, opts: planner.Options{Replace: []lang.Target{target(t, "cluster.a")}},
			want: "cluster.a replace", reason: planner.ReasonRequested,
			calls: []string{"delete cluster.a#1", "apply cluster.a#2"}, state: "cluster.a ready", added: 1, destroyed: 1,
		},
		{
			name: "removed from the configuration", v1: clusterT4, v2: ``,
			want: "cluster.a delete", reason: planner.ReasonNoResourceConfig,
			calls: []string{"delete cluster.a#1"}, state: "", destroyed: 1,
		},
		{
			name: "destroy", v1: clusterT4, v2: clusterT4, opts: planner.Options{Mode: planner.DestroyMode},
			want: "cluster.a delete", calls: []string{"delete cluster.a#1"}, state: "", destroyed: 1,
		},
		{
			name: "ignore_changes keeps the state's value", v1: clusterT4,
			v2: `cluster "a" {
  gpu = "t4"
  nodes = 5
  lifecycle {
  ignore_changes = [nodes]
}
}
`,
			want: "", state: "cluster.a ready",
		},
		{
			name: "ignore_changes lets other arguments change", v1: clusterT4,
			v2: `cluster "a" {
  gpu = "t4"
  nodes = 5
  spot = true
  lifecycle {
  ignore_changes = [nodes]
}
}
`,
			want: "cluster.a update", calls: []string{"apply cluster.a#1"}, state: "cluster.a ready", changed: 1,
		},
		{
			name: "ignore_changes = all", v1: clusterT4,
			v2: `cluster "a" {
  gpu = "a100"
  nodes = 5
  lifecycle {
  ignore_changes = all
}
}
`,
			want: "", state: "cluster.a ready",
		},
		{
			name: "count grows", v1: `cluster "c" {
  count = 1
  nodes = count.index
}
`, v2: `cluster "c" {
  count = 3
  nodes = count.index
}
`,
			want:  "cluster.c[1] create\ncluster.c[2] create",
			calls: []string{"apply cluster.c[1]#1", "apply cluster.c[2]#1"}, state: "cluster.c[0] ready\ncluster.c[1] ready\ncluster.c[2] ready", added: 2,
		},
		{
			name: "count shrinks", v1: `cluster "c" {
  count = 3
  nodes = count.index
}
`, v2: `cluster "c" {
  count = 1
  nodes = count.index
}
`,
			want: "cluster.c[1] delete\ncluster.c[2] delete", reason: planner.ReasonCountIndex,
			calls: []string{"delete cluster.c[1]#1", "delete cluster.c[2]#1"}, state: "cluster.c[0] ready", destroyed: 2,
		},
		{
			name: "for_each key removed", v1: `cluster "e" {
  for_each = toset(["x", "y"])
  gpu = each.key
}
`, v2: `cluster "e" {
  for_each = toset(["y"])
  gpu = each.key
}
`,
			want: `cluster.e["x"] delete`, reason: planner.ReasonEachKey,
			calls: []string{`delete cluster.e["x"]#1`}, state: `cluster.e["y"] ready`, destroyed: 1,
		},
		{
			name: "count to a single instance", v1: `cluster "c" {
  count = 1
}
`, v2: `cluster "c" {}
`,
			want: "cluster.c create\ncluster.c[0] delete", calls: nil, state: "cluster.c ready", added: 1, destroyed: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.up(c.v1)
			w.fake.reset()
			opts := c.opts
			opts.Refresh = true
			pl := w.plan(c.v2, opts)
			if got := actions(pl); got != c.want {
				t.Fatalf("plan:\n%s\nwant:\n%s", got, c.want)
			}
			if c.reason != "" {
				for _, ch := range pl.Changes {
					if ch.Action != planner.NoOp && ch.ActionReason != c.reason {
						t.Errorf("%s: action reason %q, want %q", ch.Address(), ch.ActionReason, c.reason)
					}
				}
			}
			if got := pl.HasChanges(); got != (c.want != "") {
				t.Errorf("HasChanges() = %v", got)
			}
			w.fake.reset()
			res, d := w.applyWith(context.Background(), c.v2, pl, planner.ApplyOptions{Parallelism: 1})
			if d.HasErrors() {
				t.Fatalf("apply: %v", d)
			}
			calls := w.fake.callsOf("apply", "delete")
			if c.calls != nil && strings.Join(calls, "\n") != strings.Join(c.calls, "\n") {
				t.Errorf("provider calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(c.calls, "\n"))
			}
			if got := w.addresses(); got != c.state {
				t.Errorf("state:\n%s\nwant:\n%s", got, c.state)
			}
			if res.Added != c.added || res.Changed != c.changed || res.Destroyed != c.destroyed {
				t.Errorf("apply counted %d added, %d changed, %d destroyed; want %d, %d, %d", res.Added, res.Changed, res.Destroyed, c.added, c.changed, c.destroyed)
			}
			// What the state says is what exists, and planning again finds
			// nothing to do (except in destroy mode, whose v2 is still there).
			if c.opts.Mode != planner.DestroyMode {
				if again := actions(w.plan(c.v2, planner.Options{Refresh: true})); again != "" {
					t.Errorf("a second plan is not empty:\n%s", again)
				}
			}
			var live []string
			for _, r := range w.st.Resources {
				if len(w.fake.objectsAt(r.Address)) != 1 {
					live = append(live, r.Address)
				}
			}
			if len(live) > 0 {
				t.Errorf("instances in state without exactly one real object: %v", live)
			}
		})
	}
}
