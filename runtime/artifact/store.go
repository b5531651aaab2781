package artifact

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/leptonml/lepton/internal/fsutil"
)

// Store keeps artifacts as files named by their digest in Dir
// (the CLI uses .lepton/artifacts).
type Store struct {
	Dir string
}

const fileExt = ".lmodel"

// Path returns the file that holds the artifact with this digest.
func (s Store) Path(digest string) (string, error) {
	hexd, ok := strings.CutPrefix(digest, "sha256:")
	if _, err := hex.DecodeString(hexd); !ok || err != nil || len(hexd) != 64 {
		return "", fmt.Errorf("artifact reference %q: want sha256:<64 hex digits>", digest)
	}
	return filepath.Join(s.Dir, "sha256-"+hexd+fileExt), nil
}

// Put writes m and returns its digest. Writing the same model twice is a no-op.
// The write is atomic: a crash leaves either no file or the whole file.
func (s Store) Put(m *Model) (string, error) {
	b, err := Encode(m)
	if err != nil {
		return "", err
	}
	d := DigestOf(b)
	p, _ := s.Path(d)
	if _, err := os.Stat(p); err == nil {
		m.digest = d
		return d, nil
	}
	if err := fsutil.WriteFile(p, b, 0o644, fsutil.Options{MkdirAll: true}); err != nil {
		return "", fmt.Errorf("store artifact %s: %w", d, err)
	}
	m.digest = d
	return d, nil
}

// Get reads and checks the artifact with this digest.
func (s Store) Get(digest string) (*Model, error) {
	p, err := s.Path(digest)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("artifact %s: not in %s (was the training run destroyed, or .lepton deleted?): %w", digest, s.Dir, err)
		}
		return nil, fmt.Errorf("artifact %s: %w", digest, err)
	}
	if got := DigestOf(b); got != digest {
		return nil, fmt.Errorf("artifact %s: %w: file %s hashes to %s (corrupted or modified)", digest, ErrDigestMismatch, p, got)
	}
	return Decode(b, p)
}
