// Package runmetrics is what a training records as it goes (its curves),
// in the JSON file metrics.json of its run directory: the local provider
// writes it beside the run's checkpoints, and the node agent writes it the
// same way and uploads it, so `lepton ui` and `lepton show -png` read a
// remote run's curves as a local one's.
package runmetrics

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/leptonml/lepton/internal/fsutil"
	"github.com/leptonml/lepton/runtime/rl"
	"github.com/leptonml/lepton/runtime/train"
)

// File is the metrics' file name in a run directory.
const File = "metrics.json"

// Metrics is one entry per epoch (supervised) or per progress report
// (Q-learning), and the confusion matrix on the test split when the run
// ends.
type Metrics struct {
	Objective string `json:"objective"`
	// Planned is how many epochs (or episodes) the run was asked for.
	Planned  int                  `json:"planned"`
	Epochs   []train.EpochMetrics `json:"epochs,omitempty"`
	Episodes []rl.Progress        `json:"episodes,omitempty"`
	// Confusion[i][j] counts test rows of class Labels[i] predicted as Labels[j].
	Confusion [][]int  `json:"confusion,omitempty"`
	Labels    []string `json:"labels,omitempty"`
	Done      bool     `json:"done"`
}

// Write replaces runDir's metrics file atomically, so a reader never sees
// half of it.
func (m *Metrics) Write(runDir string) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFile(filepath.Join(runDir, File), b, 0o644, fsutil.Options{MkdirAll: true}); err != nil {
		return fmt.Errorf("recording run metrics: %w", err)
	}
	return nil
}

// AddEpisode records a Q-learning progress report; a resumed run reports
// from its checkpoint on, replacing what the interrupted one wrote after it.
func (m *Metrics) AddEpisode(p rl.Progress) {
	keep := m.Episodes[:0]
	for _, e := range m.Episodes {
		if e.Episode < p.Episode {
			keep = append(keep, e)
		}
	}
	m.Episodes = append(keep, p)
}

// Resume starts a run's record from what an interrupted run of the same
// arguments left in runDir (the caller clears the directory otherwise).
func Resume(runDir, objective string, planned int) *Metrics {
	m := &Metrics{Objective: objective, Planned: planned}
	if b, err := os.ReadFile(filepath.Join(runDir, File)); err == nil {
		var prev Metrics
		if json.Unmarshal(b, &prev) == nil && prev.Objective == objective {
			m.Episodes = prev.Episodes
			m.Epochs = prev.Epochs
		}
	}
	return m
}
