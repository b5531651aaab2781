package rl

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/leptonml/lepton/runtime/rl/env"
)

// Result is a finished run: the learned table, its greedy policy and how well
// that policy does. It is the payload of a model artifact of kind Kind.
type Result struct {
	Environment env.Info `json:"environment"`
	// Spec is the run's spec with defaults filled in.
	Spec Spec `json:"spec"`
	// Steps is the number of environment steps training took.
	Steps int64 `json:"steps"`
	// QTable[s][a] is the learned action value.
	QTable [][]float64 `json:"q_table"`
	// Policy[s] is the greedy action in s.
	Policy []int `json:"policy"`
	// Metrics has mean_return and success_rate of the greedy policy over
	// Spec.EvalEpisodes evaluation episodes.
	Metrics map[string]float64 `json:"metrics"`
}

// Action is the greedy action for state, for serving predictions.
func (r *Result) Action(state int) (int, error) {
	if state < 0 || state >= len(r.Policy) {
		return 0, fmt.Errorf("state %d is out of range: %s has states 0 to %d", state, r.Environment.Name, len(r.Policy)-1)
	}
	return r.Policy[state], nil
}

// ActionName is the name of the greedy action for state, e.g. "left".
func (r *Result) ActionName(state int) (string, error) {
	a, err := r.Action(state)
	if err != nil {
		return "", err
	}
	return r.Environment.Actions[a], nil
}

// Greedy returns, per state, the action with the highest value; ties go to
// the lowest action so that the policy is a pure function of the table.
func Greedy(q [][]float64) []int {
	p := make([]int, len(q))
	for s, row := range q {
		for a, v := range row {
			if v > row[p[s]] {
				p[s] = a
			}
		}
	}
	return p
}

// DecodeResult parses a Result stored as JSON (an artifact payload) and
// checks that its table, policy and environment agree, so that a server can
// trust Action.
func DecodeResult(data []byte) (*Result, error) {
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decoding q_learning result: %w", err)
	}
	n, nA := r.Environment.NumStates, r.Environment.NumActions
	switch {
	case n < 1 || nA < 1:
		return nil, fmt.Errorf("q_learning result: environment %q has %d states and %d actions", r.Environment.Name, n, nA)
	case len(r.QTable) != n:
		return nil, fmt.Errorf("q_learning result: Q-table has %d states, the environment %d", len(r.QTable), n)
	case len(r.Policy) != n:
		return nil, fmt.Errorf("q_learning result: policy has %d states, the environment %d", len(r.Policy), n)
	case len(r.Environment.Actions) != nA:
		return nil, fmt.Errorf("q_learning result: %d action names for %d actions", len(r.Environment.Actions), nA)
	}
	for s, row := range r.QTable {
		if len(row) != nA {
			return nil, fmt.Errorf("q_learning result: Q-table row %d has %d actions, the environment %d", s, len(row), nA)
		}
		for a, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("q_learning result: Q-table value [%d][%d] is %v", s, a, v)
			}
		}
		if a := r.Policy[s]; a < 0 || a >= nA {
			return nil, fmt.Errorf("q_learning result: policy action %d in state %d is out of range", a, s)
		}
	}
	return &r, nil
}
