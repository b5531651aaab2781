// Package dirtar archives a folder as a canonical tar (the same files give
// the same bytes, whatever their times, owners or the order the file system
// lists them in) and unpacks one safely. A run's work folder, its output and
// its checkpoints travel this way, so their digests name their contents.
package dirtar

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options change what Write archives.
type Options struct {
	// Gzip compresses the archive (deterministically: no name, no time).
	Gzip bool
	// Skip, when set, leaves out the entry at rel (slash-separated,
	// relative to the folder) and, for a folder, all it holds.
	Skip func(rel string, d fs.DirEntry) bool
}

// Summary describes an archive written to a file.
type Summary struct {
	Digest string // sha256:<hex> of the archive's bytes
	Size   int64  // the archive's size
	Files  int    // regular files in it
}

// epoch is every entry's time: times are not content.
var epoch = time.Unix(0, 0)

// Write writes dir as a tar to w: folders, regular files (mode 0644, or
// 0755 when executable by anyone) and symbolic links, in lexical order,
// owned by 0:0 at the epoch. It returns the number of regular files. A
// missing dir is an empty archive.
func Write(w io.Writer, dir string, opt Options) (int, error) {
	var gz *gzip.Writer
	if opt.Gzip {
		gz = gzip.NewWriter(w)
		w = gz
	}
	tw := tar.NewWriter(w)
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipAll
			}
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if opt.Skip != nil && opt.Skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: rel, ModTime: epoch, Mode: 0o644, Format: tar.FormatPAX}
		switch {
		case d.IsDir():
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, rel+"/", 0o755
		case info.Mode().IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, info.Size()
			if info.Mode()&0o111 != 0 {
				h.Mode = 0o755
			}
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, target, 0o777
		default:
			return nil // sockets, pipes, devices: not files to carry
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("archiving %s: %w", p, err)
		}
		if h.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		// A file that grows while it is read is cut at the size its header
		// announced; one that shrinks is an error (archive it again).
		if _, err := io.CopyN(tw, f, h.Size); err != nil {
			return fmt.Errorf("archiving %s: %w", p, err)
		}
		files++
		return nil
	})
	if err != nil {
		return files, err
	}
	if err := tw.Close(); err != nil {
		return files, err
	}
	if gz != nil {
		return files, gz.Close()
	}
	return files, nil
}

// ToFile writes dir's archive to the file at path and summarizes it.
func ToFile(dir, path string, opt Options) (Summary, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return Summary{}, err
	}
	h := sha256.New()
	cw := &counter{w: io.MultiWriter(f, h)}
	n, err := Write(cw, dir, opt)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return Summary{}, err
	}
	return Summary{Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: cw.n, Files: n}, nil
}

// Digest is the sha256 of dir's archive, without writing it anywhere.
func Digest(dir string, opt Options) (string, error) {
	h := sha256.New()
	if _, err := Write(h, dir, opt); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Extract unpacks the tar (gzipped when gz) read from r into dir, which it
// creates. Entries that would land outside dir (absolute names, "..",
// links pointing out, paths through a link) are refused.
func Extract(r io.Reader, dir string, gz bool) (int, error) {
	if gz {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return 0, fmt.Errorf("not a gzipped archive: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	tr := tar.NewReader(r)
	files := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return files, fmt.Errorf("reading the archive: %w", err)
		}
		name := filepath.FromSlash(strings.TrimSuffix(h.Name, "/"))
		if name == "" || name == "." {
			continue
		}
		if !filepath.IsLocal(name) {
			return files, fmt.Errorf("the archive's entry %q is outside its folder", h.Name)
		}
		target := filepath.Join(root, name)
		parent, err := insideRoot(root, filepath.Dir(target))
		if err != nil {
			return files, fmt.Errorf("the archive's entry %q: %w", h.Name, err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return files, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return files, err
			}
			mode := os.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			os.Remove(target) // a link left there is replaced, not written through
			f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
			if err != nil {
				return files, err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return files, fmt.Errorf("unpacking %s: %w", h.Name, err)
			}
			files++
		case tar.TypeSymlink:
			link := h.Linkname
			// Judged from where the link really lands (its folder may be
			// reached through another link).
			if filepath.IsAbs(link) || !filepath.IsLocal(filepath.Join(parent, link)) {
				return files, fmt.Errorf("the archive's link %q points outside its folder (%s)", h.Name, link)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return files, err
			}
			os.Remove(target)
			if err := os.Symlink(link, target); err != nil {
				return files, err
			}
		default:
			// Hard links, devices, fifos: not carried by Write.
			return files, fmt.Errorf("the archive's entry %q is of a type (%c) this does not unpack", h.Name, h.Typeflag)
		}
	}
}

// insideRoot checks that dir, with its links resolved, is root or under it,
// and returns its resolved path relative to root.
func insideRoot(root, dir string) (string, error) {
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, fs.ErrNotExist) && dir != root {
		// Made later by MkdirAll, under its closest existing parent.
		parent, err := insideRoot(root, filepath.Dir(dir))
		return filepath.Join(parent, filepath.Base(dir)), err
	}
	if err != nil {
		return "", err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(realRoot, real)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", errors.New("it goes through a link out of the folder")
	}
	return rel, nil
}
