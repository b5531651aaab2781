package rl

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/leptonml/lepton/runtime/rl/env"
)

// FuzzDecodeCheckpoint: any input either fails with an error or yields a
// checkpoint whose table has the requested shape and finite values, and which
// survives a re-encode unchanged.
func FuzzDecodeCheckpoint(f *testing.F) {
	good := &checkpoint{Version: checkpointVersion, Spec: Defaults(env.Config{Name: env.FrozenLake}), Episodes: 3, Q: newTable(2, 2), IntervalEpisodes: 1}
	good.Q[1][0] = -0.12345678901234567
	data, _ := json.Marshal(good)
	f.Add(data, 2, 2)
	f.Add([]byte(`{"version":1,"q_table":[[1e400]]}`), 1, 1)
	f.Add([]byte(`{"version":1,"episodes_completed":-1}`), 0, 0)
	f.Add([]byte(`{"version":2}`), 0, 0)
	f.Add([]byte(`[]`), 0, 0)
	f.Fuzz(func(t *testing.T, data []byte, states, actions int) {
		if states < 0 || actions < 0 || states > 64 || actions > 8 {
			return
		}
		ck, err := decodeCheckpoint(data, states, actions)
		if err != nil {
			return
		}
		if len(ck.Q) != states {
			t.Fatalf("decoded %d states, asked for %d", len(ck.Q), states)
		}
		for _, row := range ck.Q {
			if len(row) != actions {
				t.Fatalf("decoded a row of %d, asked for %d", len(row), actions)
			}
		}
		again, err := json.Marshal(ck)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		back, err := decodeCheckpoint(again, states, actions)
		if err != nil || !reflect.DeepEqual(back, ck) {
			t.Fatalf("round trip changed the checkpoint: %v", err)
		}
	})
}
