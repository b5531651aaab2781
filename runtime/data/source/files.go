package source

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// expand resolves a path or glob against baseDir; a glob that matches nothing
// and a missing plain file are errors naming the pattern.
func expand(pattern, baseDir string) ([]string, error) {
	p := pattern
	if !filepath.IsAbs(p) && baseDir != "" {
		p = filepath.Join(baseDir, p)
	}
	if !strings.ContainsAny(pattern, "*?[") {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", pattern, err)
		}
		if st.IsDir() {
			return nil, fmt.Errorf("file %s: is a directory (use a glob such as %s/*.csv)", pattern, pattern)
		}
		return []string{p}, nil
	}
	m, err := filepath.Glob(p)
	if err != nil {
		return nil, fmt.Errorf("file %s: bad glob: %w", pattern, err)
	}
	var files []string
	for _, f := range m {
		if st, err := os.Stat(f); err == nil && !st.IsDir() {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("file %s: the glob matches no files", pattern)
	}
	sort.Strings(files)
	return files, nil
}

// display shows a path as the user wrote it: relative to baseDir when inside it.
func display(path, baseDir string) string {
	if baseDir != "" {
		if rel, err := filepath.Rel(baseDir, path); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.ToSlash(rel)
		}
	}
	return path
}

// InferFormat guesses the format from a name (path, URL path or object key),
// looking through a .gz suffix.
func InferFormat(name string) string {
	n := strings.ToLower(name)
	n = strings.TrimSuffix(n, ".gz")
	switch {
	case strings.HasSuffix(n, ".csv"), strings.HasSuffix(n, ".tsv"):
		return "csv"
	case strings.HasSuffix(n, ".jsonl"), strings.HasSuffix(n, ".ndjson"):
		return "jsonl"
	case strings.HasSuffix(n, ".json"):
		return "json"
	case strings.HasSuffix(n, ".idx"), strings.Contains(filepath.Base(n), "-idx"), strings.HasSuffix(n, "-ubyte"):
		return "idx"
	}
	return ""
}

func checkFormat(f string) error {
	switch f {
	case "csv", "jsonl", "json", "idx":
		return nil
	}
	return fmt.Errorf("unknown format %q (want csv, jsonl, json or idx)", f)
}

// fileHeader is hashed before each file's bytes so that renaming or splitting
// files changes the fingerprint too.
func fileHeader(h hash.Hash, name string, size int64) {
	fmt.Fprintf(h, "%s\x00%d\x00", name, size)
}

func fingerprintFiles(ctx context.Context, pattern string, o Options) (string, error) {
	files, err := expand(pattern, o.BaseDir)
	if err != nil {
		return "", err
	}
	return fingerprintList(ctx, files, o)
}

func fingerprintList(ctx context.Context, files []string, o Options) (string, error) {
	d, _, err := cachedHash(ctx, files, o, nil)
	return d, err
}

// hashList hashes the files' names, sizes and bytes; with capture (one per
// file), it keeps each file's first bytes there as they are hashed.
func hashList(ctx context.Context, files []string, o Options, capture []*capped) (string, error) {
	h := sha256.New()
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		fh, err := os.Open(f)
		if err != nil {
			return "", fmt.Errorf("file %s: %w", display(f, o.BaseDir), err)
		}
		st, err := fh.Stat()
		if err != nil {
			fh.Close()
			return "", fmt.Errorf("file %s: %w", display(f, o.BaseDir), err)
		}
		fileHeader(h, display(f, o.BaseDir), st.Size())
		var w io.Writer = h
		if capture != nil {
			w = io.MultiWriter(h, capture[i])
		}
		_, err = io.Copy(w, fh)
		fh.Close()
		if err != nil {
			return "", fmt.Errorf("file %s: %w", display(f, o.BaseDir), err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// decompress wraps r in a gzip reader when the name ends in .gz.
func decompress(r io.Reader, name string) (io.Reader, func() error, error) {
	if !strings.HasSuffix(strings.ToLower(name), ".gz") {
		return r, func() error { return nil }, nil
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: gzip: %w", name, err)
	}
	return zr, zr.Close, nil
}

// openStream opens a single-stream reader (csv, jsonl, json) over r; name is
// used in positions and to infer the format.
func openStream(r io.Reader, name, format string) (Reader, error) {
	return openStreamPar(r, name, format, false)
}

// openStreamPar is openStream, with CSV parsed in parallel chunks (the
// returned reader is then a BlockReader) when par is set.
func openStreamPar(r io.Reader, name, format string, par bool) (Reader, error) {
	if format == "" {
		format = InferFormat(name)
		if format == "" {
			return nil, fmt.Errorf("%s: cannot infer the format from the name; set format (csv, jsonl, json or idx)", name)
		}
	}
	if err := checkFormat(format); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	dr, closeZ, err := decompress(r, name)
	if err != nil {
		return nil, err
	}
	var rd Reader
	switch format {
	case "csv":
		delim := byte(',')
		if strings.HasSuffix(strings.TrimSuffix(strings.ToLower(name), ".gz"), ".tsv") {
			delim = '\t'
		}
		var cr *csvReader
		if cr, err = newCSVReader(dr, name, delim); err == nil {
			if par && cr.slow == nil {
				cr.startParallel()
			}
			rd = cr
		}
	case "jsonl":
		rd = newJSONLReader(dr, name)
	case "json":
		rd, err = newJSONReader(dr, name)
	case "idx":
		rd, err = newIDXReader(dr, name)
	}
	if err != nil {
		closeZ()
		return nil, err
	}
	return &closingReader{Reader: rd, close: closeZ}, nil
}

type closingReader struct {
	Reader
	close func() error
}

func (c *closingReader) Close() error {
	err := c.Reader.Close()
	if cerr := c.close(); err == nil {
		err = cerr
	}
	return err
}

func (c *closingReader) Blocks() bool {
	b, ok := c.Reader.(BlockReader)
	return ok && b.Blocks()
}

func (c *closingReader) NextBlock() (*Block, error) { return c.Reader.(BlockReader).NextBlock() }
func (c *closingReader) Expand()                    { c.Reader.(BlockReader).Expand() }

func (c *closingReader) ImageShape() []int {
	if s, ok := c.Reader.(interface{ ImageShape() []int }); ok {
		return s.ImageShape()
	}
	return nil
}

// filesReader reads several files one after another, mapping each file's
// columns by name into one growing column list, and hashes every byte read.
type filesReader struct {
	ctx     context.Context
	files   []string
	o       Options
	format  string
	h       hash.Hash
	next    int
	cur     Reader
	curFile *os.File
	tee     io.Reader
	cols    []string
	index   map[string]int
	mapping []int // current file's column i -> global column
	out     []Value
	shape   []int
	openErr error
}

func openFiles(ctx context.Context, pattern string, o Options) (Reader, error) {
	files, err := expand(pattern, o.BaseDir)
	if err != nil {
		return nil, err
	}
	format := o.Format
	if format == "" {
		format = InferFormat(files[0])
		if format == "" {
			return nil, fmt.Errorf("file %s: cannot infer the format from %s; set format (csv, jsonl, json or idx)", pattern, display(files[0], o.BaseDir))
		}
	}
	if err := checkFormat(format); err != nil {
		return nil, fmt.Errorf("file %s: %w", pattern, err)
	}
	if format == "idx" {
		return openIDXFiles(ctx, files, o)
	}
	return &filesReader{ctx: ctx, files: files, o: o, format: format, h: sha256.New(), index: map[string]int{}}, nil
}

func (f *filesReader) Columns() []string { return f.cols }

func (f *filesReader) ImageShape() []int { return f.shape }

func (f *filesReader) openNext() error {
	path := f.files[f.next]
	f.next++
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("file %s: %w", display(path, f.o.BaseDir), err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return fmt.Errorf("file %s: %w", display(path, f.o.BaseDir), err)
	}
	fileHeader(f.h, display(path, f.o.BaseDir), st.Size())
	f.tee = io.TeeReader(fh, f.h)
	rd, err := openStreamPar(bufio.NewReaderSize(f.tee, 1<<20), display(path, f.o.BaseDir), f.format, len(f.files) == 1)
	if err != nil {
		fh.Close()
		return err
	}
	f.cur, f.curFile = rd, fh
	f.mapping = f.mapping[:0]
	return nil
}

func (f *filesReader) closeCur() error {
	if f.cur == nil {
		return nil
	}
	// Close the parser first (it may have goroutines reading the file), then
	// hash what it did not need (trailing bytes), so the digest is over whole
	// files exactly as Fingerprint computes it.
	err := f.cur.Close()
	if _, cerr := io.Copy(io.Discard, f.tee); err == nil {
		err = cerr
	}
	if cerr := f.curFile.Close(); err == nil {
		err = cerr
	}
	f.cur, f.curFile = nil, nil
	return err
}

// learn maps the current file's columns (by name) into the column list.
func (f *filesReader) learn(cols []string) {
	for len(f.mapping) < len(cols) {
		name := cols[len(f.mapping)]
		gi, ok := f.index[name]
		if !ok {
			gi = len(f.cols)
			f.cols = append(f.cols, name)
			f.index[name] = gi
		}
		f.mapping = append(f.mapping, gi)
	}
}

func (f *filesReader) Next() ([]Value, Position, error) {
	if f.openErr != nil {
		return nil, Position{}, f.openErr
	}
	for {
		if f.cur == nil {
			if f.next >= len(f.files) {
				return nil, Position{}, io.EOF
			}
			if err := f.ctx.Err(); err != nil {
				return nil, Position{}, err
			}
			if err := f.openNext(); err != nil {
				return nil, Position{}, err
			}
		}
		vals, pos, err := f.cur.Next()
		if err == io.EOF {
			if err := f.closeCur(); err != nil {
				return nil, Position{}, err
			}
			continue
		}
		if err != nil {
			return nil, pos, err
		}
		f.learn(f.cur.Columns())
		if len(f.files) == 1 {
			return vals, pos, nil // identity mapping
		}
		if cap(f.out) < len(f.cols) {
			f.out = make([]Value, len(f.cols))
		}
		f.out = f.out[:len(f.cols)]
		clear(f.out)
		for i, v := range vals {
			f.out[f.mapping[i]] = v
		}
		return f.out, pos, nil
	}
}

// Blocks reports whether numeric blocks are on offer: a single CSV file.
func (f *filesReader) Blocks() bool {
	if len(f.files) != 1 {
		return false
	}
	if f.cur == nil && f.next == 0 {
		if err := f.openNext(); err != nil {
			f.openErr = err
			return false
		}
	}
	b, ok := f.cur.(BlockReader)
	if ok && b.Blocks() {
		f.learn(f.cur.Columns())
		return true
	}
	return false
}

// NextBlock: see BlockReader. Only valid when Blocks() said so.
func (f *filesReader) NextBlock() (*Block, error) {
	if f.cur == nil {
		return nil, io.EOF
	}
	b, err := f.cur.(BlockReader).NextBlock()
	if err == io.EOF {
		if err := f.closeCur(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	return b, err
}

func (f *filesReader) Expand() { f.cur.(BlockReader).Expand() }

func (f *filesReader) Digest() (string, error) {
	return "sha256:" + hex.EncodeToString(f.h.Sum(nil)), nil
}

func (f *filesReader) Close() error { return f.closeCur() }
