package rl

import "github.com/leptonml/lepton/runtime/rl/env"

// Plan is an optimal policy for a finite horizon, found by backward
// induction: with a step cap the best action depends on the steps remaining
// as well as on the state.
type Plan struct {
	// Value[h][s] is the best expected return from s with h steps remaining.
	Value [][]float64
	// Action[h][s] is an action achieving it (Action[0] is empty).
	Action [][]int
}

// FiniteHorizon solves m for horizon steps.
func FiniteHorizon(m *env.Model, horizon int) *Plan {
	n := len(m.P)
	p := &Plan{Value: make([][]float64, horizon+1), Action: make([][]int, horizon+1)}
	p.Value[0] = make([]float64, n)
	for h := 1; h <= horizon; h++ {
		prev := p.Value[h-1]
		v, act := make([]float64, n), make([]int, n)
		for s, acts := range m.P {
			for a, ts := range acts {
				q := 0.0
				for _, t := range ts {
					q += t.Prob * t.Reward
					if !t.Done {
						q += t.Prob * prev[t.Next]
					}
				}
				if a == 0 || q > v[s] {
					v[s], act[s] = q, a
				}
			}
		}
		p.Value[h], p.Action[h] = v, act
	}
	return p
}

// Horizon is the number of steps the plan covers.
func (p *Plan) Horizon() int { return len(p.Value) - 1 }

// Act is the plan's action in state s at step t (0-based) of an episode.
func (p *Plan) Act(s, t int) int { return p.Action[p.Horizon()-t][s] }

// PolicyValue is the exact expected return of the stationary policy over
// horizon steps, per start state.
func PolicyValue(m *env.Model, policy []int, horizon int) []float64 {
	v := make([]float64, len(m.P))
	next := make([]float64, len(m.P))
	for range horizon {
		for s, a := range policy {
			q := 0.0
			for _, t := range m.P[s][a] {
				q += t.Prob * t.Reward
				if !t.Done {
					q += t.Prob * v[t.Next]
				}
			}
			next[s] = q
		}
		v, next = next, v
	}
	return v
}

// Expected averages per-state values over the model's start distribution.
func Expected(m *env.Model, v []float64) float64 {
	x := 0.0
	for s, p := range m.Initial {
		x += p * v[s]
	}
	return x
}

// Baseline is what the best policies achieve on an environment within its
// step cap: the highest success probability and the highest expected return
// (the two may come from different policies).
type Baseline struct {
	SuccessRate float64 `json:"success_rate"`
	MeanReturn  float64 `json:"mean_return"`
}

// Optimal computes e's Baseline by finite-horizon dynamic programming.
func Optimal(e env.Env) Baseline {
	m := e.Model()
	return Baseline{
		SuccessRate: Expected(m, FiniteHorizon(m.Indicator(e.IsGoal), e.MaxSteps()).Value[e.MaxSteps()]),
		MeanReturn:  Expected(m, FiniteHorizon(m, e.MaxSteps()).Value[e.MaxSteps()]),
	}
}
