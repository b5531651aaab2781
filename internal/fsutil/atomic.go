// Package fsutil writes files atomically: a reader (or a crash) sees the
// previous content or the new content, never part of it.
package fsutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Options tune an atomic write.
type Options struct {
	// NoSync skips both fsyncs. The rename still makes the write atomic for
	// readers and for a crash of the process, but after a power loss or an
	// OS crash the file may hold the previous content or be empty. Use it
	// only for files that are rebuilt when missing or invalid (caches,
	// reports) and are written on a hot path, where an fsync per file would
	// cost more than rebuilding them now and then.
	NoSync bool
	// MkdirAll creates the file's directory (mode 0755) first.
	MkdirAll bool
}

// WriteFile writes b to path atomically with mode perm (durably unless o.NoSync).
func WriteFile(path string, b []byte, perm os.FileMode, o Options) error {
	return write(path, perm, o, func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
}

// Write writes path atomically with mode perm: write fills a temporary file
// in the same directory (buffered), which is fsynced, renamed over path, and
// the directory fsynced so the rename itself survives a crash (unless
// o.NoSync). On any error the temporary file is removed and path is unchanged.
func Write(path string, perm os.FileMode, o Options, fill func(w io.Writer) error) error {
	return write(path, perm, o, func(f *os.File) error {
		bw := bufio.NewWriterSize(f, 256<<10)
		if err := fill(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

func write(path string, perm os.FileMode, o Options, fill func(f *os.File) error) error {
	dir := filepath.Dir(path)
	if o.MkdirAll {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// Chmod first: the content is never readable under CreateTemp's 0600
	// widened later, nor under a wider mode narrowed later.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := fill(f); err != nil {
		return err
	}
	if !o.NoSync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if !o.NoSync {
		if err := SyncDir(dir); err != nil {
			return fmt.Errorf("%s renamed, but syncing its directory: %w", path, err)
		}
	}
	return nil
}

// SyncDir fsyncs a directory so that a rename or create inside it is durable.
// Filesystems that cannot fsync a directory (some network filesystems answer
// EINVAL) are not an error: there is nothing more to do on them.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !isSyncUnsupported(err) {
		return err
	}
	return nil
}

func isSyncUnsupported(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP)
}
