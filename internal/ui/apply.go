package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/leptonml/lepton/internal/fsutil"
	"github.com/leptonml/lepton/planner"
)

// ApplyRecord is what the last apply (or destroy) did, kept in
// .lepton/last-apply.json for the dashboard.
type ApplyRecord struct {
	Operation   string       `json:"operation"`
	Started     time.Time    `json:"started"`
	Finished    time.Time    `json:"finished"`
	Added       int          `json:"added"`
	Changed     int          `json:"changed"`
	Destroyed   int          `json:"destroyed"`
	Interrupted bool         `json:"interrupted,omitempty"`
	Errors      []string     `json:"errors,omitempty"`
	Resources   []ApplyEvent `json:"resources"`
}

// ApplyEvent is one resource's part in an apply.
type ApplyEvent struct {
	Address string  `json:"address"`
	Action  string  `json:"action"`
	Seconds float64 `json:"seconds"`
	Summary string  `json:"summary,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// maxApplyEvents bounds the record of an apply of thousands of resources.
const maxApplyEvents = 5000

// LastApplyPath is where the record is kept.
func LastApplyPath(dataDir string) string { return filepath.Join(dataDir, "last-apply.json") }

// Recorder passes apply progress on to another planner.Hooks and keeps what
// happened to each resource.
type Recorder struct {
	next    planner.Hooks
	mu      sync.Mutex
	started time.Time
	events  []ApplyEvent
	more    int
}

// NewRecorder records what passes to next.
func NewRecorder(next planner.Hooks) *Recorder {
	return &Recorder{next: next, started: time.Now().UTC()}
}

func (r *Recorder) add(e ApplyEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) >= maxApplyEvents {
		r.more++
		return
	}
	r.events = append(r.events, e)
}

// Start implements planner.Hooks.
func (r *Recorder) Start(addr string, a planner.Action) { r.next.Start(addr, a) }

// Done implements planner.Hooks.
func (r *Recorder) Done(addr string, a planner.Action, elapsed time.Duration, summary string) {
	r.add(ApplyEvent{Address: addr, Action: a.String(), Seconds: elapsed.Seconds(), Summary: summary})
	r.next.Done(addr, a, elapsed, summary)
}

// Failed implements planner.Hooks.
func (r *Recorder) Failed(addr string, a planner.Action, err error) {
	r.add(ApplyEvent{Address: addr, Action: a.String(), Error: err.Error()})
	r.next.Failed(addr, a, err)
}

// Log implements planner.Hooks.
func (r *Recorder) Log(addr, line string) { r.next.Log(addr, line) }

// Record is the apply's record once it ended.
func (r *Recorder) Record(operation string, res planner.ApplyResult, errs []string) *ApplyRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := &ApplyRecord{Operation: operation, Started: r.started, Finished: time.Now().UTC(),
		Added: res.Added, Changed: res.Changed, Destroyed: res.Destroyed, Interrupted: res.Interrupted,
		Errors: errs, Resources: append([]ApplyEvent(nil), r.events...)}
	if r.more > 0 {
		rec.Errors = append(rec.Errors, fmt.Sprintf("%d more resources are not listed", r.more))
	}
	return rec
}

// WriteLastApply replaces the record atomically.
func WriteLastApply(dataDir string, rec *ApplyRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFile(LastApplyPath(dataDir), b, 0o644, fsutil.Options{MkdirAll: true}); err != nil {
		return fmt.Errorf("recording the apply: %w", err)
	}
	return nil
}

// ReadLastApply returns the record, or nil when no apply was recorded.
func ReadLastApply(dataDir string) (*ApplyRecord, error) {
	b, err := os.ReadFile(LastApplyPath(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec ApplyRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", LastApplyPath(dataDir), err)
	}
	return &rec, nil
}

func (s *Server) apiApply(w http.ResponseWriter, r *http.Request) {
	rec, err := ReadLastApply(s.opts.DataDir)
	out := map[string]any{"apply": rec}
	if err != nil {
		out["error"] = err.Error()
	}
	writeJSON(w, out)
}
