// Package runstore is where runs keep what they produce: model artifacts,
// dataset caches and reports, checkpoints, run logs. It is one small
// interface in the shape of an object store (S3, GCS, Azure Blob), so that a
// remote agent or a Kubernetes job can keep these objects in a bucket while
// lepton on a laptop keeps them under .lepton/ (Dir), file for file as
// before the interface existed.
//
// Keys are slash-separated paths relative to the store's root, such as
// artifacts/sha256-<hex>.lmodel, datasets/<hex>.bin or runs/<run>/train.log.
// The local directory maps a key to the file of the same relative path.
package runstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Store keeps objects under keys. Implementations are safe for concurrent use.
type Store interface {
	// Put writes the object at key from r, replacing any object there.
	// Readers see the old object or the whole new one, never part of it.
	Put(ctx context.Context, key string, r io.Reader) error
	// Get opens the object at key. A missing object is an error wrapping
	// fs.ErrNotExist; it is a *fs.PathError whose Path is Where(key).
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes the object at key (errors as Get).
	Stat(ctx context.Context, key string) (Info, error)
	// List returns the objects whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes the object at key; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// Append opens the object at key for appending, creating it when
	// missing: a log written as a run goes. What is written is visible to Get
	// once written (a local file) or at the latest on Close (an object store
	// that uploads the whole object).
	Append(ctx context.Context, key string) (io.WriteCloser, error)
	// Where names the object at key for people: the file of a local store,
	// the URL of an object in a bucket. Error messages show it.
	Where(key string) string
}

// Info describes one object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// PrefixDeleter is implemented by stores that remove every object under a
// prefix at once (a local directory tree); DeletePrefix uses it.
type PrefixDeleter interface {
	DeletePrefix(ctx context.Context, prefix string) error
}

// ErrInvalidKey is wrapped by the error for a key that is not a clean,
// relative, slash-separated path.
var ErrInvalidKey = errors.New("invalid key")

// CheckKey reports whether key is usable: relative, slash-separated, with no
// empty, "." or ".." segment and no segment starting with "." (the local
// store's temporary files start with a dot).
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("%w %q: backslash or NUL", ErrInvalidKey, key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg[0] == '.' {
			return fmt.Errorf("%w %q: want a relative path of names not starting with a dot, like runs/NAME/train.log", ErrInvalidKey, key)
		}
	}
	return nil
}

// checkPrefix is CheckKey for a List or DeletePrefix prefix: it may be
// empty, and may end with a slash.
func checkPrefix(prefix string) error {
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		if prefix == "/" {
			return fmt.Errorf("%w prefix %q", ErrInvalidKey, prefix)
		}
		return nil
	}
	if err := CheckKey(p); err != nil {
		return fmt.Errorf("prefix: %w", err)
	}
	return nil
}

// ReadAll returns the whole object at key.
func ReadAll(ctx context.Context, s Store, key string) ([]byte, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// PutBytes writes b as the object at key.
func PutBytes(ctx context.Context, s Store, key string, b []byte) error {
	return s.Put(ctx, key, strings.NewReader(string(b)))
}

// Exists reports whether there is an object at key; errors other than its
// absence are returned.
func Exists(ctx context.Context, s Store, key string) (bool, error) {
	_, err := s.Stat(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// DeletePrefix removes every object whose key starts with prefix.
func DeletePrefix(ctx context.Context, s Store, prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	if pd, ok := s.(PrefixDeleter); ok {
		return pd.DeletePrefix(ctx, prefix)
	}
	infos, err := s.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, in := range infos {
		if err := s.Delete(ctx, in.Key); err != nil {
			return err
		}
	}
	return nil
}

// Follow reads r to its end and then keeps reading what is appended, every
// interval, until ctx ends: then it reports io.EOF. It is `tail -f` for a
// reader that, like an open file, returns new bytes after an EOF.
func Follow(ctx context.Context, r io.Reader, interval time.Duration) io.Reader {
	return &follower{ctx: ctx, r: r, every: interval}
}

type follower struct {
	ctx   context.Context
	r     io.Reader
	every time.Duration
}

func (f *follower) Read(p []byte) (int, error) {
	for {
		if f.ctx.Err() != nil {
			return 0, io.EOF
		}
		n, err := f.r.Read(p)
		if n > 0 || (err != nil && err != io.EOF) {
			if err == io.EOF {
				err = nil
			}
			return n, err
		}
		select {
		case <-f.ctx.Done():
			return 0, io.EOF
		case <-time.After(f.every):
		}
	}
}
