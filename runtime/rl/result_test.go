package rl

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/leptonml/lepton/runtime/rl/env"
)

func smallResult(t testing.TB) (*Result, []byte) {
	s := Defaults(env.Config{Name: env.FrozenLake})
	s.Episodes, s.EvalEpisodes = 200, 10
	r, err := Run(t.Context(), s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return r, data
}

func TestDecodeResult(t *testing.T) {
	r, data := smallResult(t)
	back, err := DecodeResult(data)
	if err != nil || !reflect.DeepEqual(back, r) {
		t.Fatalf("DecodeResult = %v; round trip equal: %v", err, reflect.DeepEqual(back, r))
	}
	if name, err := back.ActionName(14); err != nil || name != back.Environment.Actions[back.Policy[14]] {
		t.Errorf("ActionName(14) = %q, %v", name, err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Result)
		want string
	}{
		{"short policy", func(r *Result) { r.Policy = r.Policy[:3] }, "policy has 3 states, the environment 16"},
		{"short table", func(r *Result) { r.QTable = r.QTable[1:] }, "Q-table has 15 states"},
		{"short row", func(r *Result) { r.QTable[2] = r.QTable[2][:1] }, "row 2 has 1 actions"},
		{"bad action", func(r *Result) { r.Policy[4] = 7 }, "policy action 7 in state 4"},
		{"no states", func(r *Result) { r.Environment.NumStates = 0 }, "0 states"},
		{"names", func(r *Result) { r.Environment.Actions = nil }, "0 action names for 4 actions"},
	} {
		var c Result
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		tc.edit(&c)
		bad, _ := json.Marshal(&c)
		if _, err := DecodeResult(bad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: DecodeResult = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := DecodeResult([]byte(`{"q_table": "x"}`)); err == nil || !strings.Contains(err.Error(), "decoding q_learning result") {
		t.Errorf("garbage: %v", err)
	}
}

// FuzzDecodeResult: whatever DecodeResult accepts, Action answers for every
// state without panicking, within the action range.
func FuzzDecodeResult(f *testing.F) {
	_, data := smallResult(f)
	f.Add(data)
	f.Add([]byte(`{"environment":{"num_states":1,"num_actions":1,"actions":["x"]},"q_table":[[0]],"policy":[0]}`))
	f.Add([]byte(`{"environment":{"num_states":1,"num_actions":2,"actions":["a","b"]},"q_table":[[0,1]],"policy":[-1]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeResult(data)
		if err != nil {
			return
		}
		for s := range r.Environment.NumStates {
			a, err := r.Action(s)
			if err != nil || a < 0 || a >= r.Environment.NumActions {
				t.Fatalf("Action(%d) = %d, %v", s, a, err)
			}
			if _, err := r.ActionName(s); err != nil {
				t.Fatal(err)
			}
		}
	})
}
