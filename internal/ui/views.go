package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/planner"
	"github.com/leptonml/lepton/providers/local"
	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/rl"
	"github.com/leptonml/lepton/runtime/train"
)

// find returns the resource named by the request's addr parameter, or
// answers the request itself (404) and returns nil.
func (s *Server) find(w http.ResponseWriter, r *http.Request) (*state.Resource, *snapshot) {
	snap := s.snapshot()
	if snap.err != nil {
		http.Error(w, snap.err.Error(), http.StatusInternalServerError)
		return nil, nil
	}
	addr := r.URL.Query().Get("addr")
	res := snap.byAdr[addr]
	if res == nil {
		http.Error(w, "no resource "+addr+" in state", http.StatusNotFound)
		return nil, nil
	}
	return res, snap
}

// ResourceView is the /api/resource answer: any resource's details.
type ResourceView struct {
	Address      string   `json:"address"`
	Kind         string   `json:"kind"`
	Name         string   `json:"name"`
	Status       string   `json:"status"`
	Provider     string   `json:"provider"`
	Dependencies []string `json:"dependencies"`
	Dependents   []string `json:"dependents"`
	// Text is the resource as `lepton state show` prints it (sensitive values hidden).
	Text  string `json:"text"`
	Error string `json:"error,omitempty"`
}

func (s *Server) apiResource(w http.ResponseWriter, r *http.Request) {
	res, snap := s.find(w, r)
	if res == nil {
		return
	}
	v := ResourceView{Address: res.Address, Kind: res.Kind, Name: res.Name, Status: res.Status, Provider: res.Provider,
		Dependencies: append([]string{}, res.Dependencies...), Dependents: []string{}}
	base, _ := splitInstance(res.Address)
	for _, o := range snap.st.Resources {
		for _, d := range o.Dependencies {
			if d == base {
				v.Dependents = append(v.Dependents, o.Address)
				break
			}
		}
	}
	text, err := planner.DescribeInstance(res)
	v.Text = text
	if err != nil {
		v.Error = err.Error()
	}
	writeJSON(w, v)
}

// TrainingView is the /api/training answer.
type TrainingView struct {
	Address         string               `json:"address"`
	Status          string               `json:"status"`
	Objective       string               `json:"objective"`
	Planned         int                  `json:"planned"`
	EpochsCompleted int                  `json:"epochs_completed"`
	Metrics         map[string]float64   `json:"metrics"`
	Epochs          []train.EpochMetrics `json:"epochs"`
	Episodes        []rl.Progress        `json:"episodes"`
	Confusion       [][]int              `json:"confusion,omitempty"`
	Labels          []string             `json:"labels,omitempty"`
	Model           string               `json:"model,omitempty"`
	Layers          []artifact.LayerInfo `json:"layers"`
	Parameters      int                  `json:"parameters"`
	Running         bool                 `json:"running"`
	Error           string               `json:"error,omitempty"`
}

type trainingAttrs struct {
	Status          string             `json:"status"`
	Objective       string             `json:"objective"`
	Epochs          *float64           `json:"epochs"`
	Episodes        *float64           `json:"episodes"`
	EpochsCompleted float64            `json:"epochs_completed"`
	Metrics         map[string]float64 `json:"metrics"`
	Model           string             `json:"model"`
}

func (s *Server) apiTraining(w http.ResponseWriter, r *http.Request) {
	res, _ := s.find(w, r)
	if res == nil {
		return
	}
	var a trainingAttrs
	json.Unmarshal(res.Attributes, &a)
	v := TrainingView{Address: res.Address, Status: a.Status, Objective: a.Objective, EpochsCompleted: int(a.EpochsCompleted),
		Metrics: a.Metrics, Model: a.Model, Epochs: []train.EpochMetrics{}, Episodes: []rl.Progress{}, Layers: []artifact.LayerInfo{},
		Running: res.Status == state.StatusRunning}
	if v.Running || v.Status == "" {
		v.Status = res.Status
	}
	if v.Objective == "" {
		v.Objective = "classification"
	}
	if a.Epochs != nil {
		v.Planned = int(*a.Epochs)
	}
	if a.Episodes != nil && v.Objective == "q_learning" {
		v.Planned = int(*a.Episodes)
	}
	if v.Metrics == nil {
		v.Metrics = map[string]float64{}
	}
	rm, ok, err := local.ReadRunMetrics(s.opts.DataDir, res.Address)
	if err != nil {
		v.Error = err.Error()
	}
	if ok {
		if rm.Epochs != nil {
			v.Epochs = rm.Epochs
		}
		if rm.Episodes != nil {
			v.Episodes = rm.Episodes
		}
		v.Confusion, v.Labels = rm.Confusion, rm.Labels
		if rm.Planned > 0 {
			v.Planned = rm.Planned
		}
	}
	if a.Model != "" {
		if info, err := s.models.get(s.opts.DataDir, a.Model); err != nil {
			v.Error = err.Error()
		} else {
			v.Layers, v.Parameters = info.layers, info.params
			if len(v.Labels) == 0 && v.Confusion != nil {
				v.Labels = info.classes
			}
		}
	}
	writeJSON(w, v)
}

// modelInfo is what the dashboard shows of a model artifact; artifacts are
// content-addressed, so it is read once per digest.
type modelInfo struct {
	layers  []artifact.LayerInfo
	params  int
	classes []string
}

type modelCache struct {
	mu sync.Mutex
	m  map[string]*modelInfo
}

func (c *modelCache) get(dataDir, digest string) (*modelInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if mi, ok := c.m[digest]; ok {
		return mi, nil
	}
	m, err := (&artifact.Store{Dir: filepath.Join(dataDir, "artifacts")}).Get(context.TODO(), digest)
	if err != nil {
		return nil, err
	}
	mi := &modelInfo{layers: m.Layers(), classes: m.ClassLabels}
	if mi.layers == nil {
		mi.layers = []artifact.LayerInfo{}
	}
	for _, l := range mi.layers {
		mi.params += l.Params
	}
	if c.m == nil {
		c.m = map[string]*modelInfo{}
	}
	c.m[digest] = mi
	return mi, nil
}

// DatasetView is the /api/dataset answer.
type DatasetView struct {
	Address   string                        `json:"address"`
	Status    string                        `json:"status"`
	Rows      float64                       `json:"rows"`
	Dropped   float64                       `json:"dropped_rows"`
	Columns   []string                      `json:"columns"`
	Classes   []string                      `json:"classes"`
	Schema    map[string]string             `json:"schema"`
	Stats     map[string]map[string]float64 `json:"stats"`
	Profile   *local.DatasetProfile         `json:"profile,omitempty"`
	Computing bool                          `json:"computing,omitempty"`
	Hidden    string                        `json:"hidden,omitempty"`
	Error     string                        `json:"error,omitempty"`
}

func (s *Server) apiDataset(w http.ResponseWriter, r *http.Request) {
	res, _ := s.find(w, r)
	if res == nil {
		return
	}
	var a struct {
		Rows    float64                       `json:"rows"`
		Dropped float64                       `json:"dropped_rows"`
		Columns []string                      `json:"columns"`
		Classes []string                      `json:"classes"`
		Schema  map[string]string             `json:"schema"`
		Stats   map[string]map[string]float64 `json:"stats"`
		Digest  string                        `json:"digest"`
	}
	json.Unmarshal(res.Attributes, &a)
	v := DatasetView{Address: res.Address, Status: res.Status, Rows: a.Rows, Dropped: a.Dropped, Columns: a.Columns, Classes: a.Classes, Schema: a.Schema, Stats: a.Stats}
	if len(res.SensitiveAttributes) > 0 {
		// As `lepton show`: statistics of data read from sensitive values stay hidden.
		v.Stats, v.Hidden = nil, "The statistics and profile are hidden, because the dataset is built from sensitive values."
		writeJSON(w, v)
		return
	}
	if pr, ok := s.resource(res).(profiler); ok && a.Digest != "" {
		in := s.view(res)
		p, computing, err := s.profiles.get(a.Digest, func(ctx context.Context) (*local.DatasetProfile, error) {
			return pr.Profile(ctx, in)
		})
		v.Profile, v.Computing = p, computing
		if err != nil {
			v.Error = err.Error()
		}
	}
	writeJSON(w, v)
}

// profileCache computes dataset profiles in the background (reading a large
// dataset again can take a while), once per digest.
type profileCache struct {
	mu sync.Mutex
	m  map[string]*profileEntry
}

type profileEntry struct {
	done bool
	p    *local.DatasetProfile
	err  error
}

func newProfileCache() *profileCache { return &profileCache{m: map[string]*profileEntry{}} }

func (c *profileCache) get(digest string, load func(context.Context) (*local.DatasetProfile, error)) (*local.DatasetProfile, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[digest]; ok {
		return e.p, !e.done, e.err
	}
	e := &profileEntry{}
	c.m[digest] = e
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		p, err := load(ctx)
		c.mu.Lock()
		e.p, e.err, e.done = p, err, true
		c.mu.Unlock()
	}()
	// A small dataset's profile is ready at once: wait a moment for it.
	c.mu.Unlock()
	select {
	case <-done:
	case <-time.After(1500 * time.Millisecond):
	}
	c.mu.Lock()
	return e.p, !e.done, e.err
}

// EndpointView is the /api/endpoint answer.
type EndpointView struct {
	Address      string   `json:"address"`
	URL          string   `json:"url"`
	Status       string   `json:"status"`
	Health       string   `json:"health"`
	Detail       string   `json:"detail,omitempty"`
	Replicas     int      `json:"replicas"`
	Workers      int      `json:"workers"`
	ModelVersion string   `json:"model_version"`
	Requests     float64  `json:"requests_total"`
	Errors       float64  `json:"errors_total"`
	Series       []Point  `json:"series"`
	Window       float64  `json:"window_seconds"`
	Scrapes      uint64   `json:"scrapes"`
	Targets      []string `json:"-"`
}

func (s *Server) apiEndpoint(w http.ResponseWriter, r *http.Request) {
	res, _ := s.find(w, r)
	if res == nil {
		return
	}
	var a endpointAttrs
	json.Unmarshal(res.Attributes, &a)
	v := EndpointView{Address: res.Address, URL: a.URL, Status: a.Status, ModelVersion: a.ModelVersion, Replicas: int(a.Replicas), Series: []Point{}}
	if v.Replicas == 0 {
		v.Replicas = 1
	}
	s.scraper.fill(res.Address, &v)
	writeJSON(w, v)
}

type endpointAttrs struct {
	URL          string  `json:"url"`
	Status       string  `json:"status"`
	ModelVersion string  `json:"model_version"`
	Replicas     float64 `json:"replicas"`
	Pid          float64 `json:"pid"`
}

// endpoints lists the endpoints in state for the scraper.
func (s *Server) endpoints() []target {
	snap := s.snapshot()
	if snap.err != nil {
		return nil
	}
	var out []target
	for _, r := range snap.st.Resources {
		ms, ok := s.resource(r).(metricsServer)
		if !ok || !ms.ServesMetrics() {
			continue
		}
		var a endpointAttrs
		json.Unmarshal(r.Attributes, &a)
		if a.URL == "" {
			continue
		}
		out = append(out, target{address: r.Address, url: a.URL, pid: int(a.Pid), readyPath: ms.ReadyFile(s.view(r))})
	}
	return out
}
