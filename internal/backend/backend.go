// Package backend opens the state backend a configuration names — local,
// s3, gcs, azurerm or pg — with the settings of its backend block merged with
// lepton init's -backend-config, which init records in .lepton/backend.json
// so that later commands use them, as Terraform records them in .terraform/.
package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"

	"github.com/leptonml/lepton/internal/backend/azurerm"
	"github.com/leptonml/lepton/internal/backend/gcs"
	"github.com/leptonml/lepton/internal/backend/pg"
	"github.com/leptonml/lepton/internal/backend/s3"
	"github.com/leptonml/lepton/internal/fsutil"
	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/state/remote"
	"github.com/leptonml/lepton/lang"
)

// DefaultStatePath is where the local backend keeps state unless configured.
const DefaultStatePath = "lepton.state.json"

// RecordFile is where init records the backend, relative to the working
// directory.
var RecordFile = filepath.Join(".lepton", "backend.json")

// Config is a backend's type and settings.
type Config struct {
	Type     string          `json:"type"`
	Settings remote.Settings `json:"settings"`
	// Hash identifies the backend block's own settings (without
	// -backend-config): a changed block needs init again.
	Hash string `json:"hash"`
}

// Equal reports whether two configs reach the same backend.
func (c Config) Equal(o Config) bool {
	if c.Type != o.Type || len(c.Settings) != len(o.Settings) {
		return false
	}
	for k, v := range c.Settings {
		if o.Settings[k] != v {
			return false
		}
	}
	return true
}

// String names the backend type and its non-default settings for messages.
func (c Config) String() string {
	if c.Type == "local" && len(c.Settings) == 0 {
		return `"local" (` + DefaultStatePath + `)`
	}
	return fmt.Sprintf("%q", c.Type)
}

// FromConfig returns the backend the configuration's block declares (local
// with no settings when there is none).
func FromConfig(cfg *lang.Config) (Config, error) {
	c := Config{Type: "local", Settings: remote.Settings{}}
	if cfg == nil || cfg.Lepton == nil || cfg.Lepton.Backend == nil {
		c.Hash = hash(c)
		return c, nil
	}
	be := cfg.Lepton.Backend
	c.Type = be.Type
	if be.Type == "local" {
		// The local backend reads path, a string, and has always ignored
		// everything else.
		if p, ok := be.Config["path"]; ok && !p.IsNull() && p.IsKnown() && p.Type() == cty.String && p.AsString() != "" {
			c.Settings["path"] = p.AsString()
		}
		c.Hash = hash(c)
		return c, nil
	}
	for k, v := range be.Config {
		s, err := settingString(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s: backend %q setting %s %w", be.DeclRange, be.Type, k, err)
		}
		if s != "" {
			c.Settings[k] = s
		}
	}
	c.Hash = hash(c)
	return c, nil
}

func settingString(v cty.Value) (string, error) {
	if v.IsNull() {
		return "", nil
	}
	if !v.IsWhollyKnown() {
		return "", errors.New("is not known")
	}
	switch v.Type() {
	case cty.String:
		return v.AsString(), nil
	case cty.Bool:
		if v.True() {
			return "true", nil
		}
		return "false", nil
	case cty.Number:
		return v.AsBigFloat().Text('f', -1), nil
	}
	return "", fmt.Errorf("must be a string, number or bool, not %s", v.Type().FriendlyName())
}

func hash(c Config) string {
	keys := make([]string, 0, len(c.Settings))
	for k := range c.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	fmt.Fprintf(h, "%q\n", c.Type)
	for _, k := range keys {
		fmt.Fprintf(h, "%q=%q\n", k, c.Settings[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Merge returns c with extra settings (init's -backend-config) over its own.
func (c Config) Merge(extra map[string]string) Config {
	out := Config{Type: c.Type, Hash: c.Hash, Settings: remote.Settings{}}
	for k, v := range c.Settings {
		out.Settings[k] = v
	}
	for k, v := range extra {
		out.Settings[k] = v
	}
	return out
}

// ParseFlags reads init's -backend-config values: KEY=VALUE, or the path of
// an HCL file of key = value lines (relative to dir).
func ParseFlags(values []string, dir string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		if k, val, ok := strings.Cut(v, "="); ok && !strings.ContainsAny(k, `/\.`) {
			k = strings.TrimSpace(k)
			if k == "" {
				return nil, fmt.Errorf("-backend-config %q: want KEY=VALUE or a file", v)
			}
			out[k] = val
			continue
		}
		p := v
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("-backend-config %s: %w", v, err)
		}
		f, diags := hclparse.NewParser().ParseHCL(src, v)
		if diags.HasErrors() {
			return nil, fmt.Errorf("-backend-config: %s", diags.Error())
		}
		attrs, diags := f.Body.JustAttributes()
		if diags.HasErrors() {
			return nil, fmt.Errorf("-backend-config: %s", diags.Error())
		}
		for name, a := range attrs {
			val, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				return nil, fmt.Errorf("-backend-config: %s", diags.Error())
			}
			s, err := settingString(val)
			if err != nil {
				return nil, fmt.Errorf("%s: %s %w", rangeOf(a), name, err)
			}
			out[name] = s
		}
	}
	return out, nil
}

func rangeOf(a *hcl.Attribute) string { return a.Range.String() }

// LoadRecord returns what init recorded in dir, or nil.
func LoadRecord(dir string) (*Config, error) {
	b, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the backend lepton init recorded: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil || c.Type == "" {
		return nil, fmt.Errorf("%s is not valid (%v): run lepton init -reconfigure", RecordFile, err)
	}
	if c.Settings == nil {
		c.Settings = remote.Settings{}
	}
	return &c, nil
}

// SaveRecord records c in dir (mode 0600: settings name buckets and hosts).
func SaveRecord(dir string, c Config) error {
	if err := CheckNoSecrets(c); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFile(filepath.Join(dir, RecordFile), append(b, '\n'), 0o600, fsutil.Options{MkdirAll: true})
}

// CheckNoSecrets refuses settings that would put a password in the record:
// credentials belong in the environment.
func CheckNoSecrets(c Config) error {
	if cs := c.Settings["conn_str"]; cs != "" && hasPassword(cs) {
		return errors.New("the pg backend's conn_str holds a password, which lepton does not record in plain text: give it in PGPASSWORD (or ~/.pgpass) and leave it out of conn_str")
	}
	return nil
}

func hasPassword(conn string) bool {
	if i := strings.Index(conn, "://"); i >= 0 {
		rest := conn[i+3:]
		if at := strings.Index(rest, "@"); at >= 0 {
			return strings.Contains(rest[:at], ":")
		}
		return strings.Contains(conn, "password=")
	}
	return strings.Contains(conn, "password=")
}

// Resolve returns the backend to use in dir: the block's, with what init
// recorded for it. A remote backend needs init first; a block changed since
// init needs init again, as in Terraform.
func Resolve(cfg *lang.Config, dir string) (Config, error) {
	want, err := FromConfig(cfg)
	if err != nil {
		return Config{}, err
	}
	rec, err := LoadRecord(dir)
	if err != nil {
		return Config{}, err
	}
	if rec == nil {
		if want.Type != "local" {
			return Config{}, fmt.Errorf("Backend initialization required: the configuration uses the %q backend, which lepton init has not set up here. Run \"lepton init\" (add -migrate-state to move an existing state into it)", want.Type)
		}
		return want, nil
	}
	if rec.Type != want.Type || rec.Hash != want.Hash {
		return Config{}, fmt.Errorf("Backend configuration changed: lepton init set up the %s backend, and the configuration now says %s. Run \"lepton init -migrate-state\" to move the state, or \"lepton init -reconfigure\" to use the new backend without moving it", rec, want)
	}
	return *rec, nil
}

// Open returns the Backend for c; a local path is relative to dir.
func Open(ctx context.Context, c Config, dir string) (state.Backend, error) {
	switch c.Type {
	case "local":
		p := c.Settings["path"]
		if p == "" {
			p = DefaultStatePath
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return state.NewLocal(p), nil
	case "s3":
		return s3.New(ctx, c.Settings)
	case "gcs":
		return gcs.New(ctx, c.Settings)
	case "azurerm":
		return azurerm.New(ctx, c.Settings)
	case "pg":
		return pg.New(ctx, c.Settings)
	}
	return nil, fmt.Errorf("unknown backend type %q: want local, s3, gcs, azurerm or pg", c.Type)
}
