// Package state is lepton's record of what exists: the JSON state format, the
// local backend with atomic writes and an OS file lock, and a persister that
// writes state as resources finish without rewriting the file once per resource.
package state

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/google/uuid"

	"github.com/leptonml/lepton/internal/crypt"
)

// FormatVersion is the version of the state file format.
const FormatVersion = 1

// Resource statuses.
const (
	StatusReady   = "ready"
	StatusTainted = "tainted"
	StatusRunning = "running"
)

// State is the whole state file.
type State struct {
	Version       int               `json:"version"`
	LeptonVersion string            `json:"lepton_version"`
	Serial        uint64            `json:"serial"`
	Lineage       string            `json:"lineage"`
	Outputs       map[string]Output `json:"outputs"`
	// Deposed are objects replaced under create_before_destroy whose delete
	// has not happened yet (or failed): the next apply deletes them. Kept
	// apart from Resources, which holds one current object per address.
	Deposed   []*Deposed  `json:"deposed,omitempty"`
	Resources []*Resource `json:"resources"`
	// index speeds up Put; it is checked against Resources on each use and
	// rebuilt when Resources was changed another way.
	index *resourceIndex
}

// Output is a root output value.
type Output struct {
	Value     json.RawMessage `json:"value"`
	Type      json.RawMessage `json:"type"`
	Sensitive bool            `json:"sensitive,omitempty"`
}

// Resource is one resource instance.
type Resource struct {
	Address  string `json:"address"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Index    any    `json:"index,omitempty"`
	Provider string `json:"provider"`
	// ProviderConfig is the provider configuration the resource named with
	// its `provider` meta-argument ("aws.west"); empty for the defaults.
	ProviderConfig string `json:"provider_config,omitempty"`
	Status         string `json:"status"`
	// Attributes are the instance's attributes as cty JSON of the kind's state type.
	Attributes json.RawMessage `json:"attributes"`
	// SensitiveAttributes are paths (attribute names and keys) never to show.
	SensitiveAttributes [][]any  `json:"sensitive_attributes,omitempty"`
	Dependencies        []string `json:"dependencies,omitempty"`
	// SchemaVersion is the version of the kind's schema the attributes were
	// written with; older ones are upgraded by the kind when read.
	SchemaVersion int `json:"schema_version,omitempty"`
	// Private is the provider's own data for the object (a job or instance
	// id), opaque to everything else; base64 in JSON.
	Private []byte `json:"private,omitempty"`
}

// Deposed is an object that no longer holds its address but still exists:
// the old object of a create_before_destroy replacement until it is deleted.
type Deposed struct {
	// Key tells deposed objects of one address apart (8 hex digits, as
	// Terraform's deposed keys).
	Key string `json:"key"`
	Resource
}

// New returns an empty state with a fresh lineage.
func New(version string) *State {
	return &State{Version: FormatVersion, LeptonVersion: version, Lineage: uuid.NewString(), Outputs: map[string]Output{}}
}

// Parse decodes and checks a state file.
func Parse(b []byte) (*State, error) {
	if crypt.IsEnvelope(b) {
		return nil, errEncrypted
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state file is not valid JSON (it may be corrupt; lepton.state.json.backup holds the previous version): %w", err)
	}
	if s.Version == 0 || s.Lineage == "" {
		return nil, fmt.Errorf("state file has no version or lineage: it is not a lepton state file")
	}
	if s.Version > FormatVersion {
		return nil, fmt.Errorf("state file format version %d is newer than this lepton understands (%d): upgrade lepton", s.Version, FormatVersion)
	}
	seen := map[string]bool{}
	for i, r := range s.Resources {
		if r == nil || r.Address == "" || r.Kind == "" {
			return nil, fmt.Errorf("state file resource %d has no address or kind", i)
		}
		if seen[r.Address] {
			return nil, fmt.Errorf("state file lists %s twice", r.Address)
		}
		seen[r.Address] = true
	}
	deposed := map[string]bool{}
	for i, d := range s.Deposed {
		if d == nil || d.Address == "" || d.Kind == "" || d.Key == "" {
			return nil, fmt.Errorf("state file deposed object %d has no address, kind or key", i)
		}
		k := d.Address + " " + d.Key
		if deposed[k] {
			return nil, fmt.Errorf("state file lists deposed object %s of %s twice", d.Key, d.Address)
		}
		deposed[k] = true
	}
	if s.Outputs == nil {
		s.Outputs = map[string]Output{}
	}
	return &s, nil
}

// Encode renders the state as indented JSON with resources sorted by address.
func (s *State) Encode() ([]byte, error) {
	c := *s
	c.Resources = append([]*Resource(nil), s.Resources...)
	sort.Slice(c.Resources, func(i, j int) bool { return c.Resources[i].Address < c.Resources[j].Address })
	if c.Outputs == nil {
		c.Outputs = map[string]Output{}
	}
	if c.Resources == nil {
		c.Resources = []*Resource{}
	}
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	return append(b, '\n'), nil
}

// Find returns the resource with the address, or nil.
func (s *State) Find(addr string) *Resource {
	for _, r := range s.Resources {
		if r.Address == addr {
			return r
		}
	}
	return nil
}

// Remove deletes the resource with the address and reports whether it was there.
func (s *State) Remove(addr string) bool {
	for i, r := range s.Resources {
		if r.Address == addr {
			s.Resources = append(s.Resources[:i], s.Resources[i+1:]...)
			return true
		}
	}
	return false
}

// Clone returns a copy that shares no mutable slices or maps with s
// (resources are copied; their byte slices are never modified in place).
func (s *State) Clone() *State {
	c := *s
	c.Resources = make([]*Resource, len(s.Resources))
	for i, r := range s.Resources {
		rc := *r
		c.Resources[i] = &rc
	}
	c.Deposed = make([]*Deposed, len(s.Deposed))
	for i, d := range s.Deposed {
		dc := *d
		c.Deposed[i] = &dc
	}
	if len(c.Deposed) == 0 {
		c.Deposed = nil
	}
	c.Outputs = make(map[string]Output, len(s.Outputs))
	for k, v := range s.Outputs {
		c.Outputs[k] = v
	}
	return &c
}

// AddDeposed records an object as deposed and returns its key.
func (s *State) AddDeposed(r *Resource) string {
	used := map[string]bool{}
	for _, d := range s.Deposed {
		if d.Address == r.Address {
			used[d.Key] = true
		}
	}
	var key string
	for {
		key = uuid.NewString()[:8]
		if !used[key] {
			break
		}
	}
	s.Deposed = append(s.Deposed, &Deposed{Key: key, Resource: *r})
	return key
}

// FindDeposed returns the deposed object of an address with a key, or nil.
func (s *State) FindDeposed(addr, key string) *Deposed {
	for _, d := range s.Deposed {
		if d.Address == addr && d.Key == key {
			return d
		}
	}
	return nil
}

// RemoveDeposed deletes a deposed object and reports whether it was there.
func (s *State) RemoveDeposed(addr, key string) bool {
	for i, d := range s.Deposed {
		if d.Address == addr && d.Key == key {
			s.Deposed = append(s.Deposed[:i:i], s.Deposed[i+1:]...)
			if len(s.Deposed) == 0 {
				s.Deposed = nil
			}
			return true
		}
	}
	return false
}
