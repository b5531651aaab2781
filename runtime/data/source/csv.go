package source

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// csvReader parses RFC 4180 CSV with a header row. Lines without a quote
// character take a fast path that splits on the delimiter in place (no
// allocation per cell); at the first quote it hands the rest of the stream to
// encoding/csv, which handles quoted fields, embedded newlines and reports
// malformed quoting.
type csvReader struct {
	name      string
	delim     byte
	br        *bufio.Reader
	header    []string
	vals      []Value
	line      int64 // last physical line consumed by the fast path
	long      []byte
	raw       []byte // the last line with its line ending, for the hand-over to encoding/csv
	slow      *csv.Reader
	base      int64 // line offset of the slow reader's line 1
	par       *parallel
	expanded  parResult
	blockMode bool // the caller uses NextBlock
}

func newCSVReader(r io.Reader, name string, delim byte) (*csvReader, error) {
	c := &csvReader{name: name, delim: delim}
	if br, ok := r.(*bufio.Reader); ok && br.Size() >= 64<<10 {
		c.br = br
	} else {
		c.br = bufio.NewReaderSize(r, 1<<20)
	}
	line, err := c.readLine()
	if err == nil {
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
	}
	for err == nil && len(bytes.TrimSpace(line)) == 0 {
		line, err = c.readLine()
	}
	if err == io.EOF {
		return nil, fmt.Errorf("%s: %w: the file is empty (a CSV file needs a header row)", name, ErrEmpty)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if bytes.IndexByte(line, '"') >= 0 {
		c.startSlow()
		rec, err := c.slow.Read()
		if err != nil {
			return nil, c.slowErr(err)
		}
		c.header = append([]string(nil), rec...)
	} else {
		for _, f := range bytes.Split(line, []byte{delim}) {
			c.header = append(c.header, strings.TrimSpace(string(f)))
		}
	}
	seen := map[string]bool{}
	for i, h := range c.header {
		if h == "" {
			return nil, &Error{Pos: Position{name, "line", 1}, Err: fmt.Errorf("header column %d has no name", i+1)}
		}
		if seen[h] {
			return nil, &Error{Pos: Position{name, "line", 1}, Err: fmt.Errorf("header names column %q twice", h)}
		}
		seen[h] = true
	}
	c.vals = make([]Value, len(c.header))
	return c, nil
}

// readLine returns the next physical line without its line ending. The slice
// is only valid until the next call.
func (c *csvReader) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		c.long = append(c.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = c.br.ReadSlice('\n')
			c.long = append(c.long, line...)
		}
		line = c.long
	}
	if err == io.EOF && len(line) > 0 {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	c.line++
	c.raw = line
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
	}
	if n > 0 && line[n-1] == '\r' {
		n--
	}
	return line[:n], nil
}

// startSlow hands the last line read (with its original ending) and the rest
// of the stream to encoding/csv.
func (c *csvReader) startSlow() {
	first := bytes.Clone(c.raw)
	if c.line == 1 {
		first = bytes.TrimPrefix(first, []byte("\xef\xbb\xbf"))
	}
	rest := io.MultiReader(bytes.NewReader(first), c.br)
	if c.par != nil {
		// The rest of the stream is in the chunks still to come.
		c.par.passthrough.Store(true)
		rest = io.MultiReader(rest, &orderedRest{p: c.par})
	}
	c.slow = csv.NewReader(rest)
	c.slow.Comma = rune(c.delim)
	c.slow.ReuseRecord = true
	c.slow.FieldsPerRecord = -1 // we check the count ourselves, with a clearer message
	c.base = c.line - 1
}

func (c *csvReader) slowErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &Error{Pos: Position{c.name, "line", c.base + int64(pe.Line)}, Err: fmt.Errorf("malformed CSV (column %d): %v", pe.Column, pe.Err)}
	}
	return fmt.Errorf("%s: %w", c.name, err)
}

func (c *csvReader) Columns() []string { return c.header }

func (c *csvReader) Next() ([]Value, Position, error) {
	if c.slow != nil {
		rec, err := c.slow.Read()
		if err == io.EOF {
			return nil, Position{}, io.EOF
		}
		if err != nil {
			return nil, Position{}, c.slowErr(err)
		}
		ln, _ := c.slow.FieldPos(0)
		pos := Position{c.name, "line", c.base + int64(ln)}
		if len(rec) != len(c.header) {
			return nil, pos, &Error{Pos: pos, Err: fmt.Errorf("malformed CSV: %d fields, the header has %d", len(rec), len(c.header))}
		}
		for i, f := range rec {
			c.vals[i] = TextValue([]byte(f))
		}
		return c.vals, pos, nil
	}
	var line []byte
	var err error
	for {
		line, err = c.readLine()
		if err == io.EOF {
			if c.par != nil {
				if c.blockMode {
					return nil, Position{}, ErrBlockEnd // the expanded chunk is done
				}
				// A caller reading rows only: go on with the next chunk.
				r, err := c.par.nextResult()
				if err != nil {
					return nil, Position{}, err
				}
				c.expanded = r
				c.Expand()
				continue
			}
			return nil, Position{}, io.EOF
		}
		if err != nil {
			return nil, Position{}, fmt.Errorf("%s line %d: %w", c.name, c.line+1, err)
		}
		if len(line) != 0 {
			break
		}
	}
	if bytes.IndexByte(line, '"') >= 0 {
		c.startSlow()
		return c.Next()
	}
	pos := Position{c.name, "line", c.line}
	n := 0
	for {
		i := bytes.IndexByte(line, c.delim)
		field := line
		if i >= 0 {
			field = line[:i]
		}
		if n < len(c.vals) {
			c.vals[n] = TextValue(field)
		}
		n++ // counts extra fields too, for the message
		if i < 0 {
			break
		}
		line = line[i+1:]
	}
	if n != len(c.header) {
		return nil, pos, &Error{Pos: pos, Err: fmt.Errorf("malformed CSV: %d fields, the header has %d", n, len(c.header))}
	}
	return c.vals, pos, nil
}

func (c *csvReader) Digest() (string, error) {
	return "", errors.New("csv: the digest is computed by the enclosing reader")
}

func (c *csvReader) Close() error {
	if c.par != nil {
		c.par.close()
	}
	return nil
}
