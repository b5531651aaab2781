package source

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"regexp"
)

// CheckLogPattern compiles an RE2 pattern and requires at least one named
// group: the groups' names are the columns.
func CheckLogPattern(p string) error {
	_, _, err := compileLog(p)
	return err
}

func compileLog(p string) (*regexp.Regexp, []int, error) {
	if p == "" {
		return nil, nil, errors.New("log: pattern is empty")
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, nil, fmt.Errorf("log: pattern %q is not a valid RE2 expression: %w", p, err)
	}
	var groups []int
	seen := map[string]bool{}
	for i, n := range re.SubexpNames() {
		if n == "" {
			continue
		}
		if seen[n] {
			return nil, nil, fmt.Errorf("log: pattern %q names group %q twice", p, n)
		}
		seen[n] = true
		groups = append(groups, i)
	}
	if len(groups) == 0 {
		return nil, nil, fmt.Errorf("log: pattern %q has no named groups; name the fields to extract, e.g. (?P<latency_ms>\\d+)", p)
	}
	return re, groups, nil
}

// logReader matches each line of each file against the pattern; lines that do
// not match are skipped and counted (Skipped). Group values are untyped text,
// so numeric groups become number columns.
type logReader struct {
	ctx     context.Context
	o       Options
	files   []string
	re      *regexp.Regexp
	groups  []int
	cols    []string
	vals    []Value
	h       hash.Hash
	next    int
	fh      *os.File
	br      *bufio.Reader
	name    string
	line    int64
	long    []byte
	match   []int
	skipped int64
	rows    int64
}

func openLog(ctx context.Context, l *Log, o Options) (Reader, error) {
	re, groups, err := compileLog(l.Pattern)
	if err != nil {
		return nil, err
	}
	files, err := expand(l.Path, o.BaseDir)
	if err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	r := &logReader{ctx: ctx, o: o, files: files, re: re, groups: groups, h: sha256.New()}
	names := re.SubexpNames()
	for _, g := range groups {
		r.cols = append(r.cols, names[g])
	}
	r.vals = make([]Value, len(r.cols))
	return r, nil
}

func (r *logReader) Columns() []string { return r.cols }

// Skipped is the number of lines that did not match the pattern.
func (r *logReader) Skipped() int64 { return r.skipped }

func (r *logReader) Next() ([]Value, Position, error) {
	for {
		if r.fh == nil {
			if r.next >= len(r.files) {
				if r.rows == 0 {
					return nil, Position{}, fmt.Errorf("log %s: %w: no line matches the pattern (%d lines skipped)", r.o.displayGlob(r.files), ErrEmpty, r.skipped)
				}
				return nil, Position{}, io.EOF
			}
			if err := r.ctx.Err(); err != nil {
				return nil, Position{}, err
			}
			f := r.files[r.next]
			r.next++
			fh, err := os.Open(f)
			if err != nil {
				return nil, Position{}, fmt.Errorf("log: %w", err)
			}
			st, err := fh.Stat()
			if err != nil {
				fh.Close()
				return nil, Position{}, fmt.Errorf("log: %w", err)
			}
			r.name = display(f, r.o.BaseDir)
			fileHeader(r.h, r.name, st.Size())
			r.fh, r.line = fh, 0
			r.br = bufio.NewReaderSize(io.TeeReader(fh, r.h), 1<<20)
		}
		line, err := r.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			r.long = append(r.long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = r.br.ReadSlice('\n')
				r.long = append(r.long, line...)
			}
			line = r.long
		}
		if err == io.EOF && len(line) == 0 {
			r.fh.Close()
			r.fh = nil
			continue
		}
		if err != nil && err != io.EOF {
			return nil, Position{}, fmt.Errorf("log %s line %d: %w", r.name, r.line+1, err)
		}
		r.line++
		n := len(line)
		if n > 0 && line[n-1] == '\n' {
			n--
			if n > 0 && line[n-1] == '\r' {
				n--
			}
		}
		line = line[:n]
		r.match = r.re.FindSubmatchIndex(line)
		if r.match == nil {
			r.skipped++
			continue
		}
		for i, g := range r.groups {
			a, b := r.match[2*g], r.match[2*g+1]
			if a < 0 {
				r.vals[i] = Value{}
				continue
			}
			r.vals[i] = TextValue(line[a:b])
		}
		r.rows++
		return r.vals, Position{r.name, "line", r.line}, nil
	}
}

func (o Options) displayGlob(files []string) string {
	if len(files) == 1 {
		return display(files[0], o.BaseDir)
	}
	return fmt.Sprintf("%s (and %d more files)", display(files[0], o.BaseDir), len(files)-1)
}

func (r *logReader) Digest() (string, error) {
	return "sha256:" + hex.EncodeToString(r.h.Sum(nil)), nil
}

func (r *logReader) Close() error {
	if r.fh != nil {
		err := r.fh.Close()
		r.fh = nil
		return err
	}
	return nil
}
