package rl

import (
	"context"
	"math"
	"testing"

	"github.com/leptonml/lepton/runtime/rl/env"
)

// TestOptimalKnownValues compares the finite-horizon optimum with the values
// Gymnasium's registry quotes for its step caps ("optimum = 0.74" for
// FrozenLake-v1, "optimum = 0.91" for FrozenLake8x8-v1).
func TestOptimalKnownValues(t *testing.T) {
	for _, tc := range []struct {
		cfg  env.Config
		want float64
	}{
		{env.Config{Name: env.FrozenLake}, 0.74},
		{env.Config{Name: env.FrozenLake, Size: 8}, 0.91},
	} {
		b := Optimal(newEnv(t, tc.cfg))
		if math.Abs(b.SuccessRate-tc.want) > 0.005 {
			t.Errorf("%+v: optimal success %.4f, want about %.2f", tc.cfg, b.SuccessRate, tc.want)
		}
		if b.MeanReturn != b.SuccessRate {
			t.Errorf("%+v: optimal return %v differs from success %v on a 0/1-reward lake", tc.cfg, b.MeanReturn, b.SuccessRate)
		}
	}
}

// TestHorizonMatters: the dry 4x4 lake needs six steps, so five are not
// enough, and more steps never hurt on the slippery one.
func TestHorizonMatters(t *testing.T) {
	no := false
	dry := newEnv(t, env.Config{Name: env.FrozenLake, Slippery: &no})
	m := dry.Model()
	plan := FiniteHorizon(m, 6)
	if v5, v6 := Expected(m, plan.Value[5]), Expected(m, plan.Value[6]); v5 != 0 || v6 != 1 {
		t.Errorf("dry lake: value with 5 steps %v, with 6 %v; want 0 and 1", v5, v6)
	}
	lake := newEnv(t, env.Config{Name: env.FrozenLake})
	p := FiniteHorizon(lake.Model(), 100)
	for h := 1; h <= 100; h++ {
		for s := range lake.NumStates() {
			if p.Value[h][s] < p.Value[h-1][s]-1e-15 {
				t.Fatalf("value of %d fell from %v to %v at horizon %d", s, p.Value[h-1][s], p.Value[h][s], h)
			}
		}
	}
}

// TestPlanSimulated plays the optimal non-stationary plan and the learned
// stationary policy in the simulator and checks both against their exact
// values within four standard errors.
func TestPlanSimulated(t *testing.T) {
	e := newEnv(t, env.Config{Name: env.FrozenLake})
	m := e.Model()
	plan := FiniteHorizon(m.Indicator(e.IsGoal), e.MaxSteps())
	exact := Expected(m, plan.Value[plan.Horizon()])
	const n = 20000
	rng := newStreamRNG()
	wins := 0
	for i := range n {
		rng.seed(3, streamEval, i)
		if _, _, ok := rollout(e, plan.Act, rng.Rand); ok {
			wins++
		}
	}
	se := math.Sqrt(exact * (1 - exact) / n)
	if got := float64(wins) / n; math.Abs(got-exact) > 4*se {
		t.Errorf("optimal plan: simulated %.4f, exact %.4f", got, exact)
	}

	s := Defaults(env.Config{Name: env.FrozenLake})
	s.EvalEpisodes = n
	r := run(t, s, Options{})
	pv := Expected(m, PolicyValue(m.Indicator(e.IsGoal), r.Policy, e.MaxSteps()))
	se = math.Sqrt(pv * (1 - pv) / n)
	if got := r.Metrics["success_rate"]; math.Abs(got-pv) > 4*se {
		t.Errorf("learned policy: evaluated %.4f, exact %.4f", got, pv)
	}
	if pv > exact+1e-12 {
		t.Errorf("a stationary policy (%.4f) beats the optimum (%.4f)", pv, exact)
	}
}

// TestPolicyValueLeft: always going left never reaches the goal.
func TestPolicyValueLeft(t *testing.T) {
	e := newEnv(t, env.Config{Name: env.FrozenLake})
	m := e.Model().Indicator(e.IsGoal)
	if v := Expected(m, PolicyValue(m, make([]int, e.NumStates()), 100)); v != 0 {
		t.Errorf("always-left success %v, want 0", v)
	}
	ev, err := Evaluate(context.Background(), e, make([]int, e.NumStates()), 500, 1)
	if err != nil || ev.SuccessRate != 0 || ev.MeanReturn != 0 {
		t.Errorf("always-left evaluation %+v, %v", ev, err)
	}
}
