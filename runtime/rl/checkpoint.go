package rl

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"

	"github.com/leptonml/lepton/runtime/rl/env"
	"github.com/leptonml/lepton/runtime/runstore"
)

const checkpointVersion = 1

// checkpoint is the whole training state after Episodes episodes. JSON keeps
// float64 values exact (encoding/json writes the shortest representation that
// parses back to the same bits), which exact resumption depends on.
type checkpoint struct {
	Version  int         `json:"version"`
	Spec     Spec        `json:"spec"`
	Episodes int         `json:"episodes_completed"`
	Q        [][]float64 `json:"q_table"`
	// Steps counts environment steps taken so far.
	Steps int64 `json:"steps"`
	// The progress interval in flight, so that lines after a resume report
	// the same means as an uninterrupted run.
	IntervalReturn   float64 `json:"interval_return"`
	IntervalEpisodes int     `json:"interval_episodes"`
}

// saveCheckpoint writes st atomically: a crash leaves the old checkpoint or
// the new one, never half of one. It is written when ctx ends too (that is
// when it matters most), so the write does not take ctx's cancellation.
func saveCheckpoint(ctx context.Context, run runstore.Store, st *checkpoint) error {
	path := run.Where(CheckpointFile)
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding checkpoint %s: %w", path, err)
	}
	if err := runstore.PutBytes(context.WithoutCancel(ctx), run, CheckpointFile, data); err != nil {
		return fmt.Errorf("writing checkpoint %s: %w", path, err)
	}
	return nil
}

// loadCheckpoint reads a checkpoint for spec (already normalized) on e. A
// missing checkpoint is an error wrapping fs.ErrNotExist.
func loadCheckpoint(ctx context.Context, run runstore.Store, spec Spec, e env.Env) (*checkpoint, error) {
	path := run.Where(CheckpointFile)
	data, err := runstore.ReadAll(ctx, run, CheckpointFile)
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	st, err := decodeCheckpoint(data, e.NumStates(), e.NumActions())
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if !sameTraining(st.Spec, spec) {
		return nil, fmt.Errorf("checkpoint %s was written by a run with a different spec; remove it or use another run directory", path)
	}
	if st.Episodes > spec.Episodes {
		return nil, fmt.Errorf("checkpoint %s has %d episodes, more than the %d this run asks for", path, st.Episodes, spec.Episodes)
	}
	return st, nil
}

// decodeCheckpoint parses and validates a checkpoint for a states x actions
// table.
func decodeCheckpoint(data []byte, states, actions int) (*checkpoint, error) {
	var st checkpoint
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if st.Version != checkpointVersion {
		return nil, fmt.Errorf("format version %d, this lepton reads version %d", st.Version, checkpointVersion)
	}
	if st.Episodes < 0 || st.Steps < 0 || st.IntervalEpisodes < 0 || st.IntervalEpisodes > st.Episodes {
		return nil, fmt.Errorf("bad episode counts %d and %d", st.Episodes, st.IntervalEpisodes)
	}
	if len(st.Q) != states {
		return nil, fmt.Errorf("Q-table has %d states, the environment %d", len(st.Q), states)
	}
	for s, row := range st.Q {
		if len(row) != actions {
			return nil, fmt.Errorf("Q-table row %d has %d actions, the environment %d", s, len(row), actions)
		}
		for a, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("Q-table value [%d][%d] is %v", s, a, v)
			}
		}
	}
	return &st, nil
}

// sameTraining reports whether two normalized specs train the same table.
// Neither the number of evaluation episodes nor the total number of episodes
// changes what the first N episodes do.
func sameTraining(a, b Spec) bool {
	a.EvalEpisodes, b.EvalEpisodes = 0, 0
	a.Episodes, b.Episodes = 0, 0
	return reflect.DeepEqual(a, b)
}
