// Package env holds the tabular reinforcement-learning environments that
// lepton's q_learning objective trains on: frozen_lake and cliff_walking as in
// Gymnasium (FrozenLake-v1, FrozenLake8x8-v1, CliffWalking-v0) and a small
// gridworld of lepton's own.
//
// Every environment is a finite Markov decision process whose full transition
// table (Model) is built once at construction. Step samples from that table,
// as Gymnasium's toy-text environments do, so the simulator and the model used
// by dynamic programming cannot disagree.
package env

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Environment names accepted by New.
const (
	FrozenLake   = "frozen_lake"
	CliffWalking = "cliff_walking"
	GridWorld    = "gridworld"
)

// names lists the environments New knows, in the order error messages use.
var names = []string{FrozenLake, CliffWalking, GridWorld}

// Env is one tabular environment. States and actions are dense integers
// starting at 0. Implementations are immutable and safe for concurrent use;
// all randomness comes from the rng the caller passes.
type Env interface {
	NumStates() int
	NumActions() int
	// MaxSteps is the step cap after which an episode is truncated.
	MaxSteps() int
	// Reset draws a start state.
	Reset(rng *rand.Rand) int
	// Step applies action in state. done reports termination (a goal, a
	// hole); truncation at MaxSteps is the caller's business.
	Step(state, action int, rng *rand.Rand) (next int, reward float64, done bool)
	// IsGoal reports whether reaching state counts as a success.
	IsGoal(state int) bool
	// Model is the full transition table; callers must not modify it.
	Model() *Model
	// Info describes the environment for artifacts and users.
	Info() Info
}

// Transition is one possible outcome of taking an action in a state.
type Transition struct {
	Prob   float64 `json:"prob"`
	Next   int     `json:"next"`
	Reward float64 `json:"reward"`
	Done   bool    `json:"done"`
}

// Model is an environment's transition table, for dynamic programming.
type Model struct {
	// Initial[s] is the probability that an episode starts in s.
	Initial []float64
	// P[s][a] lists the outcomes of action a in state s; their Prob sum to 1.
	// Terminal states are absorbing: one outcome, back to themselves, reward
	// 0, done (Gymnasium's convention).
	P [][][]Transition
}

// Indicator returns a copy of m whose reward is 1 on a transition that
// terminates in a goal state and 0 everywhere else. Its optimal finite-horizon
// value is the best achievable probability of reaching a goal.
func (m *Model) Indicator(isGoal func(int) bool) *Model {
	out := &Model{Initial: m.Initial, P: make([][][]Transition, len(m.P))}
	for s, acts := range m.P {
		out.P[s] = make([][]Transition, len(acts))
		for a, ts := range acts {
			cp := make([]Transition, len(ts))
			for i, t := range ts {
				t.Reward = 0
				// The absorbing self-loop of a goal state is not a new success.
				if t.Done && isGoal(t.Next) && !(t.Next == s && isGoal(s)) {
					t.Reward = 1
				}
				cp[i] = t
			}
			out.P[s][a] = cp
		}
	}
	return out
}

// Info describes an environment; it is stored in model artifacts.
type Info struct {
	Name       string `json:"name"`
	Size       int    `json:"size"`
	Slippery   bool   `json:"slippery"`
	Rows       int    `json:"rows"`
	Cols       int    `json:"cols"`
	NumStates  int    `json:"num_states"`
	NumActions int    `json:"num_actions"`
	MaxSteps   int    `json:"max_steps"`
	Start      int    `json:"start"`
	// Actions names each action index, e.g. "left".
	Actions []string `json:"actions"`
	// Map is the grid, one string per row: S start, G goal, F frozen, H hole,
	// C cliff, W wall, . free. State = row*Cols + col.
	Map []string `json:"map"`
}

// Config selects an environment. Zero values mean the environment's default.
type Config struct {
	Name string `json:"name"`
	// Size is 4 or 8 for frozen_lake (default 4), 5 to 32 for gridworld
	// (default 5); cliff_walking is always 4x12 and takes 0 or 12.
	Size int `json:"size,omitempty"`
	// Slippery defaults to true for frozen_lake (as in Gymnasium) and false
	// for gridworld; cliff_walking cannot be slippery.
	Slippery *bool `json:"slippery,omitempty"`
}

// Gridworld size limits: below 5 the two walls touch and block the goal;
// above 32 tabular Q-learning needs impractically many episodes.
const (
	minGridSize = 5
	maxGridSize = 32
)

// Normalize checks c and fills in the defaults.
func (c Config) Normalize() (Config, error) {
	slippery := func(def bool) *bool {
		if c.Slippery != nil {
			return c.Slippery
		}
		return &def
	}
	switch c.Name {
	case FrozenLake:
		if c.Size == 0 {
			c.Size = 4
		}
		if c.Size != 4 && c.Size != 8 {
			return c, fmt.Errorf("environment %s: size must be 4 or 8 (Gymnasium's maps), got %d", c.Name, c.Size)
		}
		c.Slippery = slippery(true)
	case CliffWalking:
		if c.Size != 0 && c.Size != 12 {
			return c, fmt.Errorf("environment %s: the grid is always 4x12; omit size (or set 12), got %d", c.Name, c.Size)
		}
		c.Size = 12
		if c.Slippery != nil && *c.Slippery {
			return c, fmt.Errorf("environment %s cannot be slippery (CliffWalking-v0 is deterministic)", c.Name)
		}
		c.Slippery = slippery(false)
	case GridWorld:
		if c.Size == 0 {
			c.Size = minGridSize
		}
		if c.Size < minGridSize || c.Size > maxGridSize {
			return c, fmt.Errorf("environment %s: size must be between %d and %d, got %d", c.Name, minGridSize, maxGridSize, c.Size)
		}
		c.Slippery = slippery(false)
	case "":
		return c, fmt.Errorf("environment name is missing (want one of %s)", strings.Join(names, ", "))
	default:
		return c, fmt.Errorf("unknown environment %q (want one of %s)", c.Name, strings.Join(names, ", "))
	}
	return c, nil
}

// New builds the environment c names.
func New(c Config) (Env, error) {
	c, err := c.Normalize()
	if err != nil {
		return nil, err
	}
	switch c.Name {
	case FrozenLake:
		return newFrozenLake(c.Size, *c.Slippery), nil
	case CliffWalking:
		return newCliffWalking(), nil
	default:
		return newGridWorld(c.Size, *c.Slippery), nil
	}
}

// tabular implements Env over a precomputed Model.
type tabular struct {
	model *Model
	goal  []bool
	info  Info
}

func (e *tabular) NumStates() int    { return len(e.model.P) }
func (e *tabular) NumActions() int   { return e.info.NumActions }
func (e *tabular) MaxSteps() int     { return e.info.MaxSteps }
func (e *tabular) Model() *Model     { return e.model }
func (e *tabular) IsGoal(s int) bool { return e.goal[s] }

// Info returns a copy so callers cannot alter the environment's slices.
func (e *tabular) Info() Info {
	i := e.info
	i.Actions = append([]string(nil), i.Actions...)
	i.Map = append([]string(nil), i.Map...)
	return i
}

func (e *tabular) Reset(rng *rand.Rand) int {
	return sample(e.model.Initial, rng)
}

func (e *tabular) Step(state, action int, rng *rand.Rand) (int, float64, bool) {
	ts := e.model.P[state][action]
	t := ts[0]
	if len(ts) > 1 {
		// Inverse-CDF draw, as Gymnasium's categorical_sample; a rounding
		// remainder falls to the last outcome.
		u := rng.Float64()
		for _, t = range ts {
			if u < t.Prob {
				break
			}
			u -= t.Prob
		}
	}
	return t.Next, t.Reward, t.Done
}

// sample draws an index from a probability vector; a single certain
// outcome consumes no randomness.
func sample(p []float64, rng *rand.Rand) int {
	last := -1
	for i, x := range p {
		if x == 1 {
			return i
		}
		if x > 0 {
			last = i
		}
	}
	u := rng.Float64()
	for i, x := range p {
		if u < x {
			return i
		}
		u -= x
	}
	return last
}
