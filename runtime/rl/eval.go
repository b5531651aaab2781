package rl

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/leptonml/lepton/runtime/rl/env"
)

// Evaluation is how a policy did over a number of episodes.
type Evaluation struct {
	MeanReturn  float64 `json:"mean_return"`
	SuccessRate float64 `json:"success_rate"`
}

// Evaluate runs episodes episodes of the stationary policy on e, each capped
// at e.MaxSteps(). An episode succeeds when it ends in a goal state. Episode i
// draws from a generator seeded by (seed, i), apart from training's.
func Evaluate(ctx context.Context, e env.Env, policy []int, episodes int, seed int64) (Evaluation, error) {
	if len(policy) != e.NumStates() {
		return Evaluation{}, fmt.Errorf("evaluating: policy has %d states, the environment %d", len(policy), e.NumStates())
	}
	if episodes < 1 {
		return Evaluation{}, fmt.Errorf("evaluating: episodes must be at least 1, got %d", episodes)
	}
	rng := newStreamRNG()
	var total float64
	wins := 0
	for i := range episodes {
		if err := ctx.Err(); err != nil {
			return Evaluation{}, fmt.Errorf("evaluation stopped after %d of %d episodes: %w", i, episodes, err)
		}
		rng.seed(seed, streamEval, i)
		ret, _, ok := rollout(e, func(s, _ int) int { return policy[s] }, rng.Rand)
		total += ret
		if ok {
			wins++
		}
	}
	return Evaluation{MeanReturn: total / float64(episodes), SuccessRate: float64(wins) / float64(episodes)}, nil
}

// rollout plays one episode, choosing act(state, step) for steps 0, 1, ...
// up to the cap, and reports the return, the steps taken and whether it ended
// in a goal.
func rollout(e env.Env, act func(state, step int) int, rng *rand.Rand) (ret float64, steps int, success bool) {
	s := e.Reset(rng)
	for t := range e.MaxSteps() {
		next, r, done := e.Step(s, act(s, t), rng)
		ret += r
		s = next
		if done {
			return ret, t + 1, e.IsGoal(s)
		}
	}
	return ret, e.MaxSteps(), false
}
