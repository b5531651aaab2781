package artifact

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	if err := WriteFileAtomic(p, b, 0o644); err != nil {
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

// WriteFileAtomic writes b to path through a temporary file in the same
// directory, fsyncs it and renames it into place, then fsyncs the directory.
func WriteFileAtomic(path string, b []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		// Best effort: some filesystems refuse fsync on directories.
		_ = d.Sync()
		d.Close()
	}
	return nil
}
