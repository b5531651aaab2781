package rl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/leptonml/lepton/runtime/rl/env"
)

func run(t *testing.T, s Spec, o Options) *Result {
	t.Helper()
	r, err := Run(context.Background(), s, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

func newEnv(t *testing.T, c env.Config) env.Env {
	t.Helper()
	e, err := env.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestFrozenLakeNearOptimal is the bar: on FrozenLake 4x4 slippery the
// learned greedy policy's success rate over 10,000 evaluation episodes is at
// least 90% of the optimal policy's within the same 100-step cap, for several
// seeds and the default hyper-parameters.
func TestFrozenLakeNearOptimal(t *testing.T) {
	cfg := env.Config{Name: env.FrozenLake}
	e := newEnv(t, cfg)
	opt := Optimal(e).SuccessRate
	for seed := int64(1); seed <= 5; seed++ {
		s := Defaults(cfg)
		s.Seed = seed
		r := run(t, s, Options{})
		got := r.Metrics["success_rate"]
		if r.Spec.EvalEpisodes != 10000 {
			t.Fatalf("evaluated over %d episodes", r.Spec.EvalEpisodes)
		}
		if got < 0.9*opt {
			t.Errorf("seed %d: success rate %.4f < 0.9 * optimal %.4f", seed, got, opt)
		}
		// The exact value of the learned policy, free of evaluation noise.
		exact := Expected(e.Model(), PolicyValue(e.Model().Indicator(e.IsGoal), r.Policy, e.MaxSteps()))
		if exact < 0.9*opt {
			t.Errorf("seed %d: exact success probability %.4f < 0.9 * optimal %.4f", seed, exact, opt)
		}
		if r.Metrics["mean_return"] != got {
			t.Errorf("seed %d: mean return %v differs from success rate %v on a 0/1-reward lake", seed, r.Metrics["mean_return"], got)
		}
	}
}

func TestFrozenLake8x8(t *testing.T) {
	cfg := env.Config{Name: env.FrozenLake, Size: 8}
	e := newEnv(t, cfg)
	s := Defaults(cfg)
	s.EvalEpisodes = 2000
	r := run(t, s, Options{})
	exact := Expected(e.Model(), PolicyValue(e.Model().Indicator(e.IsGoal), r.Policy, e.MaxSteps()))
	if opt := Optimal(e).SuccessRate; exact < 0.9*opt {
		t.Errorf("8x8: exact success probability %.4f < 0.9 * optimal %.4f", exact, opt)
	}
}

func TestDeterministicLakes(t *testing.T) {
	no := false
	for _, tc := range []struct {
		cfg       env.Config
		ret, succ float64
	}{
		// Six steps to the goal on the 4x4 lake, fourteen on the 8x8 one.
		{env.Config{Name: env.FrozenLake, Slippery: &no}, 1, 1},
		{env.Config{Name: env.FrozenLake, Size: 8, Slippery: &no}, 1, 1},
	} {
		s := Defaults(tc.cfg)
		s.Episodes, s.Epsilon.DecayEpisodes, s.EvalEpisodes = 3000, 2000, 100
		r := run(t, s, Options{})
		if r.Metrics["mean_return"] != tc.ret || r.Metrics["success_rate"] != tc.succ {
			t.Errorf("%+v: metrics %v", tc.cfg, r.Metrics)
		}
	}
}

// TestCliffWalking: Q-learning's greedy policy takes the optimal path along
// the cliff edge, 13 steps, return -13.
func TestCliffWalking(t *testing.T) {
	cfg := env.Config{Name: env.CliffWalking}
	e := newEnv(t, cfg)
	if got := Optimal(e).MeanReturn; got != -13 {
		t.Fatalf("optimal return %v, want -13", got)
	}
	for seed := int64(1); seed <= 3; seed++ {
		s := Defaults(cfg)
		s.Seed, s.EvalEpisodes = seed, 100
		r := run(t, s, Options{})
		if r.Metrics["mean_return"] != -13 || r.Metrics["success_rate"] != 1 {
			t.Errorf("seed %d: metrics %v, want mean_return -13 and success_rate 1", seed, r.Metrics)
		}
		// Up from the start, right along row 2 above the cliff, then down.
		if r.Policy[36] != 0 || r.Policy[35] != 2 {
			t.Errorf("seed %d: policy at start %d, at the last cell above the cliff %d", seed, r.Policy[36], r.Policy[35])
		}
		for s := 24; s < 35; s++ {
			if r.Policy[s] != 1 {
				t.Errorf("seed %d: policy at %d is %s, want right", seed, s, e.Info().Actions[r.Policy[s]])
			}
		}
	}
}

// bfs is the shortest path length from start to goal on a deterministic grid
// map, computed independently of the environment's model.
func bfs(m []string) int {
	rows, cols := len(m), len(m[0])
	dist := map[[2]int]int{{0, 0}: 0}
	queue := [][2]int{{0, 0}}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if m[p[0]][p[1]] == 'G' {
			return dist[p]
		}
		for _, d := range [][2]int{{0, 1}, {1, 0}, {0, -1}, {-1, 0}} {
			n := [2]int{p[0] + d[0], p[1] + d[1]}
			if n[0] < 0 || n[1] < 0 || n[0] >= rows || n[1] >= cols || m[n[0]][n[1]] == 'W' {
				continue
			}
			if _, seen := dist[n]; !seen {
				dist[n] = dist[p] + 1
				queue = append(queue, n)
			}
		}
	}
	return -1
}

func TestGridWorld(t *testing.T) {
	for _, size := range []int{5, 8, 12} {
		cfg := env.Config{Name: env.GridWorld, Size: size}
		e := newEnv(t, cfg)
		want := -float64(bfs(e.Info().Map))
		if got := Optimal(e).MeanReturn; got != want {
			t.Errorf("size %d: optimal return %v, shortest path says %v", size, got, want)
		}
		s := Defaults(cfg)
		s.EvalEpisodes = 100
		r := run(t, s, Options{})
		if r.Metrics["mean_return"] != want || r.Metrics["success_rate"] != 1 {
			t.Errorf("size %d: metrics %v, want mean_return %v", size, r.Metrics, want)
		}
	}
	// Slippery: the goal is still always reached, in more steps.
	yes := true
	cfg := env.Config{Name: env.GridWorld, Slippery: &yes}
	e := newEnv(t, cfg)
	s := Defaults(cfg)
	s.Episodes, s.Epsilon.DecayEpisodes, s.LearningRate, s.EvalEpisodes = 3000, 2000, 0.1, 2000
	r := run(t, s, Options{})
	opt := Optimal(e).MeanReturn
	if r.Metrics["success_rate"] != 1 || r.Metrics["mean_return"] < 1.1*opt {
		t.Errorf("slippery gridworld: metrics %v, optimal return %.2f", r.Metrics, opt)
	}
}

func TestSeedDeterminism(t *testing.T) {
	s := Defaults(env.Config{Name: env.FrozenLake})
	s.Episodes, s.EvalEpisodes = 3000, 500
	a, b := run(t, s, Options{}), run(t, s, Options{})
	if !reflect.DeepEqual(a, b) {
		t.Error("two runs with the same seed differ")
	}
	s.Seed = 2
	c := run(t, s, Options{})
	if reflect.DeepEqual(a.QTable, c.QTable) {
		t.Error("runs with seeds 1 and 2 learned identical tables")
	}
}

// cancelAfterLines cancels a context when the n-th progress line arrives.
type cancelAfterLines struct {
	n      int
	cancel context.CancelFunc
}

func (w *cancelAfterLines) Write(p []byte) (int, error) {
	if w.n--; w.n == 0 {
		w.cancel()
	}
	return len(p), nil
}

// TestResumeAfterCancel interrupts a run through its context, resumes it from
// the checkpoint, and expects exactly the result of an uninterrupted run.
func TestResumeAfterCancel(t *testing.T) {
	s := Defaults(env.Config{Name: env.FrozenLake})
	s.Episodes, s.EvalEpisodes = 5000, 1000
	want := run(t, s, Options{})

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelAfterLines{n: 3, cancel: cancel}
	_, err := Run(ctx, s, Options{RunDir: dir, Progress: w, ProgressEvery: 700, CheckpointEvery: 1000})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped after 2100 of 5000 episodes") {
		t.Fatalf("cancelled Run = %v", err)
	}
	if ck := readCheckpoint(t, dir); ck.Episodes != 2100 {
		t.Fatalf("checkpoint after cancel has %d episodes, want 2100", ck.Episodes)
	}
	got := run(t, s, Options{RunDir: dir})
	if !reflect.DeepEqual(got, want) {
		t.Error("resumed run differs from the uninterrupted one")
	}
	// A finished checkpoint resumes to the same result without training.
	again := run(t, s, Options{RunDir: dir})
	if !reflect.DeepEqual(again, want) {
		t.Error("rerun from a finished checkpoint differs")
	}
}

// snapshotter copies the checkpoint file when the n-th progress line arrives:
// what a process killed at that moment would leave behind.
type snapshotter struct {
	path string
	n    int
	data []byte
	err  error
}

func (w *snapshotter) Write(p []byte) (int, error) {
	if w.n--; w.n == 0 {
		w.data, w.err = os.ReadFile(w.path)
	}
	return len(p), nil
}

func TestResumeFromPeriodicCheckpoint(t *testing.T) {
	s := Defaults(env.Config{Name: env.CliffWalking})
	s.EvalEpisodes = 10
	want := run(t, s, Options{})

	dir := t.TempDir()
	snap := &snapshotter{path: filepath.Join(dir, CheckpointFile), n: 7}
	run(t, s, Options{RunDir: dir, Progress: snap, ProgressEvery: 50, CheckpointEvery: 100})
	if snap.err != nil {
		t.Fatal(snap.err)
	}
	// Line 7 is printed at episode 350, before that episode's checkpoint
	// would be due: the file on disk then holds episode 300.
	killed := t.TempDir()
	if err := os.WriteFile(filepath.Join(killed, CheckpointFile), snap.data, 0o644); err != nil {
		t.Fatal(err)
	}
	if ck := readCheckpoint(t, killed); ck.Episodes != 300 {
		t.Fatalf("snapshot has %d episodes, want 300", ck.Episodes)
	}
	got := run(t, s, Options{RunDir: killed})
	if !reflect.DeepEqual(got, want) {
		t.Error("run resumed from a periodic checkpoint differs from the uninterrupted one")
	}
	// More episodes than the checkpoint's run continue it exactly too.
	longer := s
	longer.Episodes = 600
	fromStart := run(t, longer, Options{})
	extended := run(t, longer, Options{RunDir: dir})
	if !reflect.DeepEqual(fromStart.QTable, extended.QTable) {
		t.Error("extending a finished run differs from running the longer one from scratch")
	}
}

func readCheckpoint(t *testing.T, dir string) *checkpoint {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	var ck checkpoint
	if err := json.Unmarshal(data, &ck); err != nil {
		t.Fatal(err)
	}
	return &ck
}

func TestCheckpointMismatch(t *testing.T) {
	s := Defaults(env.Config{Name: env.GridWorld})
	s.Episodes, s.EvalEpisodes = 100, 10
	dir := t.TempDir()
	run(t, s, Options{RunDir: dir})
	path := filepath.Join(dir, CheckpointFile)

	for _, tc := range []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"seed", func(s *Spec) { s.Seed = 9 }, "different spec"},
		{"learning rate", func(s *Spec) { s.LearningRate = 0.3 }, "different spec"},
		{"fewer episodes", func(s *Spec) { s.Episodes = 50 }, "has 100 episodes, more than the 50"},
		{"environment", func(s *Spec) { s.Environment.Size = 6 }, "Q-table has 25 states, the environment 36"},
	} {
		other := s
		tc.edit(&other)
		_, err := Run(context.Background(), other, Options{RunDir: dir})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: Run = %v, want an error naming %s and saying %q", tc.name, err, path, tc.want)
		}
	}
	if err := os.WriteFile(path, []byte(`{"version": 1, "q_table": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), s, Options{RunDir: dir}); err == nil || !strings.Contains(err.Error(), "decoding") {
		t.Errorf("corrupt checkpoint: Run = %v", err)
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	s := Defaults(env.Config{Name: env.FrozenLake})
	r, err := Run(ctx, s, Options{RunDir: dir})
	if r != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, %v", r, err)
	}
	if ck := readCheckpoint(t, dir); ck.Episodes != 0 {
		t.Errorf("checkpoint has %d episodes", ck.Episodes)
	}
}

// lockedBuffer lets the test read what Run wrote.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestProgressLines(t *testing.T) {
	s := Defaults(env.Config{Name: env.FrozenLake})
	s.Episodes, s.EvalEpisodes = 1000, 10
	var out lockedBuffer
	var reports []Progress
	run(t, s, Options{Progress: &out, OnProgress: func(p Progress) { reports = append(reports, p) }})
	if len(reports) != 20 {
		t.Fatalf("OnProgress got %d reports, want 20", len(reports))
	}
	if last := reports[19]; last.Episode != 1000 || last.Episodes != 1000 || last.Window != 50 {
		t.Errorf("last report %+v", last)
	}
	lines := strings.Split(strings.TrimSpace(out.b.String()), "\n")
	if len(lines) != 20 {
		t.Fatalf("%d progress lines, want 20:\n%s", len(lines), out.b.String())
	}
	re := regexp.MustCompile(`^episode (\d+)/1000  mean_return\(last 50\) \d\.\d{4}  epsilon (\d\.\d{4})  \d+ episodes/s$`)
	for i, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q does not match %s", l, re)
		}
		if m[1] != fmt.Sprint(50*(i+1)) {
			t.Errorf("line %d reports episode %s", i, m[1])
		}
	}
	if lines[19] != reports[19].String() {
		t.Errorf("line %q and report %q differ", lines[19], reports[19])
	}
	if !strings.Contains(lines[19], "epsilon 0.9341") { // episode 999 of a 15000-episode decay
		t.Errorf("last line %q", lines[19])
	}
}

func TestResultJSONAndAction(t *testing.T) {
	s := Defaults(env.Config{Name: env.CliffWalking})
	s.EvalEpisodes = 5
	r := run(t, s, Options{})
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, r) {
		t.Error("Result does not survive a JSON round trip")
	}
	for _, key := range []string{`"q_table"`, `"policy"`, `"metrics"`, `"mean_return"`, `"success_rate"`, `"environment"`, `"map"`} {
		if !bytes.Contains(data, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	if a, err := back.Action(36); err != nil || a != 0 {
		t.Errorf("Action(36) = %d, %v; want 0 (up)", a, err)
	}
	for _, bad := range []int{-1, 48} {
		if _, err := back.Action(bad); err == nil || !strings.Contains(err.Error(), "cliff_walking has states 0 to 47") {
			t.Errorf("Action(%d) = %v", bad, err)
		}
	}
}

func TestGreedyTies(t *testing.T) {
	q := [][]float64{{0, 0, 0, 0}, {1, 3, 3, 2}, {-5, -1, -2, -1}}
	if got := Greedy(q); !reflect.DeepEqual(got, []int{0, 1, 1}) {
		t.Errorf("Greedy = %v", got)
	}
}

func TestEvaluateErrors(t *testing.T) {
	e := newEnv(t, env.Config{Name: env.FrozenLake})
	if _, err := Evaluate(context.Background(), e, make([]int, 3), 10, 1); err == nil || !strings.Contains(err.Error(), "policy has 3 states, the environment 16") {
		t.Errorf("short policy: %v", err)
	}
	if _, err := Evaluate(context.Background(), e, make([]int, 16), 0, 1); err == nil {
		t.Error("zero episodes accepted")
	}
}

// TestStepCap: a policy that walks into the edge forever is cut at the cap.
func TestStepCap(t *testing.T) {
	no := false
	for _, c := range []env.Config{{Name: env.FrozenLake, Slippery: &no}, {Name: env.FrozenLake, Size: 8, Slippery: &no}, {Name: env.CliffWalking}, {Name: env.GridWorld}} {
		e := newEnv(t, c)
		left := 0
		if c.Name == env.CliffWalking {
			left = 3
		}
		rng := newStreamRNG()
		rng.seed(1, streamEval, 0)
		ret, steps, ok := rollout(e, func(int, int) int { return left }, rng.Rand)
		if steps != e.MaxSteps() || ok {
			t.Errorf("%+v: %d steps (cap %d), success %v", c, steps, e.MaxSteps(), ok)
		}
		if c.Name != env.FrozenLake && ret != -float64(e.MaxSteps()) {
			t.Errorf("%+v: return %v over %d steps", c, ret, steps)
		}
	}
}
