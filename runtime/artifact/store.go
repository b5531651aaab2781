package artifact

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/leptonml/lepton/runtime/runstore"
)

// Store keeps artifacts as objects named by their digest,
// sha256-<hex>.lmodel: under artifacts/ in a run store (Objects; the CLI's
// .lepton/artifacts), or directly in the directory Dir (what an endpoint's
// server process is given).
type Store struct {
	Dir     string
	Objects runstore.Store
}

const fileExt = ".lmodel"

// objects is the store the artifacts are in and their keys' prefix.
func (s Store) objects() (runstore.Store, string) {
	if s.Objects != nil {
		return s.Objects, "artifacts/"
	}
	return runstore.NewDir(s.Dir, runstore.DirOptions{}), ""
}

// key is the artifact's key in its store.
func (s Store) key(digest string) (runstore.Store, string, error) {
	hexd, ok := strings.CutPrefix(digest, "sha256:")
	if _, err := hex.DecodeString(hexd); !ok || err != nil || len(hexd) != 64 {
		return nil, "", fmt.Errorf("artifact reference %q: want sha256:<64 hex digits>", digest)
	}
	objs, prefix := s.objects()
	return objs, prefix + "sha256-" + hexd + fileExt, nil
}

// location names where the artifacts are, for messages.
func (s Store) location() string {
	if s.Objects != nil {
		return s.Objects.Where("artifacts")
	}
	return s.Dir
}

// Path names the object that holds the artifact with this digest (its file
// in a local store), after checking that the digest is well formed.
func (s Store) Path(digest string) (string, error) {
	objs, key, err := s.key(digest)
	if err != nil {
		return "", err
	}
	return objs.Where(key), nil
}

// Has reports whether the artifact with this digest is stored.
func (s Store) Has(ctx context.Context, digest string) (bool, error) {
	objs, key, err := s.key(digest)
	if err != nil {
		return false, err
	}
	return runstore.Exists(ctx, objs, key)
}

// Put writes m and returns its digest. Writing the same model twice is a no-op.
// The write is atomic: a crash leaves either no object or the whole object.
func (s Store) Put(ctx context.Context, m *Model) (string, error) {
	b, err := Encode(m)
	if err != nil {
		return "", err
	}
	d := DigestOf(b)
	objs, key, _ := s.key(d)
	if ok, _ := runstore.Exists(ctx, objs, key); ok {
		m.digest = d
		return d, nil
	}
	if err := runstore.PutBytes(ctx, objs, key, b); err != nil {
		return "", fmt.Errorf("store artifact %s: %w", d, err)
	}
	m.digest = d
	return d, nil
}

// Get reads and checks the artifact with this digest.
func (s Store) Get(ctx context.Context, digest string) (*Model, error) {
	objs, key, err := s.key(digest)
	if err != nil {
		return nil, err
	}
	b, err := runstore.ReadAll(ctx, objs, key)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("artifact %s: not in %s (was the training run destroyed, or .lepton deleted?): %w", digest, s.location(), err)
		}
		return nil, fmt.Errorf("artifact %s: %w", digest, err)
	}
	p := objs.Where(key)
	if got := DigestOf(b); got != digest {
		return nil, fmt.Errorf("artifact %s: %w: file %s hashes to %s (corrupted or modified)", digest, ErrDigestMismatch, p, got)
	}
	return Decode(b, p)
}

// PutEncoded stores an artifact's encoded bytes as they are (a model trained
// on a remote node and downloaded), after checking that they decode, and
// returns their digest: the same digest the node computed.
func (s Store) PutEncoded(ctx context.Context, b []byte) (string, error) {
	d := DigestOf(b)
	if _, err := Decode(b, d); err != nil {
		return "", err
	}
	objs, key, _ := s.key(d)
	if ok, _ := runstore.Exists(ctx, objs, key); ok {
		return d, nil
	}
	if err := runstore.PutBytes(ctx, objs, key, b); err != nil {
		return "", fmt.Errorf("store artifact %s: %w", d, err)
	}
	return d, nil
}

// GetEncoded returns an artifact's encoded bytes, checked against digest.
func (s Store) GetEncoded(ctx context.Context, digest string) ([]byte, error) {
	objs, key, err := s.key(digest)
	if err != nil {
		return nil, err
	}
	b, err := runstore.ReadAll(ctx, objs, key)
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", digest, err)
	}
	if got := DigestOf(b); got != digest {
		return nil, fmt.Errorf("artifact %s: %w: %s hashes to %s (corrupted or modified)", digest, ErrDigestMismatch, objs.Where(key), got)
	}
	return b, nil
}
