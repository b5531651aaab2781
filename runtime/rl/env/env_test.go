package env

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func mustNew(t *testing.T, c Config) Env {
	t.Helper()
	e, err := New(c)
	if err != nil {
		t.Fatalf("New(%+v): %v", c, err)
	}
	return e
}

func boolp(b bool) *bool { return &b }

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Name: "taxi"}, `unknown environment "taxi" (want one of frozen_lake, cliff_walking, gridworld)`},
		{Config{}, "environment name is missing"},
		{Config{Name: FrozenLake, Size: 5}, "frozen_lake: size must be 4 or 8"},
		{Config{Name: FrozenLake, Size: -4}, "got -4"},
		{Config{Name: CliffWalking, Size: 4}, "always 4x12"},
		{Config{Name: CliffWalking, Slippery: boolp(true)}, "cannot be slippery"},
		{Config{Name: GridWorld, Size: 4}, "between 5 and 32, got 4"},
		{Config{Name: GridWorld, Size: 33}, "got 33"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	for _, tc := range []struct {
		cfg                 Config
		size, states, steps int
		slippery            bool
	}{
		{Config{Name: FrozenLake}, 4, 16, 100, true},
		{Config{Name: FrozenLake, Size: 8}, 8, 64, 200, true},
		{Config{Name: FrozenLake, Slippery: boolp(false)}, 4, 16, 100, false},
		{Config{Name: CliffWalking}, 12, 48, 200, false},
		{Config{Name: GridWorld}, 5, 25, 100, false},
		{Config{Name: GridWorld, Size: 7, Slippery: boolp(true)}, 7, 49, 196, true},
	} {
		e := mustNew(t, tc.cfg)
		info := e.Info()
		if info.Size != tc.size || e.NumStates() != tc.states || e.MaxSteps() != tc.steps || info.Slippery != tc.slippery || e.NumActions() != 4 {
			t.Errorf("%+v: got size %d states %d steps %d slippery %v actions %d", tc.cfg, info.Size, e.NumStates(), e.MaxSteps(), info.Slippery, e.NumActions())
		}
	}
}

func TestMaps(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{Name: FrozenLake}, []string{"SFFF", "FHFH", "FFFH", "HFFG"}},
		{Config{Name: FrozenLake, Size: 8}, []string{"SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG"}},
		{Config{Name: CliffWalking}, []string{"............", "............", "............", "SCCCCCCCCCCG"}},
		{Config{Name: GridWorld}, []string{"SW...", ".W.W.", ".W.W.", ".W.W.", "...WG"}},
	} {
		if got := mustNew(t, tc.cfg).Info().Map; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s map = %q, want %q", tc.cfg.Name, got, tc.want)
		}
	}
}

// outcomes folds a transition list into probability per (next, reward, done).
func outcomes(ts []Transition) map[Transition]float64 {
	m := map[Transition]float64{}
	for _, t := range ts {
		p := t.Prob
		t.Prob = 0
		m[t] += p
	}
	return m
}

func TestTransitions(t *testing.T) {
	third := 1.0 / 3
	lake := mustNew(t, Config{Name: FrozenLake})
	lakeDry := mustNew(t, Config{Name: FrozenLake, Slippery: boolp(false)})
	cliff := mustNew(t, Config{Name: CliffWalking})
	gw := mustNew(t, Config{Name: GridWorld})
	type out = Transition
	for _, tc := range []struct {
		name string
		e    Env
		s, a int
		want map[Transition]float64
	}{
		// Slippery left from the start corner: up and left bump the edge, down moves.
		{"lake start left", lake, 0, 0, map[out]float64{{Next: 0}: 2 * third, {Next: 4}: third}},
		// Slippery down from 9 (row 2, col 1): left 8, down 13, right 10; never up.
		{"lake down never backward", lake, 9, 1, map[out]float64{{Next: 8}: third, {Next: 13}: third, {Next: 10}: third}},
		// Right from 14 reaches the goal with 1/3.
		{"lake goal", lake, 14, 2, map[out]float64{{Next: 15, Reward: 1, Done: true}: third, {Next: 10}: third, {Next: 14}: third}},
		// Right from 4 goes into the hole at 5 with 1/3.
		{"lake hole", lake, 4, 2, map[out]float64{{Next: 0}: third, {Next: 5, Done: true}: third, {Next: 8}: third}},
		{"lake hole absorbing", lake, 5, 3, map[out]float64{{Next: 5, Done: true}: 1}},
		{"lake goal absorbing", lake, 15, 0, map[out]float64{{Next: 15, Done: true}: 1}},
		{"dry lake down", lakeDry, 0, 1, map[out]float64{{Next: 4}: 1}},
		{"dry lake goal", lakeDry, 14, 2, map[out]float64{{Next: 15, Reward: 1, Done: true}: 1}},
		{"cliff off the edge", cliff, 36, 3, map[out]float64{{Next: 36, Reward: -1}: 1}},
		{"cliff fall", cliff, 36, 1, map[out]float64{{Next: 36, Reward: -100}: 1}},
		{"cliff up", cliff, 36, 0, map[out]float64{{Next: 24, Reward: -1}: 1}},
		{"cliff goal", cliff, 35, 2, map[out]float64{{Next: 47, Reward: -1, Done: true}: 1}},
		{"cliff fall from above", cliff, 30, 2, map[out]float64{{Next: 36, Reward: -100}: 1}},
		{"grid wall blocks", gw, 0, 2, map[out]float64{{Next: 0, Reward: -1}: 1}},
		{"grid goal", gw, 19, 1, map[out]float64{{Next: 24, Reward: -1, Done: true}: 1}},
		{"grid second wall", gw, 22, 2, map[out]float64{{Next: 22, Reward: -1}: 1}},
	} {
		got := outcomes(tc.e.Model().P[tc.s][tc.a])
		if len(got) != len(tc.want) {
			t.Errorf("%s: outcomes %v, want %v", tc.name, got, tc.want)
			continue
		}
		for k, p := range tc.want {
			if math.Abs(got[k]-p) > 1e-12 {
				t.Errorf("%s: P(%+v) = %v, want %v (all: %v)", tc.name, k, got[k], p, got)
			}
		}
	}
}

// TestModelWellFormed checks every row of every model is a distribution over
// valid states.
func TestModelWellFormed(t *testing.T) {
	for _, c := range []Config{
		{Name: FrozenLake}, {Name: FrozenLake, Size: 8}, {Name: CliffWalking},
		{Name: GridWorld}, {Name: GridWorld, Size: 32, Slippery: boolp(true)},
	} {
		e := mustNew(t, c)
		m := e.Model()
		if len(m.P) != e.NumStates() || len(m.Initial) != e.NumStates() {
			t.Fatalf("%+v: model sizes %d/%d, want %d", c, len(m.P), len(m.Initial), e.NumStates())
		}
		if m.Initial[e.Info().Start] != 1 {
			t.Errorf("%+v: start %d has initial probability %v", c, e.Info().Start, m.Initial[e.Info().Start])
		}
		for s, acts := range m.P {
			if len(acts) != e.NumActions() {
				t.Fatalf("%+v: state %d has %d actions", c, s, len(acts))
			}
			for a, ts := range acts {
				sum := 0.0
				for _, tr := range ts {
					sum += tr.Prob
					if tr.Next < 0 || tr.Next >= e.NumStates() {
						t.Errorf("%+v: P[%d][%d] goes to %d", c, s, a, tr.Next)
					}
				}
				if math.Abs(sum-1) > 1e-12 {
					t.Errorf("%+v: P[%d][%d] sums to %v", c, s, a, sum)
				}
			}
		}
	}
}

// TestStepMatchesModel measures Step's outcome frequencies for every state
// and action and compares them to the model within five standard errors.
func TestStepMatchesModel(t *testing.T) {
	const n = 3000
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []Config{{Name: FrozenLake}, {Name: FrozenLake, Size: 8}, {Name: GridWorld, Slippery: boolp(true)}} {
		e := mustNew(t, c)
		for s := range e.NumStates() {
			for a := range e.NumActions() {
				want := outcomes(e.Model().P[s][a])
				got := map[Transition]float64{}
				for range n {
					next, r, done := e.Step(s, a, rng)
					got[Transition{Next: next, Reward: r, Done: done}]++
				}
				for k, cnt := range got {
					if _, ok := want[k]; !ok {
						t.Fatalf("%s: Step(%d,%d) produced %+v, not in the model", c.Name, s, a, k)
					}
					p := want[k]
					se := math.Sqrt(p * (1 - p) / n)
					if math.Abs(cnt/n-p) > 5*se+1e-9 {
						t.Errorf("%s: Step(%d,%d) -> %+v measured %.4f, model %.4f", c.Name, s, a, k, cnt/n, p)
					}
				}
			}
		}
	}
}

// TestSlipDirections measures, from an inner cell of the 8x8 lake, that each
// intended move goes to its own cell and the two perpendicular ones about a
// third of the time each, and never backward.
func TestSlipDirections(t *testing.T) {
	e := mustNew(t, Config{Name: FrozenLake, Size: 8})
	const s, n = 1*8 + 3, 30000 // row 1, col 3: all four neighbours are frozen
	cols := 8
	neighbour := map[string]int{"left": s - 1, "down": s + cols, "right": s + 1, "up": s - cols}
	backward := map[string]string{"left": "right", "right": "left", "up": "down", "down": "up"}
	rng := rand.New(rand.NewPCG(7, 7))
	for a, name := range e.Info().Actions {
		counts := map[int]int{}
		for range n {
			next, _, _ := e.Step(s, a, rng)
			counts[next]++
		}
		if counts[neighbour[backward[name]]] != 0 {
			t.Errorf("%s slipped backward %d times", name, counts[neighbour[backward[name]]])
		}
		for dir, cell := range neighbour {
			if dir == backward[name] {
				continue
			}
			if f := float64(counts[cell]) / n; math.Abs(f-1.0/3) > 0.015 {
				t.Errorf("action %s went %s with frequency %.4f, want 1/3", name, dir, f)
			}
		}
	}
}

func TestResetAndIsGoal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		cfg         Config
		start, goal int
	}{
		{Config{Name: FrozenLake}, 0, 15},
		{Config{Name: FrozenLake, Size: 8}, 0, 63},
		{Config{Name: CliffWalking}, 36, 47},
		{Config{Name: GridWorld, Size: 6}, 0, 35},
	} {
		e := mustNew(t, tc.cfg)
		if s := e.Reset(rng); s != tc.start {
			t.Errorf("%s: Reset = %d, want %d", tc.cfg.Name, s, tc.start)
		}
		for s := range e.NumStates() {
			if e.IsGoal(s) != (s == tc.goal) {
				t.Errorf("%s: IsGoal(%d) = %v", tc.cfg.Name, s, e.IsGoal(s))
			}
		}
	}
}

func TestIndicator(t *testing.T) {
	e := mustNew(t, Config{Name: CliffWalking})
	m := e.Model().Indicator(e.IsGoal)
	if got := m.P[35][2][0]; got.Reward != 1 || !got.Done {
		t.Errorf("entering the goal: %+v, want reward 1", got)
	}
	if got := m.P[36][1][0]; got.Reward != 0 {
		t.Errorf("falling off the cliff: %+v, want reward 0", got)
	}
	if got := m.P[47][0][0]; got.Reward != 0 {
		t.Errorf("absorbing goal: %+v, want reward 0", got)
	}
	if e.Model().P[35][2][0].Reward != -1 {
		t.Error("Indicator modified the original model")
	}
}
