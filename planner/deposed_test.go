package planner_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
)

// killDuring applies pl and, while the provider holds the first call of op
// on cluster.a, takes the state on disk (what a kill at that instant leaves)
// and then cancels the apply. It returns that state.
func killDuring(t *testing.T, w *world, src string, pl *planner.Plan, op string) *state.State {
	t.Helper()
	g := w.fake.gate(op, "cluster.a")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.applyWith(ctx, src, pl, planner.ApplyOptions{})
	}()
	<-g.entered
	onDisk := w.written()
	cancel()
	<-done
	return onDisk
}

// TestKilledCreateBeforeDestroy: an apply killed during a
// create_before_destroy replacement leaves the old object in state, deposed,
// whether it dies while creating the new object or while deleting the old;
// the next plan shows its delete and the next apply deletes it (and resumes
// the create it interrupted, from the id the provider recorded).
func TestKilledCreateBeforeDestroy(t *testing.T) {
	cases := []struct {
		op    string // the call the kill interrupts
		state string // the state on disk at the kill
		plan  string
		calls []string // of the next apply
	}{
		{
			// The replacement's ready record may still be on its way to disk
			// when the delete starts (writes are grouped): on disk it is
			// ready, or running with the id its create recorded.
			op: "delete", state: "cluster.a ready zone=cluster.a#2 private=obj:cluster.a#2\ndeposed cluster.a zone=cluster.a#1",
			plan: "cluster.a deposed delete", calls: []string{"delete cluster.a#1"},
		},
		{
			op: "apply", state: "cluster.a running zone=null private=obj:cluster.a#2\ndeposed cluster.a zone=cluster.a#1",
			plan: "cluster.a create\ncluster.a deposed delete", calls: []string{"apply cluster.a#2", "delete cluster.a#1"},
		},
	}
	for _, c := range cases {
		t.Run("killed during "+c.op, func(t *testing.T) {
			w := newWorld(t)
			w.up(clusterT4)
			pl := w.plan(clusterA100CBD, planner.Options{Refresh: true})
			onDisk := killDuring(t, w, clusterA100CBD, pl, c.op)
			if r := onDisk.Find("cluster.a"); c.op == "delete" && r != nil && r.Status == state.StatusRunning {
				// Not yet written ready: the next apply resumes (and finds)
				// the object its create recorded, then deletes the old one.
				c.state = "cluster.a running zone=null private=obj:cluster.a#2\ndeposed cluster.a zone=cluster.a#1"
				c.plan = "cluster.a create\ncluster.a deposed delete"
				c.calls = []string{"apply cluster.a#2", "delete cluster.a#1"}
			}
			if got := describeState(t, onDisk); got != c.state {
				t.Fatalf("state on disk at the kill:\n%s\nwant:\n%s", got, c.state)
			}
			// The killed process wrote nothing more: go on from what was on disk.
			w.st = onDisk
			w.fake.reset()
			next := w.plan(clusterA100CBD, planner.Options{Refresh: true})
			if got := actions(next); got != c.plan {
				t.Fatalf("next plan:\n%s\nwant:\n%s", got, c.plan)
			}
			var human bytes.Buffer
			planner.RenderHuman(&human, next, planner.Colors{})
			if want := "# cluster.a (deposed object " + onDisk.Deposed[0].Key + ") will be destroyed"; !strings.Contains(human.String(), want) {
				t.Errorf("the plan does not say %q:\n%s", want, human.String())
			}
			w.fake.reset()
			if _, d := w.applyWith(context.Background(), clusterA100CBD, next, planner.ApplyOptions{Parallelism: 1}); d.HasErrors() {
				t.Fatalf("next apply: %v", d)
			}
			if got := w.fake.callsOf("apply", "delete"); strings.Join(got, "\n") != strings.Join(c.calls, "\n") {
				t.Errorf("next apply's calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.calls, "\n"))
			}
			if got := describeState(t, w.st); got != "cluster.a ready zone=cluster.a#2 private=obj:cluster.a#2" {
				t.Errorf("state at the end:\n%s", got)
			}
			if objs := w.fake.objectsAt("cluster.a"); strings.Join(objs, ",") != "cluster.a#2" {
				t.Errorf("real objects at the end: %v", objs)
			}
			if again := actions(w.plan(clusterA100CBD, planner.Options{Refresh: true})); again != "" {
				t.Errorf("a third plan: %s", again)
			}
		})
	}
}

// describeState lists a state's instances and deposed objects with the
// fake's object identity and private data.
func describeState(t *testing.T, st *state.State) string {
	t.Helper()
	var out []string
	zone := func(r *state.Resource) string {
		ty, _ := fakeSchema(r.Kind)
		v, err := ctyUnmarshal(r.Attributes, ty)
		if err != nil {
			t.Fatalf("%s: %v", r.Address, err)
		}
		return valueText(v.GetAttr(fakeIDAttr[r.Kind]))
	}
	for _, r := range st.Resources {
		s := r.Address + " " + r.Status + " zone=" + zone(r)
		if len(r.Private) > 0 {
			s += " private=" + string(r.Private)
		}
		out = append(out, s)
	}
	for _, d := range st.Deposed {
		out = append(out, "deposed "+d.Address+" zone="+zone(&d.Resource))
	}
	return strings.Join(out, "\n")
}

// TestDeposed: what happens to a deposed object in the plans and applies
// that follow a create_before_destroy whose delete failed.
func TestDeposed(t *testing.T) {
	const two = clusterA100CBD + `
cluster "b" {
  nodes = 2
}
`
	// deposedWorld leaves cluster.a's old object deposed.
	deposedWorld := func(t *testing.T) (*world, string) {
		w := newWorld(t)
		w.up(strings.Replace(two, `"a100"`, `"t4"`, 1))
		pl := w.plan(two, planner.Options{Refresh: true})
		w.fake.fail("delete", "cluster.a", 1, errors.New("busy"))
		if _, d := w.applyWith(context.Background(), two, pl, planner.ApplyOptions{}); !d.HasErrors() {
			t.Fatal("the delete did not fail")
		}
		if len(w.st.Deposed) != 1 {
			t.Fatalf("deposed: %v", w.st.Deposed)
		}
		w.fake.reset()
		return w, w.st.Deposed[0].Key
	}

	t.Run("destroy deletes it with the rest", func(t *testing.T) {
		w, _ := deposedWorld(t)
		pl := w.plan(two, planner.Options{Refresh: true, Mode: planner.DestroyMode})
		if got := actions(pl); got != "cluster.a delete\ncluster.a deposed delete\ncluster.b delete" {
			t.Fatalf("plan:\n%s", got)
		}
		res, d := w.applyWith(context.Background(), two, pl, planner.ApplyOptions{})
		if d.HasErrors() {
			t.Fatal(d)
		}
		if res.Destroyed != 3 || len(w.st.Resources) != 0 || len(w.st.Deposed) != 0 || len(w.fake.objectsAt("cluster.a")) != 0 {
			t.Errorf("after destroy: %+v, state %q, deposed %v", res, w.addresses(), w.st.Deposed)
		}
	})

	t.Run("-target elsewhere leaves it", func(t *testing.T) {
		w, _ := deposedWorld(t)
		pl := w.plan(strings.Replace(two, "nodes = 2", "nodes = 3", 1), planner.Options{Refresh: true, Targets: []lang.Target{target(t, "cluster.b")}})
		if got := actions(pl); got != "cluster.b update" {
			t.Errorf("plan:\n%s", got)
		}
		pl = w.plan(two, planner.Options{Refresh: true, Targets: []lang.Target{target(t, "cluster.a")}})
		if got := actions(pl); got != "cluster.a deposed delete" {
			t.Errorf("plan with -target=cluster.a:\n%s", got)
		}
	})

	t.Run("a delete that fails again keeps it", func(t *testing.T) {
		w, key := deposedWorld(t)
		pl := w.plan(two, planner.Options{Refresh: true})
		w.fake.fail("delete", "cluster.a", 1, errors.New("still busy"))
		hooks := &recHooks{}
		_, d := w.applyWith(context.Background(), two, pl, planner.ApplyOptions{Hooks: hooks})
		if want := "cluster.a (deposed object " + key + "): delete failed"; !strings.Contains(diagText(d), want) {
			t.Errorf("diagnostics %q do not say %q", diagText(d), want)
		}
		if len(w.st.Deposed) != 1 || w.st.Deposed[0].Key != key {
			t.Errorf("deposed after a second failure: %v", w.st.Deposed)
		}
		if !contains(hooks.list(), "start cluster.a (deposed object "+key+") delete") {
			t.Errorf("hooks: %v", hooks.list())
		}
	})

	t.Run("it survives a saved plan and shows in every rendering", func(t *testing.T) {
		w, key := deposedWorld(t)
		pl := w.plan(two, planner.Options{Refresh: true})
		b, err := pl.Encode("test")
		if err != nil {
			t.Fatal(err)
		}
		saved, err := planner.DecodePlan(b)
		if err != nil {
			t.Fatal(err)
		}
		if actions(saved) != actions(pl) {
			t.Errorf("saved plan:\n%s\nwant:\n%s", actions(saved), actions(pl))
		}
		human, js, md := renders(t, w, saved, two)
		for name, s := range map[string]string{"human": human, "json": js, "markdown": md} {
			if !strings.Contains(s, key) {
				t.Errorf("the %s rendering does not name the deposed object %s:\n%s", name, key, s)
			}
		}
		if !strings.Contains(js, `"deposed": "`+key+`"`) {
			t.Errorf("JSON plan has no deposed key:\n%s", js)
		}
		if _, d := w.applyWith(context.Background(), two, saved, planner.ApplyOptions{}); d.HasErrors() {
			t.Fatal(d)
		}
		if len(w.st.Deposed) != 0 || strings.Join(w.fake.objectsAt("cluster.a"), ",") != "cluster.a#2" {
			t.Errorf("after applying the saved plan: deposed %v, objects %v", w.st.Deposed, w.fake.objectsAt("cluster.a"))
		}
	})
}

// TestCreateBeforeDestroyCreateFails: when the replacement cannot be
// created at all, the old object holds its address again (not deposed), and
// nothing is deleted.
func TestCreateBeforeDestroyCreateFails(t *testing.T) {
	w := newWorld(t)
	w.up(clusterT4)
	pl := w.plan(clusterA100CBD, planner.Options{Refresh: true})
	w.fake.reset()
	w.fake.fail("apply", "cluster.a", 1, errors.New("no capacity"))
	if _, d := w.applyWith(context.Background(), clusterA100CBD, pl, planner.ApplyOptions{}); !strings.Contains(diagText(d), "no capacity") {
		t.Fatalf("diagnostics: %s", diagText(d))
	}
	if got := describeState(t, w.st); got != "cluster.a ready zone=cluster.a#1 private=obj:cluster.a#1" {
		t.Errorf("state:\n%s", got)
	}
	if calls := w.fake.callsOf("delete"); len(calls) != 0 {
		t.Errorf("deleted %v", calls)
	}
	if got := actions(w.plan(clusterA100CBD, planner.Options{Refresh: true})); got != "cluster.a replace (create before destroy)" {
		t.Errorf("next plan: %s", got)
	}
}

// TestResumedReplacementFails: after a kill while creating a
// create_before_destroy replacement, the next apply resumes the create
// before deleting the deposed old object; when the create fails again, the
// old object is not deleted.
func TestResumedReplacementFails(t *testing.T) {
	w := newWorld(t)
	w.up(clusterT4)
	pl := w.plan(clusterA100CBD, planner.Options{Refresh: true})
	w.st = killDuring(t, w, clusterA100CBD, pl, "apply")
	next := w.plan(clusterA100CBD, planner.Options{Refresh: true})
	w.fake.reset()
	w.fake.fail("apply", "cluster.a", 1, errors.New("no capacity"))
	_, d := w.applyWith(context.Background(), clusterA100CBD, next, planner.ApplyOptions{Parallelism: 10})
	if !strings.Contains(diagText(d), "no capacity") {
		t.Fatalf("diagnostics: %s", diagText(d))
	}
	if calls := w.fake.callsOf("delete"); len(calls) != 0 {
		t.Errorf("the old object was deleted although its replacement failed: %v", calls)
	}
	if objs := w.fake.objectsAt("cluster.a"); strings.Join(objs, ",") != "cluster.a#1" {
		t.Errorf("real objects: %v", objs)
	}
	if len(w.st.Deposed) != 1 {
		t.Errorf("the old object is no longer in state: %s", describeState(t, w.st))
	}
}
