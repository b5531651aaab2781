package source

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Header is what a plan can know of a source's columns without reading its
// rows: a CSV file's header line, an IDX file's shape, a SQL query's result
// columns (asked with LIMIT 0), a log pattern's named groups, the inline
// columns. Known is false when the columns only show as rows are read (JSON
// records, object stores, which a plan does not download).
type Header struct {
	Known      bool
	Columns    []string
	ImageShape []int    // [C,H,W] for image rows (IDX files, mnist)
	Classes    []string // the label's values, when known without reading (built-in datasets)
	// Sampled says the first rows were read (CSV files, inline columns): Text
	// then lists the columns among them holding text that is neither a
	// number nor a bool, which encoding turns into several columns.
	Sampled bool
	Text    []string
}

// sampleRows is how many rows of a CSV file a plan reads to tell numeric
// columns from text ones.
const sampleRows = 200

// sample reads up to n rows and notes the columns holding text.
func (h *Header) sample(r Reader, n int) error {
	text := map[string]bool{}
	for i := 0; n < 0 || i < n; i++ {
		vals, _, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		cols := r.Columns()
		for j, v := range vals {
			if j >= len(cols) || text[cols[j]] {
				continue
			}
			switch v.Kind {
			case String:
				text[cols[j]] = true
			case Text:
				if _, ok := ParseNumber(v.Raw); ok {
					continue
				}
				if _, ok := ParseBool(v.Raw); ok {
					continue
				}
				text[cols[j]] = true
			}
		}
	}
	for _, c := range r.Columns() {
		if text[c] {
			h.Text = append(h.Text, c)
		}
	}
	h.Sampled = true
	return nil
}

// headerPrefix is how much of a URL response is kept, while it is hashed,
// to read its header line from.
const headerPrefix = 64 << 10

// Columns returns the source's header without reading its rows.
func Columns(ctx context.Context, s Source, o Options) (Header, error) {
	k, err := s.Kind()
	if err != nil {
		return Header{}, err
	}
	switch k {
	case "file":
		return fileColumns(ctx, s.File, o)
	case "log":
		re, groups, err := compileLog(s.Log.Pattern)
		if err != nil {
			return Header{}, err
		}
		h := Header{Known: true}
		for _, g := range groups {
			h.Columns = append(h.Columns, re.SubexpNames()[g])
		}
		return h, nil
	case "inline":
		// The columns and their values are the argument: no reader needed
		// (a plan of 10,000 inline datasets would fingerprint each twice).
		h := Header{Known: true, Sampled: true}
		for name := range s.Inline {
			h.Columns = append(h.Columns, name)
		}
		sort.Strings(h.Columns)
		for _, name := range h.Columns {
			for _, v := range s.Inline[name] {
				if _, ok := v.(string); ok {
					h.Text = append(h.Text, name)
					break
				}
			}
		}
		return h, nil
	case "sql":
		return sqlColumns(ctx, s, o)
	}
	return Header{}, nil
}

// fileColumns reads the header of every file a path or glob matches (their
// columns are united by name, as reading them does).
func fileColumns(ctx context.Context, pattern string, o Options) (Header, error) {
	files, err := expand(pattern, o.BaseDir)
	if err != nil {
		return Header{}, err
	}
	format := o.Format
	if format == "" {
		format = InferFormat(files[0])
	}
	switch format {
	case "idx":
		r, err := openIDXFiles(ctx, files, o)
		if err != nil {
			return Header{}, err
		}
		defer r.Close()
		return Header{Known: true, Columns: r.Columns(), ImageShape: r.(*idxFiles).ImageShape()}, nil
	case "csv":
	default:
		return Header{}, nil
	}
	h := Header{Known: true, Sampled: true}
	seen, text := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return Header{}, err
		}
		fh, err := csvFileHeader(f, o)
		if err != nil {
			return Header{}, err
		}
		for _, c := range fh.Columns {
			if !seen[c] {
				seen[c] = true
				h.Columns = append(h.Columns, c)
			}
		}
		for _, c := range fh.Text {
			if !text[c] {
				text[c] = true
				h.Text = append(h.Text, c)
			}
		}
	}
	return h, nil
}

// csvFileHeader reads a CSV file's header line and samples its first rows.
// A malformed row is left for the apply to report with its line.
func csvFileHeader(path string, o Options) (Header, error) {
	fh, err := os.Open(path)
	if err != nil {
		return Header{}, fmt.Errorf("file %s: %w", display(path, o.BaseDir), err)
	}
	defer fh.Close()
	r, err := openStream(bufio.NewReaderSize(fh, 64<<10), display(path, o.BaseDir), "csv")
	if err != nil {
		return Header{}, err
	}
	defer r.Close()
	h := Header{Known: true, Columns: append([]string(nil), r.Columns()...)}
	if err := h.sample(r, sampleRows); err != nil {
		// Unknown types: the columns' widths are not told.
		h.Text = append([]string(nil), h.Columns...)
	}
	return h, nil
}

// sqlColumns asks the database for the query's result columns without any
// row: SELECT * FROM (query) LIMIT 0. A query that cannot be wrapped so (a
// statement other than a SELECT) leaves the columns unknown; reading it at
// apply says what is wrong.
func sqlColumns(ctx context.Context, s Source, o Options) (Header, error) {
	q := s.SQL
	inner := strings.TrimRight(strings.TrimSpace(q.Query), "; \t\r\n")
	wrapped := "SELECT * FROM (" + inner + "\n) AS lepton_columns LIMIT 0"
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	if q.Driver == "postgres" {
		conn, err := pgConnect(ctx, q)
		if err != nil {
			return Header{}, err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		rows, err := conn.Query(ctx, wrapped, pgx.QueryResultFormats{pgx.TextFormatCode})
		if err != nil {
			return Header{}, nil
		}
		defer rows.Close()
		fds := rows.FieldDescriptions()
		for rows.Next() {
		}
		if rows.Err() != nil || fds == nil {
			return Header{}, nil
		}
		h := Header{Known: true}
		for _, fd := range fds {
			h.Columns = append(h.Columns, fd.Name)
		}
		return h, nil
	}
	db, err := openDB(ctx, q, o)
	if err != nil {
		return Header{}, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, wrapped)
	if err != nil {
		return Header{}, nil
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return Header{}, nil
	}
	return Header{Known: true, Columns: cols}, nil
}

// FingerprintURL is Fingerprint for a url source that also returns the
// response's header when it is CSV: the first bytes of the body, kept while
// they are hashed, hold it, so the plan downloads the body once.
func FingerprintURL(ctx context.Context, s Source, o Options) (string, Header, error) {
	resp, cancel, err := get(ctx, s, o)
	if err != nil {
		return "", Header{}, err
	}
	defer cancel()
	defer resp.Body.Close()
	h := sha256.New()
	prefix := &capped{n: headerPrefix}
	if _, err := io.Copy(io.MultiWriter(h, prefix), &limited{r: resp.Body, n: o.maxBytes(), name: redactURL(s.URL)}); err != nil {
		return "", Header{}, fmt.Errorf("url %s: reading the response: %w", redactURL(s.URL), err)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	br := bufio.NewReader(bytes.NewReader(prefix.b))
	if urlFormat(o, resp, br) != "csv" || strings.HasSuffix(strings.ToLower(resp.Request.URL.Path), ".gz") {
		return digest, Header{}, nil
	}
	// The header line must lie wholly within the prefix.
	if prefix.full && bytes.IndexByte(prefix.b, '\n') < 0 {
		return digest, Header{}, nil
	}
	r, err := openStream(br, redactURL(s.URL), "csv")
	if err != nil {
		// An empty or headerless body: reading it at apply says so.
		return digest, Header{}, nil
	}
	defer r.Close()
	return digest, Header{Known: true, Columns: append([]string(nil), r.Columns()...)}, nil
}

// capped keeps the first n bytes written to it.
type capped struct {
	b    []byte
	n    int
	full bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.n - len(c.b); room > 0 {
		if len(p) > room {
			c.b = append(c.b, p[:room]...)
			c.full = true
		} else {
			c.b = append(c.b, p...)
		}
	} else {
		c.full = true
	}
	return len(p), nil
}

// FingerprintFiles is Fingerprint for a file source that also returns its
// header, reading each file at most once: a CSV file's header and first rows
// are kept from the bytes hashed, or, when the hash cache spares the hashing,
// read from the start of each file. (A named pipe yields its content once
// per open.)
func FingerprintFiles(ctx context.Context, s Source, o Options) (string, Header, error) {
	files, err := expand(s.File, o.BaseDir)
	if err != nil {
		return "", Header{}, err
	}
	format := o.Format
	if format == "" {
		format = InferFormat(files[0])
	}
	if format != "csv" {
		d, err := fingerprintList(ctx, files, o)
		if err != nil {
			return "", Header{}, err
		}
		h, err := fileColumns(ctx, s.File, o)
		return d, h, err
	}
	capture := make([]*capped, len(files))
	for i := range capture {
		capture[i] = &capped{n: headerPrefix}
	}
	digest, hit, err := cachedHash(ctx, files, o, capture)
	if err != nil {
		return "", Header{}, err
	}
	h := Header{Known: true, Sampled: true}
	seen, text := map[string]bool{}, map[string]bool{}
	for i, f := range files {
		if hit {
			if err := capture[i].readFrom(f); err != nil {
				return "", Header{}, fmt.Errorf("file %s: %w", display(f, o.BaseDir), err)
			}
		}
		fh, err := capture[i].csvHeader(display(f, o.BaseDir))
		if err != nil {
			return "", Header{}, err
		}
		for _, c := range fh.Columns {
			if !seen[c] {
				seen[c] = true
				h.Columns = append(h.Columns, c)
			}
		}
		for _, c := range fh.Text {
			if !text[c] {
				text[c] = true
				h.Text = append(h.Text, c)
			}
		}
	}
	return digest, h, nil
}

// readFrom keeps the first c.n bytes of the file at path.
func (c *capped) readFrom(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(c, io.LimitReader(f, int64(c.n)+1))
	return err
}

// csvHeader parses the header and samples the whole rows of a file's first
// bytes (named name, which tells a .gz or .tsv file).
func (c *capped) csvHeader(name string) (Header, error) {
	b := c.b
	gz := strings.HasSuffix(strings.ToLower(name), ".gz")
	if c.full && !gz {
		// The last line may be cut: keep whole lines only.
		i := bytes.LastIndexByte(b, '\n')
		if i < 0 {
			// The header line alone is longer than the prefix.
			return Header{}, nil
		}
		b = b[:i+1]
	}
	r, err := openStream(bytes.NewReader(b), name, "csv")
	if err != nil {
		return Header{}, err
	}
	defer r.Close()
	h := Header{Known: true, Columns: append([]string(nil), r.Columns()...)}
	if err := h.sample(r, sampleRows); err != nil || (c.full && gz) {
		// A cut compressed stream, or a row the apply will report: the
		// columns' types are not told.
		h.Text = append([]string(nil), h.Columns...)
	}
	return h, nil
}
