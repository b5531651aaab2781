package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/leptonml/lepton/internal/fsutil"
	"github.com/leptonml/lepton/runtime/rl"
	"github.com/leptonml/lepton/runtime/train"
)

// RunMetrics is what a training records in its run directory as it goes:
// one entry per epoch (supervised) or per progress report (Q-learning), and
// the confusion matrix on the test split when the run ends. `lepton ui`
// draws its curves from it while the run is in flight, and `lepton show
// -png` after.
type RunMetrics struct {
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

// RunMetricsPath is where a training's RunMetrics live.
func RunMetricsPath(dataDir, address string) string {
	return filepath.Join(RunDir(dataDir, address), "metrics.json")
}

// ReadRunMetrics returns a training's recorded metrics; ok is false when
// it has recorded none (not run here, or run before lepton recorded them).
func ReadRunMetrics(dataDir, address string) (m *RunMetrics, ok bool, err error) {
	b, err := os.ReadFile(RunMetricsPath(dataDir, address))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading the metrics of %s: %w", address, err)
	}
	m = &RunMetrics{}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, false, fmt.Errorf("%s: %w", RunMetricsPath(dataDir, address), err)
	}
	return m, true, nil
}

// write replaces the file atomically, so a reader never sees half of it.
func (m *RunMetrics) write(runDir string) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFile(filepath.Join(runDir, "metrics.json"), b, 0o644, fsutil.Options{MkdirAll: true}); err != nil {
		return fmt.Errorf("recording run metrics: %w", err)
	}
	return nil
}

// addEpisode records a Q-learning progress report; a resumed run reports
// from its checkpoint on, replacing what the interrupted one wrote after it.
func (m *RunMetrics) addEpisode(p rl.Progress) {
	keep := m.Episodes[:0]
	for _, e := range m.Episodes {
		if e.Episode < p.Episode {
			keep = append(keep, e)
		}
	}
	m.Episodes = append(keep, p)
}

// resumeRunMetrics starts a run's record from what an interrupted run of
// the same arguments left (prepareRunDir clears the directory otherwise).
func resumeRunMetrics(runDir, objective string, planned int) *RunMetrics {
	m := &RunMetrics{Objective: objective, Planned: planned}
	if b, err := os.ReadFile(filepath.Join(runDir, "metrics.json")); err == nil {
		var prev RunMetrics
		if json.Unmarshal(b, &prev) == nil && prev.Objective == objective {
			m.Episodes = prev.Episodes
			m.Epochs = prev.Epochs
		}
	}
	return m
}
