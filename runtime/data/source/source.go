// Package source reads dataset sources (files, URLs, SQL queries, logs, object
// stores, inline columns) as a stream of rows, and fingerprints their content for
// change detection. It knows nothing about preprocessing: runtime/data builds on it.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Source says where a dataset's rows come from. Exactly one of the fields
// Builtin, File, URL, Object, SQL, Log, Inline is set.
type Source struct {
	Builtin string
	File    string // a path or glob, relative to Options.BaseDir
	URL     string
	Headers map[string]string
	Timeout time.Duration // per HTTP attempt / per query; 0 = a default
	Object  string        // s3://bucket/key, gs://bucket/key, az://account/container/blob
	SQL     *SQL
	Log     *Log
	// Inline is column-oriented: every column has the same length and holds
	// float64, string, bool or nil (ints are accepted too).
	Inline map[string][]any
}

// SQL is a query against PostgreSQL ("postgres", through pgx) or SQLite
// ("sqlite", through modernc.org/sqlite).
type SQL struct {
	Driver string
	DSN    string
	Query  string
	// VersionQuery, when set, returns a small result that changes whenever the
	// data does (e.g. max(updated_at)); the fingerprint hashes it instead of
	// reading the whole query result at plan time.
	VersionQuery string
}

// Log reads lines of text files matched by Path (a glob) with an RE2 pattern
// whose named groups become columns.
type Log struct {
	Path    string
	Pattern string
}

// Kind returns which source field is set, or an error when none or several are.
func (s Source) Kind() (string, error) {
	var set []string
	if s.Builtin != "" {
		set = append(set, "builtin")
	}
	if s.File != "" {
		set = append(set, "file")
	}
	if s.URL != "" {
		set = append(set, "url")
	}
	if s.Object != "" {
		set = append(set, "object")
	}
	if s.SQL != nil {
		set = append(set, "sql")
	}
	if s.Log != nil {
		set = append(set, "log")
	}
	if s.Inline != nil {
		set = append(set, "inline")
	}
	switch len(set) {
	case 0:
		return "", errors.New("source: exactly one of builtin, file, url, object, sql, log, inline must be set; none is")
	case 1:
		return set[0], nil
	}
	return "", fmt.Errorf("source: exactly one of builtin, file, url, object, sql, log, inline must be set; got %s", strings.Join(set, ", "))
}

// Describe names the source for messages, without secrets (no password, no headers).
func (s Source) Describe() string {
	k, _ := s.Kind()
	switch k {
	case "builtin":
		return "builtin " + s.Builtin
	case "file":
		return "file " + s.File
	case "url":
		return "url " + redactURL(s.URL)
	case "object":
		return "object " + s.Object
	case "sql":
		return sqlName(s.SQL)
	case "log":
		return "log " + s.Log.Path
	case "inline":
		return "inline"
	}
	return "source"
}

// Options are the settings a Source is read with.
type Options struct {
	BaseDir string // relative paths resolve against it
	Format  string // csv | jsonl | json | idx ; "" = infer
	// HTTP settings for url sources; zero values mean the defaults below.
	HTTPClient *http.Client
	MaxBytes   int64         // response size limit; default DefaultMaxBytes
	Retries    int           // retries after the first attempt on 5xx, 429 and connection errors; default 4, -1 for none
	Backoff    time.Duration // first retry delay, doubled each time; default 500ms
	// Object-store endpoint overrides (tests, compatible stores). Empty means
	// the SDK default; the environment variables LEPTON_S3_ENDPOINT,
	// LEPTON_GCS_ENDPOINT and LEPTON_AZURE_BLOB_ENDPOINT are used when these are empty.
	S3Endpoint    string
	GCSEndpoint   string
	AzureEndpoint string
	// HashCache, when set, is a directory where Fingerprint records each
	// file list's digest with the files' size, times and inode, and reuses
	// it while they are unchanged (see hashcache.go). Empty: always hash.
	HashCache string
}

// DefaultMaxBytes bounds what a url source may download.
const DefaultMaxBytes = 1 << 30

// Reader streams rows. Columns only grows: a source whose records carry new
// keys (jsonl, json) appends columns as it meets them; values are aligned with
// Columns() as it was after the call, and may be shorter (the rest is null).
type Reader interface {
	Columns() []string
	// Next returns the next row and where it came from, or io.EOF. The values
	// (and Raw bytes inside them) are only valid until the next call.
	Next() ([]Value, Position, error)
	// Digest is the content fingerprint ("sha256:<hex>") of what was read; valid
	// after Next returned io.EOF, and equal to what Fingerprint returns for
	// unchanged content.
	Digest() (string, error)
	Close() error
}

// Position names where a row came from.
type Position struct {
	Source string // file path, URL, "sql", "inline", ...
	Unit   string // "line", "row", "record" or "image"
	N      int64  // 1-based
}

func (p Position) String() string {
	if p.Unit == "" {
		return p.Source
	}
	return fmt.Sprintf("%s %s %d", p.Source, p.Unit, p.N)
}

// Error is a problem in the data itself, located at a row.
type Error struct {
	Pos    Position
	Column string
	Err    error
}

func (e *Error) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("%s, column %q: %v", e.Pos, e.Column, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Pos, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrEmpty is returned (wrapped) when a source yields no rows.
var ErrEmpty = errors.New("no rows")

// Open starts reading a source. Builtin sources are not handled here.
func Open(ctx context.Context, s Source, o Options) (Reader, error) {
	k, err := s.Kind()
	if err != nil {
		return nil, err
	}
	switch k {
	case "file":
		return openFiles(ctx, s.File, o)
	case "url":
		return openURL(ctx, s, o)
	case "sql":
		return openSQL(ctx, s, o)
	case "log":
		return openLog(ctx, s.Log, o)
	case "inline":
		return openInline(s.Inline)
	case "object":
		return openObject(ctx, s, o)
	}
	return nil, fmt.Errorf("source: %s sources are read by runtime/data, not source.Open", k)
}

// Fingerprint returns "sha256:<hex>" over the source's content, reading as
// little as it can: files are hashed without parsing, SQL uses the version
// query when given, objects use their ETag, generation or MD5.
func Fingerprint(ctx context.Context, s Source, o Options) (string, error) {
	k, err := s.Kind()
	if err != nil {
		return "", err
	}
	switch k {
	case "file":
		return fingerprintFiles(ctx, s.File, o)
	case "log":
		return fingerprintFiles(ctx, s.Log.Path, o)
	case "url":
		return fingerprintURL(ctx, s, o)
	case "sql":
		return fingerprintSQL(ctx, s, o)
	case "inline":
		return fingerprintInline(s.Inline)
	case "object":
		return fingerprintObject(ctx, s, o)
	}
	return "", fmt.Errorf("source: %s sources are fingerprinted by runtime/data", k)
}

// drain reads a Reader to the end and returns its digest; used where the
// fingerprint is defined as the digest of the parsed content.
func drain(r Reader) (string, error) {
	defer r.Close()
	for {
		if _, _, err := r.Next(); err == io.EOF {
			break
		} else if err != nil {
			return "", err
		}
	}
	return r.Digest()
}
