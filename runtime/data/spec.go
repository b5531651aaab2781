// Package data loads a dataset declared by a `dataset` block: it reads the
// source in one streaming pass into compact columns, cleans, encodes, screens
// anomalies, splits, normalises (with statistics from the training split only)
// and augments, producing float32 matrices for the training kernels plus a
// report for `lepton show`. Fingerprint computes the plan-time digest.
package data

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/leptonml/lepton/runtime/data/source"
)

// Source, SQL and Log are the source block's shapes (see package source).
type (
	Source = source.Source
	SQL    = source.SQL
	Log    = source.Log
)

// Spec is a decoded `dataset` block.
type Spec struct {
	BaseDir    string // the working directory; relative paths resolve against it
	Source     Source
	Format     string // csv | jsonl | json | idx ; "" = infer from the name
	Label      string // "" = unsupervised
	Features   []string
	Preprocess Preprocess
	Split      *Split // nil = everything is train, unless the builtin has a standard split

	// Options tune how sources are read (HTTP retries, size limit, object
	// store endpoints); zero values are the defaults. Not part of the digest.
	Options source.Options
}

// Preprocess is the preprocess block; empty strings take the defaults.
type Preprocess struct {
	Missing   string // drop (default) | mean | median | zero
	Normalize string // none (default) | minmax | zscore
	Encode    string // onehot (default) | ordinal
	Anomalies *Anomalies
	Augment   *Augment
}

// Anomalies screens numeric features after imputation and encoding.
type Anomalies struct {
	Method    string  // zscore | iqr
	Threshold float64 // |z| above it (zscore, default 3), or k in Q1-k*IQR..Q3+k*IQR (iqr, default 1.5)
	Action    string  // drop (default) | clip | keep (keeps the row and adds a 0/1 "anomaly" feature)
}

// Augment adds noisy copies of the training rows (in normalised space).
type Augment struct {
	NoiseStddev float64
	Copies      int
}

// Split divides the cleaned rows; the parts must sum to 1.
type Split struct {
	Train, Validation, Test float64
	Seed                    int64
	Stratify                bool
}

func (p Preprocess) missing() string   { return def(p.Missing, "drop") }
func (p Preprocess) normalize() string { return def(p.Normalize, "none") }
func (p Preprocess) encode() string    { return def(p.Encode, "onehot") }

func def(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Validate checks the spec without reading anything.
func (s Spec) Validate() error {
	if _, err := s.Source.Kind(); err != nil {
		return err
	}
	if s.Format != "" {
		switch s.Format {
		case "csv", "jsonl", "json", "idx":
		default:
			return fmt.Errorf("format %q: want csv, jsonl, json or idx", s.Format)
		}
	}
	if q := s.Source.SQL; q != nil {
		if q.Driver != "postgres" && q.Driver != "sqlite" {
			return fmt.Errorf("sql: driver %q: want postgres or sqlite", q.Driver)
		}
		if strings.TrimSpace(q.Query) == "" {
			return errors.New("sql: query is empty")
		}
	}
	if l := s.Source.Log; l != nil {
		if err := CheckLogPattern(l.Pattern); err != nil {
			return err
		}
	}
	p := s.Preprocess
	if !oneOf(p.missing(), "drop", "mean", "median", "zero") {
		return fmt.Errorf("preprocess: missing = %q: want drop, mean, median or zero", p.Missing)
	}
	if !oneOf(p.normalize(), "none", "minmax", "zscore") {
		return fmt.Errorf("preprocess: normalize = %q: want none, minmax or zscore", p.Normalize)
	}
	if !oneOf(p.encode(), "onehot", "ordinal") {
		return fmt.Errorf("preprocess: encode = %q: want onehot or ordinal", p.Encode)
	}
	if a := p.Anomalies; a != nil {
		if !oneOf(a.Method, "zscore", "iqr") {
			return fmt.Errorf("preprocess.anomalies: method = %q: want zscore or iqr", a.Method)
		}
		if !oneOf(def(a.Action, "drop"), "drop", "clip", "keep") {
			return fmt.Errorf("preprocess.anomalies: action = %q: want drop, clip or keep", a.Action)
		}
		if a.Threshold < 0 || math.IsNaN(a.Threshold) {
			return fmt.Errorf("preprocess.anomalies: threshold = %v: must be positive", a.Threshold)
		}
	}
	if a := p.Augment; a != nil {
		if a.Copies < 0 || a.NoiseStddev < 0 {
			return fmt.Errorf("preprocess.augment: copies (%d) and noise_stddev (%v) must not be negative", a.Copies, a.NoiseStddev)
		}
	}
	if sp := s.Split; sp != nil {
		for _, f := range []float64{sp.Train, sp.Validation, sp.Test} {
			if f < 0 || f > 1 || math.IsNaN(f) {
				return fmt.Errorf("split: every part must be between 0 and 1 (train %v, validation %v, test %v)", sp.Train, sp.Validation, sp.Test)
			}
		}
		if sum := sp.Train + sp.Validation + sp.Test; math.Abs(sum-1) > 1e-6 {
			return fmt.Errorf("split: train + validation + test = %v + %v + %v = %v; the parts must sum to 1", sp.Train, sp.Validation, sp.Test, sum)
		}
		if sp.Train == 0 {
			return errors.New("split: train must be more than 0")
		}
		if sp.Stratify && s.Label == "" {
			return errors.New("split: stratify needs a label")
		}
	}
	seen := map[string]bool{}
	for _, f := range s.Features {
		if f == s.Label && f != "" {
			return fmt.Errorf("features: %q is the label; a column cannot be both", f)
		}
		if seen[f] {
			return fmt.Errorf("features: %q is listed twice", f)
		}
		seen[f] = true
	}
	return nil
}

// CheckLogPattern compiles an RE2 pattern and requires named groups.
func CheckLogPattern(p string) error { return source.CheckLogPattern(p) }

func oneOf(s string, opts ...string) bool {
	for _, o := range opts {
		if s == o {
			return true
		}
	}
	return false
}

// canonicalSpec is what the digest covers besides the content: everything
// that changes the output, and nothing that does not (working directory,
// HTTP headers, timeouts) or that is secret (the DSN's password).
func (s Spec) canonicalSpec() []byte {
	type canon struct {
		Kind       string
		Builtin    string      `json:",omitempty"`
		File       string      `json:",omitempty"`
		URL        string      `json:",omitempty"`
		Object     string      `json:",omitempty"`
		SQL        *source.SQL `json:",omitempty"`
		Log        *source.Log `json:",omitempty"`
		Format     string      `json:",omitempty"`
		Label      string      `json:",omitempty"`
		Features   []string    `json:",omitempty"`
		Preprocess Preprocess
		Split      *Split `json:",omitempty"`
		Version    int
	}
	k, _ := s.Source.Kind()
	c := canon{Kind: k, Builtin: s.Source.Builtin, File: s.Source.File, URL: s.Source.URL, Object: s.Source.Object,
		Log: s.Source.Log, Format: s.Format, Label: s.Label, Features: s.Features, Split: s.Split,
		Version: pipelineVersion}
	c.Preprocess = s.Preprocess
	c.Preprocess.Missing, c.Preprocess.Normalize, c.Preprocess.Encode = s.Preprocess.missing(), s.Preprocess.normalize(), s.Preprocess.encode()
	if a := c.Preprocess.Anomalies; a != nil {
		cp := *a
		cp.Action = def(cp.Action, "drop")
		cp.Threshold = anomalyThreshold(a)
		c.Preprocess.Anomalies = &cp
	}
	if q := s.Source.SQL; q != nil {
		cp := *q
		cp.DSN = redactDSN(q.DSN)
		c.SQL = &cp
	}
	b, _ := json.Marshal(c) // plain structs: cannot fail
	return b
}

// pipelineVersion changes when the processing itself changes meaning, so that
// old digests no longer match.
const pipelineVersion = 1

func anomalyThreshold(a *Anomalies) float64 {
	if a.Threshold > 0 {
		return a.Threshold
	}
	if a.Method == "iqr" {
		return 1.5
	}
	return 3
}

// redactDSN drops passwords from URL-style and keyword-style DSNs.
func redactDSN(dsn string) string { return source.RedactDSN(dsn) }

// combine makes the digest from the content fingerprint and the spec.
func combine(content string, spec []byte) string {
	h := sha256.New()
	h.Write([]byte(content))
	h.Write([]byte{0})
	h.Write(spec)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
