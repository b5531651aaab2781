package source

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers "sqlite"
)

var passwordKV = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)

// RedactDSN drops passwords from URL-style and keyword-style DSNs.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.User != nil {
		u.User = url.User(u.User.Username())
		q := u.Query()
		if q.Has("password") {
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return passwordKV.ReplaceAllString(dsn, "${1}REDACTED")
}

func sqlName(q *SQL) string {
	return fmt.Sprintf("sql (%s %s)", q.Driver, RedactDSN(q.DSN))
}

// openDB opens a SQLite database (PostgreSQL goes through pgx directly, see
// postgres.go); SQLite paths are relative to BaseDir and opened
// read-only so a typo does not create an empty database.
func openDB(ctx context.Context, q *SQL, o Options) (*sql.DB, error) {
	driver, dsn := "", q.DSN
	switch q.Driver {
	case "sqlite":
		driver = "sqlite"
		if !strings.HasPrefix(dsn, "file:") && dsn != ":memory:" {
			p := dsn
			if !filepath.IsAbs(p) && o.BaseDir != "" {
				p = filepath.Join(o.BaseDir, p)
			}
			dsn = "file:" + p + "?mode=ro"
		}
	default:
		return nil, fmt.Errorf("sql: driver %q: want postgres or sqlite", q.Driver)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sqlName(q), err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: cannot connect: %w", sqlName(q), err)
	}
	return db, nil
}

// rowHasher hashes query results canonically: column names, then every value
// with a type tag, so the digest changes exactly when the result does.
type rowHasher struct{ h hash.Hash }

func (r rowHasher) columns(cols []string) {
	for _, c := range cols {
		r.h.Write([]byte(c))
		r.h.Write([]byte{0})
	}
	r.h.Write([]byte{1})
}

func (r rowHasher) value(v any) {
	var b [9]byte
	switch x := v.(type) {
	case nil:
		r.h.Write([]byte{'n'})
	case int64:
		b[0] = 'i'
		binary.LittleEndian.PutUint64(b[1:], uint64(x))
		r.h.Write(b[:])
	case float64:
		b[0] = 'f'
		binary.LittleEndian.PutUint64(b[1:], math.Float64bits(x))
		r.h.Write(b[:])
	case bool:
		if x {
			r.h.Write([]byte{'t'})
		} else {
			r.h.Write([]byte{'F'})
		}
	case []byte:
		r.h.Write([]byte{'b'})
		binary.LittleEndian.PutUint64(b[1:], uint64(len(x)))
		r.h.Write(b[1:])
		r.h.Write(x)
	case string:
		r.h.Write([]byte{'s'})
		binary.LittleEndian.PutUint64(b[1:], uint64(len(x)))
		r.h.Write(b[1:])
		r.h.Write([]byte(x))
	case time.Time:
		r.h.Write([]byte{'T'})
		r.h.Write([]byte(x.UTC().Format(time.RFC3339Nano)))
	default:
		fmt.Fprintf(r.h, "?%T:%v", v, v)
	}
}

func (r rowHasher) sum() string { return "sha256:" + hex.EncodeToString(r.h.Sum(nil)) }

// sqlValue converts what database/sql returns. Text (and NUMERIC, which pgx
// hands over as text) is untyped so that numeric strings become numbers.
func sqlValue(v any) Value {
	switch x := v.(type) {
	case nil:
		return Value{}
	case int64:
		return Value{Kind: Number, Num: float64(x)}
	case float64:
		return Value{Kind: Number, Num: x}
	case bool:
		if x {
			return Value{Kind: Bool, Num: 1}
		}
		return Value{Kind: Bool}
	case []byte:
		return TextValue(x)
	case string:
		return TextValue([]byte(x))
	case time.Time:
		return Value{Kind: String, Str: x.UTC().Format(time.RFC3339Nano)}
	}
	return Value{Kind: String, Str: fmt.Sprint(v)}
}

type sqlReader struct {
	q       *SQL
	db      *sql.DB
	rows    *sql.Rows
	cancel  context.CancelFunc
	cols    []string
	raw     []any
	ptrs    []any
	vals    []Value
	h       rowHasher
	version string // set when a version query stands in for the content
	n       int64
}

func openSQL(ctx context.Context, s Source, o Options) (Reader, error) {
	if s.SQL.Driver == "postgres" {
		return openPostgres(ctx, s)
	}
	q := s.SQL
	var cancel context.CancelFunc = func() {}
	if s.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
	}
	db, err := openDB(ctx, q, o)
	if err != nil {
		cancel()
		return nil, err
	}
	r := &sqlReader{q: q, db: db, cancel: cancel, h: rowHasher{sha256.New()}}
	if q.VersionQuery != "" {
		if r.version, err = versionDigest(ctx, db, q); err != nil {
			r.Close()
			return nil, err
		}
	}
	rows, err := db.QueryContext(ctx, q.Query)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%s: query failed: %w", sqlName(q), err)
	}
	r.rows = rows
	if r.cols, err = rows.Columns(); err != nil {
		r.Close()
		return nil, fmt.Errorf("%s: %w", sqlName(q), err)
	}
	seen := map[string]bool{}
	for _, c := range r.cols {
		if seen[c] {
			r.Close()
			return nil, fmt.Errorf("%s: the query returns column %q twice; alias one of them", sqlName(q), c)
		}
		seen[c] = true
	}
	r.h.columns(r.cols)
	r.raw = make([]any, len(r.cols))
	r.ptrs = make([]any, len(r.cols))
	for i := range r.raw {
		r.ptrs[i] = &r.raw[i]
	}
	r.vals = make([]Value, len(r.cols))
	return r, nil
}

func (r *sqlReader) Columns() []string { return r.cols }

func (r *sqlReader) Next() ([]Value, Position, error) {
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return nil, Position{}, fmt.Errorf("%s: reading row %d: %w", sqlName(r.q), r.n+1, err)
		}
		return nil, Position{}, io.EOF
	}
	r.n++
	pos := Position{Source: sqlName(r.q), Unit: "row", N: r.n}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		return nil, pos, &Error{Pos: pos, Err: err}
	}
	for i, v := range r.raw {
		r.h.value(v)
		r.vals[i] = sqlValue(v)
	}
	return r.vals, pos, nil
}

func (r *sqlReader) Digest() (string, error) {
	if r.version != "" {
		return r.version, nil
	}
	return r.h.sum(), nil
}

func (r *sqlReader) Close() error {
	if r.rows != nil {
		r.rows.Close()
	}
	err := r.db.Close()
	r.cancel()
	return err
}

// versionDigest hashes the version query's whole (small) result.
func versionDigest(ctx context.Context, db *sql.DB, q *SQL) (string, error) {
	rows, err := db.QueryContext(ctx, q.VersionQuery)
	if err != nil {
		return "", fmt.Errorf("%s: version_query failed: %w", sqlName(q), err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", fmt.Errorf("%s: version_query: %w", sqlName(q), err)
	}
	h := rowHasher{sha256.New()}
	h.h.Write([]byte("version\x00"))
	h.columns(cols)
	raw := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	n := 0
	for rows.Next() {
		if n++; n > 10000 {
			return "", fmt.Errorf("%s: version_query returns more than 10000 rows; it should return a small summary such as max(updated_at)", sqlName(q))
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", fmt.Errorf("%s: version_query: %w", sqlName(q), err)
		}
		for _, v := range raw {
			h.value(v)
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("%s: version_query: %w", sqlName(q), err)
	}
	return h.sum(), nil
}

func fingerprintSQL(ctx context.Context, s Source, o Options) (string, error) {
	q := s.SQL
	if q.VersionQuery == "" {
		r, err := openSQL(ctx, s, o)
		if err != nil {
			return "", err
		}
		return drain(r)
	}
	if q.Driver == "postgres" {
		return postgresVersion(ctx, s)
	}
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	db, err := openDB(ctx, q, o)
	if err != nil {
		return "", err
	}
	defer db.Close()
	return versionDigest(ctx, db, q)
}
