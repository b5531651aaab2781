package planner_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
	"github.com/zclconf/go-cty/cty"
)

// chain is three clusters: b uses a's zone (the fake's object id, known
// after apply), c stands alone.
const chain = `
cluster "a" {
  gpu   = "t4"
  nodes = 1
}

cluster "b" {
  image = cluster.a.zone
}

cluster "c" {
  nodes = 3
}
`

// TestReplaceOrdering checks the order of provider calls when a replaced
// resource has a dependent that is updated because of it.
func TestReplaceOrdering(t *testing.T) {
	const v1 = `
cluster "a" {
  gpu = "t4"
  %s
}

cluster "b" {
  image = cluster.a.zone
}
`
	cases := []struct {
		name  string
		cbd   string
		calls []string
	}{
		{"delete then create", "", []string{"delete cluster.a#1", "apply cluster.a#2", "apply cluster.b#1"}},
		// The dependent moves to the new object before the old one goes.
		{"create before destroy", "lifecycle {\n create_before_destroy = true\n}", []string{"apply cluster.a#2", "apply cluster.b#1", "delete cluster.a#1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			src := strings.Replace(v1, "%s", c.cbd, 1)
			w.up(src)
			v2 := strings.Replace(src, `"t4"`, `"a100"`, 1)
			pl := w.plan(v2, planner.Options{Refresh: true})
			if b := change(t, pl, "cluster.b"); b.Action != planner.Update {
				t.Fatalf("cluster.b: %s, want update", b.Action)
			}
			w.fake.reset()
			if _, d := w.applyWith(context.Background(), v2, pl, planner.ApplyOptions{Parallelism: 10}); d.HasErrors() {
				t.Fatalf("apply: %v", d)
			}
			if got := w.fake.callsOf("apply", "delete"); strings.Join(got, "\n") != strings.Join(c.calls, "\n") {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.calls, "\n"))
			}
			if got := w.attr("cluster.b", "image"); got != "cluster.a#2" {
				t.Errorf("cluster.b.image = %s, want the new object's zone", got)
			}
		})
	}
}

// TestCreateBeforeDestroyDeleteFails: the replacement is created and kept;
// the failure is reported and names the instance; the old object stays in
// state as deposed, and the next apply deletes it.
func TestCreateBeforeDestroyDeleteFails(t *testing.T) {
	w := newWorld(t)
	w.up(clusterT4)
	pl := w.plan(clusterA100CBD, planner.Options{Refresh: true})
	w.fake.reset()
	w.fake.fail("delete", "cluster.a", 1, errors.New("the cloud said no"))
	hooks := &recHooks{}
	_, d := w.applyWith(context.Background(), clusterA100CBD, pl, planner.ApplyOptions{Hooks: hooks})
	if !d.HasErrors() || !strings.Contains(diagText(d), "cluster.a") || !strings.Contains(diagText(d), "the cloud said no") {
		t.Fatalf("apply diagnostics %q do not report the failed delete of cluster.a", diagText(d))
	}
	if got := w.fake.callsOf("apply", "delete"); strings.Join(got, ",") != "apply cluster.a#2,delete cluster.a#1" {
		t.Errorf("calls %v", got)
	}
	if got := w.attr("cluster.a", "zone"); got != "cluster.a#2" {
		t.Errorf("state holds object %s at cluster.a, want the replacement cluster.a#2", got)
	}
	if got := w.attr("cluster.a", "gpu"); got != "a100" {
		t.Errorf("state's cluster.a.gpu = %s", got)
	}
	if objs := w.fake.objectsAt("cluster.a"); len(objs) != 2 {
		t.Errorf("real objects %v: the old one should still exist, its delete failed", objs)
	}
	if len(w.st.Deposed) != 1 || w.st.Deposed[0].Address != "cluster.a" {
		t.Fatalf("state's deposed objects: %+v", w.st.Deposed)
	}
	key := w.st.Deposed[0].Key
	if !contains(hooks.list(), "failed cluster.a (deposed object "+key+") delete: the cloud said no") {
		t.Errorf("hooks: %v", hooks.list())
	}
	// The next plan deletes the deposed object, and nothing else.
	pl = w.plan(clusterA100CBD, planner.Options{Refresh: true})
	if got := actions(pl); got != "cluster.a deposed delete" {
		t.Errorf("plan after the failed delete:\n%s", got)
	}
	w.fake.reset()
	if _, d := w.applyWith(context.Background(), clusterA100CBD, pl, planner.ApplyOptions{}); d.HasErrors() {
		t.Fatalf("second apply: %v", diagText(d))
	}
	if got := w.fake.callsOf("apply", "delete"); strings.Join(got, ",") != "delete cluster.a#1" {
		t.Errorf("second apply's calls %v", got)
	}
	if objs := w.fake.objectsAt("cluster.a"); len(objs) != 1 || len(w.st.Deposed) != 0 {
		t.Errorf("after the second apply: objects %v, deposed %v", objs, w.st.Deposed)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestPreventDestroy(t *testing.T) {
	const guarded = `
cluster "keep" {
  gpu = "%s"
  lifecycle {
    prevent_destroy = true
  }
}

cluster "other" {
  gpu = "%s"
}
`
	src := func(a, b string) string {
		return strings.Replace(strings.Replace(guarded, "%s", a, 1), "%s", b, 1)
	}
	w := newWorld(t)
	w.up(src("t4", "t4"))
	cases := []struct {
		name    string
		src     string
		opts    planner.Options
		wantErr bool
	}{
		{"an update is allowed", `
cluster "keep" {
  gpu   = "t4"
  nodes = 4
  lifecycle {
    prevent_destroy = true
  }
}
cluster "other" {
  gpu = "t4"
}
`, planner.Options{}, false},
		{"a replacement fails", src("a100", "t4"), planner.Options{}, true},
		{"-replace fails", src("t4", "t4"), planner.Options{Replace: []lang.Target{target(t, "cluster.keep")}}, true},
		{"-target elsewhere plans the rest", src("a100", "a100"), planner.Options{Targets: []lang.Target{target(t, "cluster.other")}}, false},
		{"destroy fails", src("t4", "t4"), planner.Options{Mode: planner.DestroyMode}, true},
		{"destroy of the rest with -target", src("t4", "t4"), planner.Options{Mode: planner.DestroyMode, Targets: []lang.Target{target(t, "cluster.other")}}, false},
		{"removing an instance of a count fails", `
cluster "keep" {
  count = 0
  gpu   = "t4"
  lifecycle {
    prevent_destroy = true
  }
}
cluster "other" {
  gpu = "t4"
}
`, planner.Options{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Refresh = true
			pl, d := w.planDiags(c.src, c.opts)
			if !c.wantErr {
				if d.HasErrors() {
					t.Fatalf("plan: %v", d)
				}
				return
			}
			if !d.HasErrors() || !pl.Errored {
				t.Fatalf("plan did not fail: %v", d)
			}
			var found bool
			for _, x := range d {
				if x.Summary != "Instance cannot be destroyed" {
					continue
				}
				found = true
				if !strings.Contains(x.Detail, "cluster.keep") {
					t.Errorf("the error does not name the resource: %s", x.Detail)
				}
				if x.Subject == nil || x.Subject.Filename != "main.lep.hcl" || x.Subject.Start.Line != 2 {
					t.Errorf("the error points at %v, want main.lep.hcl line 2", x.Subject)
				}
			}
			if !found {
				t.Errorf("no prevent_destroy error in %s", diagText(d))
			}
		})
	}
}

func TestTarget(t *testing.T) {
	cases := []struct {
		name    string
		targets []string
		mode    planner.Mode
		want    string
	}{
		{"a resource and what it depends on", []string{"cluster.b"}, planner.NormalMode, "cluster.a create\ncluster.b create"},
		{"a resource alone", []string{"cluster.c"}, planner.NormalMode, "cluster.c create"},
		{"an instance of a count", []string{"cluster.n[1]"}, planner.NormalMode, "cluster.n[1] create"},
		{"destroy takes what depends on the target", []string{"cluster.a"}, planner.DestroyMode, "cluster.a delete\ncluster.b delete"},
		{"destroy of a leaf", []string{"cluster.b"}, planner.DestroyMode, "cluster.b delete"},
		{"destroy of an instance", []string{"cluster.n[0]"}, planner.DestroyMode, "cluster.n[0] delete"},
	}
	src := chain + `
cluster "n" {
  count = 2
  nodes = count.index
}
`
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			if c.mode == planner.DestroyMode {
				w.up(src)
			}
			opts := planner.Options{Refresh: true, Mode: c.mode}
			for _, s := range c.targets {
				opts.Targets = append(opts.Targets, target(t, s))
			}
			pl := w.plan(src, opts)
			if got := actions(pl); got != c.want {
				t.Fatalf("plan:\n%s\nwant:\n%s", got, c.want)
			}
			if _, d := w.applyWith(context.Background(), src, pl, planner.ApplyOptions{}); d.HasErrors() {
				t.Fatalf("apply: %v", d)
			}
			// The rest is planned by the next plan without -target.
			rest := w.plan(src, planner.Options{Refresh: true, Mode: c.mode})
			for _, ch := range rest.Changes {
				if ch.Action != planner.NoOp && strings.Contains(c.want, ch.Address()+" ") {
					t.Errorf("%s is planned again: %s", ch.Address(), ch.Action)
				}
			}
		})
	}

	t.Run("an unknown target is an error", func(t *testing.T) {
		w := newWorld(t)
		_, d := w.planDiags(chain, planner.Options{Refresh: true, Targets: []lang.Target{target(t, "cluster.nope")}})
		if !d.HasErrors() || !strings.Contains(diagText(d), "cluster.nope") {
			t.Errorf("diagnostics: %s", diagText(d))
		}
	})
}

// TestRefresh covers what refresh finds: an object changed or deleted
// outside lepton, and plans that do not refresh or only refresh.
func TestRefresh(t *testing.T) {
	cases := []struct {
		name    string
		outside func(f *fakeProvider)
		opts    planner.Options
		drift   string // "address action" of the drift
		want    string // the plan's actions
		reads   int
		state   string // cluster.a's nodes in state after applying the plan ("gone": not there)
	}{
		{
			name: "changed outside", outside: func(f *fakeProvider) { f.drift("cluster.a", map[string]cty.Value{"nodes": cty.NumberIntVal(7)}) },
			opts: planner.Options{Refresh: true}, drift: "cluster.a update", want: "cluster.a update", reads: 1, state: "1",
		},
		{
			name: "deleted outside", outside: func(f *fakeProvider) { f.vanish("cluster.a") },
			opts: planner.Options{Refresh: true}, drift: "cluster.a delete", want: "cluster.a create", reads: 1, state: "1",
		},
		{
			name: "-refresh=false does not see it", outside: func(f *fakeProvider) { f.drift("cluster.a", map[string]cty.Value{"nodes": cty.NumberIntVal(7)}) },
			opts: planner.Options{}, drift: "", want: "", reads: 0, state: "1",
		},
		{
			name: "-refresh-only records the change", outside: func(f *fakeProvider) { f.drift("cluster.a", map[string]cty.Value{"nodes": cty.NumberIntVal(7)}) },
			opts: planner.Options{Refresh: true, Mode: planner.RefreshOnlyMode}, drift: "cluster.a update", want: "", reads: 1, state: "7",
		},
		{
			name: "-refresh-only forgets a deleted object", outside: func(f *fakeProvider) { f.vanish("cluster.a") },
			opts: planner.Options{Refresh: true, Mode: planner.RefreshOnlyMode}, drift: "cluster.a delete", want: "", reads: 1, state: "gone",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.up(clusterT4)
			c.outside(w.fake)
			w.fake.reset()
			pl := w.plan(clusterT4, c.opts)
			var drift []string
			for _, d := range pl.Drift {
				drift = append(drift, d.Address()+" "+d.Action.String())
			}
			if got := strings.Join(drift, "\n"); got != c.drift {
				t.Errorf("drift %q, want %q", got, c.drift)
			}
			if got := actions(pl); got != c.want {
				t.Errorf("plan %q, want %q", got, c.want)
			}
			if got := w.fake.count("read"); got != c.reads {
				t.Errorf("%d reads, want %d", got, c.reads)
			}
			if pl.HasChanges() != (c.want != "" || (c.drift != "" && c.opts.Mode == planner.RefreshOnlyMode)) {
				t.Errorf("HasChanges() = %v", pl.HasChanges())
			}
			w.fake.reset()
			if _, d := w.applyWith(context.Background(), clusterT4, pl, planner.ApplyOptions{}); d.HasErrors() {
				t.Fatalf("apply: %v", d)
			}
			if c.opts.Mode == planner.RefreshOnlyMode {
				if calls := w.fake.callsOf("apply", "delete"); len(calls) > 0 {
					t.Errorf("a refresh-only apply called the provider: %v", calls)
				}
			}
			got := "gone"
			if w.st.Find("cluster.a") != nil {
				got = w.attr("cluster.a", "nodes")
			}
			if got != c.state {
				t.Errorf("cluster.a.nodes in state = %s, want %s", got, c.state)
			}
		})
	}

	t.Run("a failed read fails the plan", func(t *testing.T) {
		w := newWorld(t)
		w.up(chain)
		w.fake.fail("read", "cluster.c", 0, errors.New("timeout talking to the cloud"))
		pl, d := w.planDiags(chain, planner.Options{Refresh: true})
		if !d.HasErrors() || !pl.Errored || !strings.Contains(diagText(d), "timeout talking to the cloud") {
			t.Errorf("plan: errored=%v %s", pl != nil && pl.Errored, diagText(d))
		}
		pl, d = w.planDiags(chain, planner.Options{Refresh: true, Mode: planner.DestroyMode})
		if !d.HasErrors() || !pl.Errored {
			t.Errorf("destroy plan: %s", diagText(d))
		}
	})

	t.Run("a removed resource that is already gone is dropped", func(t *testing.T) {
		w := newWorld(t)
		w.up(chain)
		w.fake.vanish("cluster.c")
		pl := w.plan(strings.Replace(chain, "cluster \"c\"", "cluster \"d\"", 1), planner.Options{Refresh: true})
		if got := actions(pl); got != "cluster.d create" {
			t.Errorf("plan:\n%s", got)
		}
	})
}

// TestInterrupted: an apply cancelled while a provider call runs leaves the
// instance marked running; the next plan resumes it (a create, not a
// replacement) without reading it, and what depended on it waits.
func TestInterrupted(t *testing.T) {
	w := newWorld(t)
	pl := w.plan(chain, planner.Options{Refresh: true})
	g := w.fake.gate("apply", "cluster.a")
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		res planner.ApplyResult
		err string
	}
	done := make(chan result)
	go func() {
		res, d := w.applyWith(ctx, chain, pl, planner.ApplyOptions{Parallelism: 1})
		done <- result{res, diagText(d)}
	}()
	<-g.entered
	cancel()
	r := <-done
	if !r.res.Interrupted {
		t.Errorf("apply result %+v is not marked interrupted", r.res)
	}
	if st := w.st.Find("cluster.a"); st == nil || st.Status != "running" {
		t.Fatalf("state after the interrupt:\n%s", w.addresses())
	}
	if w.st.Find("cluster.b") != nil {
		t.Errorf("cluster.b, which depends on cluster.a, was applied:\n%s", w.addresses())
	}

	w.fake.reset()
	again := w.plan(chain, planner.Options{Refresh: true})
	a := change(t, again, "cluster.a")
	if a.Action != planner.Create || !strings.Contains(a.Reason, "interrupted") {
		t.Errorf("cluster.a: %s (%s), want a create that resumes", a.Action, a.Reason)
	}
	for _, c := range w.fake.callsOf("read") {
		if strings.HasPrefix(c, "read cluster.a") {
			t.Errorf("a running instance was read: %s", c)
		}
	}
	if _, d := w.applyWith(context.Background(), chain, again, planner.ApplyOptions{}); d.HasErrors() {
		t.Fatalf("apply: %v", d)
	}
	if got := w.addresses(); got != "cluster.a ready\ncluster.b ready\ncluster.c ready" {
		t.Errorf("state:\n%s", got)
	}
}

// TestStop: closing Stop lets running work finish and starts nothing new.
func TestStop(t *testing.T) {
	w := newWorld(t)
	pl := w.plan(chain, planner.Options{Refresh: true})
	g := w.fake.gate("apply", "cluster.a")
	stop := make(chan struct{})
	done := make(chan planner.ApplyResult)
	go func() {
		res, _ := w.applyWith(context.Background(), chain, pl, planner.ApplyOptions{Parallelism: 1, Stop: stop})
		done <- res
	}()
	<-g.entered
	close(stop)
	g.Release(1)
	res := <-done
	if !res.Interrupted {
		t.Errorf("result %+v not interrupted", res)
	}
	if st := w.st.Find("cluster.a"); st == nil || st.Status != "ready" {
		t.Errorf("cluster.a, which was running, did not finish:\n%s", w.addresses())
	}
	if w.st.Find("cluster.b") != nil {
		t.Errorf("cluster.b started after stop:\n%s", w.addresses())
	}
}

// TestFailedApply covers tainted instances, failed updates and what is
// skipped because a dependency failed.
func TestFailedApply(t *testing.T) {
	t.Run("a create that leaves an object is tainted and replaced next", func(t *testing.T) {
		w := newWorld(t)
		pl := w.plan(chain, planner.Options{Refresh: true})
		w.fake.fail("apply", "cluster.a", 1, errors.New("never became ready")).partial = true
		_, d := w.applyWith(context.Background(), chain, pl, planner.ApplyOptions{})
		if !d.HasErrors() || !strings.Contains(diagText(d), "never became ready") {
			t.Fatalf("diagnostics: %s", diagText(d))
		}
		var skipped bool
		for _, x := range d {
			skipped = skipped || strings.Contains(x.Summary, "Skipped cluster.b")
		}
		if !skipped {
			t.Errorf("no warning that cluster.b was skipped: %s", diagText(d))
		}
		if got := w.addresses(); got != "cluster.a tainted\ncluster.c ready" {
			t.Fatalf("state:\n%s", got)
		}
		w.fake.reset()
		again := w.plan(chain, planner.Options{Refresh: true})
		a := change(t, again, "cluster.a")
		if a.Action != planner.DeleteThenCreate || a.ActionReason != planner.ReasonTainted {
			t.Errorf("cluster.a: %s %s, want a replacement because tainted", a.Action, a.ActionReason)
		}
		w.fake.reset()
		if _, d := w.applyWith(context.Background(), chain, again, planner.ApplyOptions{}); d.HasErrors() {
			t.Fatalf("apply: %v", d)
		}
		if got := w.fake.callsOf("apply", "delete"); strings.Join(got, ",") != "delete cluster.a#1,apply cluster.a#2,apply cluster.b#1" {
			t.Errorf("calls %v", got)
		}
	})

	t.Run("a create that made nothing is created again", func(t *testing.T) {
		w := newWorld(t)
		pl := w.plan(clusterT4, planner.Options{Refresh: true})
		w.fake.fail("apply", "cluster.a", 1, errors.New("quota exceeded"))
		if _, d := w.applyWith(context.Background(), clusterT4, pl, planner.ApplyOptions{}); !d.HasErrors() {
			t.Fatal("apply did not fail")
		}
		if got := w.addresses(); got != "cluster.a tainted" {
			t.Fatalf("state:\n%s", got)
		}
		if got := actions(w.plan(clusterT4, planner.Options{Refresh: true})); got != "cluster.a create" {
			t.Errorf("plan: %s", got)
		}
	})

	t.Run("a failed update leaves the object as it was", func(t *testing.T) {
		w := newWorld(t)
		w.up(clusterT4)
		pl := w.plan(clusterT4Two, planner.Options{Refresh: true})
		w.fake.fail("apply", "cluster.a", 1, errors.New("rejected"))
		if _, d := w.applyWith(context.Background(), clusterT4Two, pl, planner.ApplyOptions{}); !d.HasErrors() {
			t.Fatal("apply did not fail")
		}
		if got := w.addresses(); got != "cluster.a ready" {
			t.Errorf("state:\n%s", got)
		}
		if got := w.attr("cluster.a", "nodes"); got != "1" {
			t.Errorf("nodes in state = %s, want the old 1", got)
		}
	})

	t.Run("a failed delete keeps the instance", func(t *testing.T) {
		w := newWorld(t)
		w.up(clusterT4)
		pl := w.plan(clusterT4, planner.Options{Refresh: true, Mode: planner.DestroyMode})
		w.fake.fail("delete", "cluster.a", 1, errors.New("in use"))
		if _, d := w.applyWith(context.Background(), clusterT4, pl, planner.ApplyOptions{}); !d.HasErrors() {
			t.Fatal("apply did not fail")
		}
		if got := w.addresses(); got != "cluster.a ready" {
			t.Errorf("state:\n%s", got)
		}
	})

	t.Run("a failed plan names the instance", func(t *testing.T) {
		w := newWorld(t)
		w.fake.fail("plan", "cluster.b", 0, errors.New("no capacity"))
		pl, d := w.planDiags(chain, planner.Options{Refresh: true})
		if !d.HasErrors() || !pl.Errored || !strings.Contains(diagText(d), "Planning cluster.b failed") {
			t.Errorf("diagnostics: %s", diagText(d))
		}
	})
}

func TestCycle(t *testing.T) {
	cases := []struct {
		name, src, path string
		line            int
	}{
		{"two resources", `
cluster "p" {
  image = cluster.q.zone
}

cluster "q" {
  image = cluster.p.zone
}
`, "cluster.p -> cluster.q -> cluster.p", 2},
		{"through a local", `
locals {
  z = cluster.p.zone
}

cluster "p" {
  image = local.z
}
`, "-> cluster.p ->", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			p, d := w.load(c.src)
			if d.HasErrors() {
				// lang may find it first; the planner must not be reached then.
				if !strings.Contains(diagText(d), "cycle") {
					t.Fatalf("load: %v", d)
				}
				return
			}
			for _, d := range []string{diagText(p.Validate()), func() string { _, d := p.Plan(context.Background(), nil, planner.Options{}); return diagText(d) }()} {
				if !strings.Contains(d, "Dependency cycle") || !strings.Contains(d, c.path) {
					t.Errorf("diagnostics %q do not name the cycle %q", d, c.path)
				}
				if c.line > 0 && !strings.HasPrefix(d, "main.lep.hcl:2:") {
					t.Errorf("diagnostics %q do not point at main.lep.hcl:%d", d, c.line)
				}
			}
		})
	}
}

// TestParallelism: never more than Parallelism provider calls at once, and
// that many when there is work for them (counted, not timed: the fake holds
// each call until the test lets one go).
func TestParallelism(t *testing.T) {
	var src strings.Builder
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"} {
		src.WriteString("cluster \"" + n + "\" {\n  nodes = 1\n}\n")
	}
	const n = 12
	for _, par := range []int{1, 3, 5} {
		for _, op := range []string{"apply", "read", "delete"} {
			t.Run(op+"/"+string(rune('0'+par)), func(t *testing.T) {
				w := newWorld(t)
				if op != "apply" {
					w.up(src.String())
				}
				opts := planner.Options{Refresh: true, Parallelism: par}
				if op == "delete" {
					opts.Mode = planner.DestroyMode
				}
				var pl *planner.Plan
				w.fake.reset()
				g := w.fake.gate(op, "")
				done := make(chan struct{})
				go func() {
					defer close(done)
					if op == "read" {
						pl, _ = w.planDiags(src.String(), opts)
						return
					}
					pl = w.plan(src.String(), opts)
				}()
				if op != "read" {
					<-done
					done = make(chan struct{})
					go func() {
						defer close(done)
						w.applyWith(context.Background(), src.String(), pl, planner.ApplyOptions{Parallelism: par})
					}()
				}
				// Wait until par calls are held, let one go at a time.
				for i := 0; i < n; i++ {
					<-g.entered
					if i+1 >= par {
						g.Release(1)
					}
				}
				g.Release(par)
				<-done
				if w.fake.maxRunning != par {
					t.Errorf("at most %d provider calls ran at once, want %d", w.fake.maxRunning, par)
				}
				if got := w.fake.count(op); got != n {
					t.Errorf("%d %s calls, want %d", got, op, n)
				}
			})
		}
	}
}

func TestOutputs(t *testing.T) {
	w := newWorld(t)
	v1 := clusterT4 + `
output "zone" {
  value = cluster.a.zone
}

output "nodes" {
  value = cluster.a.nodes
}

output "old" {
  value = "x"
}
`
	pl, _ := w.up(v1)
	byName := func(pl *planner.Plan) map[string]*planner.OutputChange {
		m := map[string]*planner.OutputChange{}
		for _, o := range pl.Outputs {
			m[o.Name] = o
		}
		return m
	}
	if o := byName(pl)["zone"]; o == nil || o.Action != planner.Create || o.After.IsKnown() {
		t.Errorf("zone before apply: %+v, want a create of an unknown value", o)
	}
	if got := string(w.st.Outputs["zone"].Value); got != `"cluster.a#1"` {
		t.Errorf("zone in state = %s", got)
	}
	v2 := clusterT4Two + `
output "zone" {
  value = cluster.a.zone
}

output "nodes" {
  value = cluster.a.nodes
}
`
	pl, _ = w.up(v2)
	outs := byName(pl)
	for name, want := range map[string]planner.Action{"zone": planner.NoOp, "nodes": planner.Update, "old": planner.Delete} {
		if o := outs[name]; o == nil || o.Action != want {
			t.Errorf("output %s: %+v, want %s", name, o, want)
		}
	}
	if _, ok := w.st.Outputs["old"]; ok {
		t.Errorf("a removed output is still in state")
	}
	if got := string(w.st.Outputs["nodes"].Value); got != "2" {
		t.Errorf("nodes in state = %s", got)
	}

	// Destroy removes every output.
	pl = w.plan(v2, planner.Options{Refresh: true, Mode: planner.DestroyMode})
	if o := byName(pl)["zone"]; o == nil || o.Action != planner.Delete {
		t.Errorf("destroy plan: zone %+v", o)
	}
	if _, d := w.applyWith(context.Background(), v2, pl, planner.ApplyOptions{}); d.HasErrors() {
		t.Fatal(d)
	}
	if len(w.st.Outputs) != 0 || len(w.st.Resources) != 0 {
		t.Errorf("state after destroy: %v outputs, %v", w.st.Outputs, w.addresses())
	}

	t.Run("a sensitive value needs sensitive = true", func(t *testing.T) {
		w := newWorld(t)
		w.vars = map[string]cty.Value{"token": cty.StringVal("s3cr3t")}
		src := `
variable "token" {
  type      = string
  sensitive = true
}

output "leak" {
  value = var.token
}
`
		_, d := w.planDiags(src, planner.Options{Refresh: true})
		if !strings.Contains(diagText(d), "Output refers to sensitive values") {
			t.Errorf("diagnostics: %s", diagText(d))
		}
		pl := w.plan(strings.Replace(src, "value = var.token", "value = var.token\n  sensitive = true", 1), planner.Options{Refresh: true})
		if o := byName(pl)["leak"]; o == nil || !o.Sensitive {
			t.Errorf("leak: %+v", o)
		}
	})
}
