// Package promsd writes Prometheus file-based service discovery targets for
// the endpoints lepton runs, so an existing Prometheus scrapes them (see
// examples/monitoring).
package promsd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"

	"github.com/leptonml/lepton/internal/fsutil"
	"github.com/leptonml/lepton/internal/state"
)

// Group is one entry of a file_sd_configs file.
type Group struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// Path is where the targets file is written: .lepton/prometheus/targets.json.
func Path(dataDir string) string { return filepath.Join(dataDir, "prometheus", "targets.json") }

// ServesMetrics tells whether instances of a kind (by its provider) serve
// /metrics: the kind's resource decides, not its name.
type ServesMetrics func(kind, provider string) bool

// Targets lists the live endpoints in st (the instances whose kind serves
// metrics), one group each, labelled with the resource address, the model
// version served and the cluster it runs on ("local" for this machine).
func Targets(st *state.State, serves ServesMetrics) []Group {
	out := []Group{}
	if st == nil {
		return out
	}
	for _, r := range st.Resources {
		if !serves(r.Kind, r.Provider) || r.Status == state.StatusTainted {
			continue
		}
		var a struct {
			URL          string `json:"url"`
			ModelVersion string `json:"model_version"`
			Cluster      string `json:"cluster"`
		}
		if json.Unmarshal(r.Attributes, &a) != nil || a.URL == "" {
			continue
		}
		u, err := url.Parse(a.URL)
		if err != nil || u.Host == "" {
			continue
		}
		cluster := a.Cluster
		if cluster == "" {
			cluster = "local"
		}
		labels := map[string]string{
			"address":       r.Address,
			"model_version": a.ModelVersion,
			"cluster":       cluster,
		}
		if u.Scheme == "https" {
			labels["__scheme__"] = "https"
		}
		out = append(out, Group{Targets: []string{u.Host}, Labels: labels})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Labels["address"] < out[j].Labels["address"] })
	return out
}

// Write replaces the targets file atomically (Prometheus re-reads it when
// it changes, and must never see half of it). A project that has never had
// an endpoint gets no file.
func Write(dataDir string, st *state.State, serves ServesMetrics) error {
	groups := Targets(st, serves)
	p := Path(dataDir)
	if len(groups) == 0 {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return nil
		}
	}
	b, err := json.MarshalIndent(groups, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFile(p, append(b, '\n'), 0o644, fsutil.Options{MkdirAll: true}); err != nil {
		return fmt.Errorf("writing Prometheus targets %s: %w", p, err)
	}
	return nil
}
