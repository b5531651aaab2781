package runstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/leptonml/lepton/internal/fsutil"
)

// Dir is the local store: key k is the file Root/k (.lepton/ for the CLI),
// so a .lepton directory written before this interface existed reads the same.
type Dir struct {
	root string
	o    DirOptions
}

// DirOptions say how a Dir writes some of its keys; each field holds
// path.Match patterns such as "datasets/*.bin".
type DirOptions struct {
	// Private keys hold a user's data: written 0600 instead of 0644.
	Private []string
	// NoSync keys are rebuilt when missing or invalid (caches, reports) and
	// written on a hot path: written atomically but without fsync
	// (fsutil.Options.NoSync).
	NoSync []string
}

// NewDir returns the store rooted at root. Files are written 0644 and
// directories 0755, except as o says.
func NewDir(root string, o DirOptions) *Dir {
	return &Dir{root: root, o: o}
}

// Root is the directory the store keeps its files in.
func (d *Dir) Root() string { return d.root }

// Path is the file that holds key. It is for what must run on this machine
// with a real file (a server process writing its own log), not a way around
// the interface.
func (d *Dir) Path(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Where is the file of key (the key itself when it is not valid).
func (d *Dir) Where(key string) string {
	p, err := d.Path(key)
	if err != nil {
		return key
	}
	return p
}

func matchAny(patterns []string, key string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, key); ok {
			return true
		}
	}
	return false
}

func (d *Dir) mode(key string) fs.FileMode {
	if matchAny(d.o.Private, key) {
		return 0o600
	}
	return 0o644
}

// Put writes through fsutil: a temporary file in the same directory,
// synced and renamed into place, then the directory synced. After a crash
// the key holds the old object or the new one.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader) error {
	p, err := d.Path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err = fsutil.Write(p, d.mode(key), fsutil.Options{MkdirAll: true, NoSync: matchAny(d.o.NoSync, key)}, func(w io.Writer) error {
		_, err := io.Copy(w, ctxReader{ctx, r})
		return err
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Get opens the file; its error for a missing key is os.Open's.
func (d *Dir) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := d.Path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return f, nil
}

// Stat describes the file; a directory is no object.
func (d *Dir) Stat(ctx context.Context, key string) (Info, error) {
	p, err := d.Path(key)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Info{}, err
	}
	if fi.IsDir() {
		return Info{}, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
	}
	return Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List walks the directory that holds prefix. Temporary files of writes in
// flight (names starting with a dot) are not objects.
func (d *Dir) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	start := d.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = filepath.Join(d.root, filepath.FromSlash(prefix[:i]))
	}
	var out []Info
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), ".") && p != start {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while listing
		}
		if err != nil {
			return err
		}
		out = append(out, Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the file.
func (d *Dir) Delete(ctx context.Context, key string) error {
	p, err := d.Path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// DeletePrefix removes a whole directory at once when prefix names one
// ("runs/NAME/"), as the run directory was always removed.
func (d *Dir) DeletePrefix(ctx context.Context, prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	if strings.HasSuffix(prefix, "/") {
		return os.RemoveAll(filepath.Join(d.root, filepath.FromSlash(prefix)))
	}
	infos, err := d.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, in := range infos {
		if err := d.Delete(ctx, in.Key); err != nil {
			return err
		}
	}
	return nil
}

// Append opens the file for appending (O_APPEND: concurrent writers'
// lines do not overwrite each other).
func (d *Dir) Append(ctx context.Context, key string) (io.WriteCloser, error) {
	p, err := d.Path(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, d.mode(key))
}
