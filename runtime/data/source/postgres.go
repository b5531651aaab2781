package source

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
)

// PostgreSQL is read through pgx with every result column in the text
// format: values arrive as the server prints them (exact decimals for
// NUMERIC, no per-type decoding) and are typed by the same inference as CSV;
// only booleans ("t"/"f") need their type's OID.
const pgBoolOID = 16

func pgConnect(ctx context.Context, q *SQL) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(q.DSN)
	if err != nil {
		return nil, fmt.Errorf("%s: bad dsn: %w", sqlName(q), err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot connect: %w", sqlName(q), err)
	}
	return conn, nil
}

type pgReader struct {
	q       *SQL
	conn    *pgx.Conn
	rows    pgx.Rows
	cancel  context.CancelFunc
	cols    []string
	isBool  []bool
	vals    []Value
	h       rowHasher
	version string
	n       int64
}

func openPostgres(ctx context.Context, s Source) (Reader, error) {
	q := s.SQL
	var cancel context.CancelFunc = func() {}
	if s.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
	}
	conn, err := pgConnect(ctx, q)
	if err != nil {
		cancel()
		return nil, err
	}
	r := &pgReader{q: q, conn: conn, cancel: cancel, h: rowHasher{sha256.New()}}
	if q.VersionQuery != "" {
		if r.version, err = pgVersionDigest(ctx, conn, q); err != nil {
			r.Close()
			return nil, err
		}
	}
	rows, err := conn.Query(ctx, q.Query, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err == nil {
		// pgx reports most query errors on the first Next; fetch it so a bad
		// query fails here, naming the query rather than a row.
		r.rows = rows
		err = r.prime()
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%s: query failed: %w", sqlName(q), err)
	}
	return r, nil
}

// prime reads the row description; a failing query surfaces here.
func (r *pgReader) prime() error {
	fds := r.rows.FieldDescriptions()
	if fds == nil {
		if r.rows.Next() || r.rows.Err() == nil {
			// a statement without a result set (e.g. an UPDATE)
			return fmt.Errorf("the statement returns no result set")
		}
		return r.rows.Err()
	}
	seen := map[string]bool{}
	for _, fd := range fds {
		if seen[fd.Name] {
			return fmt.Errorf("the query returns column %q twice; alias one of them", fd.Name)
		}
		seen[fd.Name] = true
		r.cols = append(r.cols, fd.Name)
		r.isBool = append(r.isBool, fd.DataTypeOID == pgBoolOID)
	}
	r.h.columns(r.cols)
	r.vals = make([]Value, len(r.cols))
	return nil
}

func (r *pgReader) Columns() []string { return r.cols }

func (r *pgReader) Next() ([]Value, Position, error) {
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return nil, Position{}, fmt.Errorf("%s: query failed at row %d: %w", sqlName(r.q), r.n+1, err)
		}
		return nil, Position{}, io.EOF
	}
	r.n++
	raw := r.rows.RawValues()
	for i, b := range raw {
		switch {
		case b == nil:
			r.h.value(nil)
			r.vals[i] = Value{}
		case r.isBool[i]:
			r.h.value(b[0] == 't')
			r.vals[i] = Value{Kind: Bool, Num: float64(b2i(b[0] == 't'))}
		default:
			r.h.value(b)
			r.vals[i] = TextValue(b)
		}
	}
	return r.vals, Position{Source: sqlName(r.q), Unit: "row", N: r.n}, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (r *pgReader) Digest() (string, error) {
	if r.version != "" {
		return r.version, nil
	}
	return r.h.sum(), nil
}

func (r *pgReader) Close() error {
	if r.rows != nil {
		r.rows.Close()
	}
	err := r.conn.Close(context.Background())
	r.cancel()
	return err
}

func pgVersionDigest(ctx context.Context, conn *pgx.Conn, q *SQL) (string, error) {
	rows, err := conn.Query(ctx, q.VersionQuery, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return "", fmt.Errorf("%s: version_query failed: %w", sqlName(q), err)
	}
	defer rows.Close()
	h := rowHasher{sha256.New()}
	h.h.Write([]byte("version\x00"))
	n := 0
	for rows.Next() {
		if n == 0 {
			var cols []string
			for _, fd := range rows.FieldDescriptions() {
				cols = append(cols, fd.Name)
			}
			h.columns(cols)
		}
		if n++; n > 10000 {
			return "", fmt.Errorf("%s: version_query returns more than 10000 rows; it should return a small summary such as max(updated_at)", sqlName(q))
		}
		for _, b := range rows.RawValues() {
			if b == nil {
				h.value(nil)
			} else {
				h.value(b)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("%s: version_query failed: %w", sqlName(q), err)
	}
	return h.sum(), nil
}

func postgresVersion(ctx context.Context, s Source) (string, error) {
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	conn, err := pgConnect(ctx, s.SQL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	return pgVersionDigest(ctx, conn, s.SQL)
}
