package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/leptonml/lepton/runtime/runmetrics"
)

// RunMetrics is what a training records in its run directory as it goes:
// `lepton ui` draws its curves from it while the run is in flight, and
// `lepton show -png` after (runtime/runmetrics).
type RunMetrics = runmetrics.Metrics

// RunMetricsPath is where a training's RunMetrics live.
func RunMetricsPath(dataDir, address string) string {
	return filepath.Join(RunDir(dataDir, address), runmetrics.File)
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
