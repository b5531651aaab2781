// Package pg keeps lepton's state in PostgreSQL, as Terraform's pg backend:
// a schema (schema_name) holds a table "states" with one row per state, and
// the lock is a session advisory lock, which PostgreSQL releases when the
// holder's connection ends (so a killed holder frees it, as the local
// backend's OS lock does). The holder's information is a row of "locks";
// every replaced state is kept in "states_history".
//
// The connection string (conn_str, or PG_CONN_STR in the environment) takes
// its password from PGPASSWORD or ~/.pgpass rather than from the
// configuration, like every libpq client.
package pg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/state/remote"
)

// Keys are the settings the pg backend takes.
var (
	Required = []string{}
	Optional = []string{"conn_str", "schema_name", "name", "skip_schema_creation"}
)

// DefaultSchema is where the tables are unless schema_name says otherwise.
const DefaultSchema = "lepton_remote_state"

// New returns the pg backend for settings.
func New(ctx context.Context, s remote.Settings) (state.Backend, error) {
	if err := s.Check("pg", Required, Optional...); err != nil {
		return nil, err
	}
	conn := s["conn_str"]
	if conn == "" {
		conn = os.Getenv("PG_CONN_STR")
	}
	if conn == "" {
		return nil, fmt.Errorf("the pg backend needs a connection string: set conn_str in the backend block or PG_CONN_STR in the environment (the password from PGPASSWORD)")
	}
	skip, err := s.Bool("skip_schema_creation", false)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(conn)
	if err != nil {
		// pgx's message can quote the connection string: keep only its kind.
		return nil, fmt.Errorf("the pg backend's connection string is not valid: %w", redact(err))
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pg backend: %w", redact(err))
	}
	schema := s["schema_name"]
	if schema == "" {
		schema = DefaultSchema
	}
	name := s["name"]
	if name == "" {
		name = "default"
	}
	st := &store{pool: pool, schema: pgx.Identifier{schema}.Sanitize(), name: name,
		where: fmt.Sprintf("pg://%s:%d/%s (schema %s, state %q)", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, schema, name)}
	if !skip {
		if err := st.create(ctx); err != nil {
			pool.Close()
			return nil, fmt.Errorf("pg backend: creating the schema %s: %w", schema, redact(err))
		}
	}
	be := remote.New(st)
	be.Hint = "" // a lock whose holder died is released with it, as the local backend's
	return be, nil
}

// redact removes a password from an error that may quote the connection
// string (pgx's parse errors do).
func redact(err error) error {
	msg := passwordRE.ReplaceAllString(err.Error(), "${1}REDACTED")
	msg = userinfoRE.ReplaceAllString(msg, "${1}:REDACTED@")
	return errors.New(msg)
}

var (
	passwordRE = regexp.MustCompile(`(password\s*=\s*)('[^']*'|\S+)`)
	userinfoRE = regexp.MustCompile(`(://[^:/@\s]+):[^@\s]*@`)
)

type store struct {
	pool   *pgxpool.Pool
	schema string // quoted identifier
	name   string
	where  string
	lock   *pgxpool.Conn // the session holding the advisory lock
}

func (s *store) String() string { return s.where }

func (s *store) create(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Two lepton processes creating the tables at once would race in
		// the catalog: serialise them.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('lepton state schema', 0))`); err != nil {
			return err
		}
		for _, q := range []string{
			`CREATE SCHEMA IF NOT EXISTS ` + s.schema,
			`CREATE TABLE IF NOT EXISTS ` + s.schema + `.states (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, data text NOT NULL, lineage text NOT NULL, serial bigint NOT NULL, version bigint NOT NULL DEFAULT 1)`,
			`CREATE TABLE IF NOT EXISTS ` + s.schema + `.states_history (id bigserial PRIMARY KEY, name text NOT NULL, data text NOT NULL, lineage text NOT NULL, serial bigint NOT NULL, replaced_at timestamptz NOT NULL DEFAULT now())`,
			`CREATE TABLE IF NOT EXISTS ` + s.schema + `.locks (name text PRIMARY KEY, info jsonb NOT NULL)`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *store) Get(ctx context.Context) ([]byte, error) {
	var data string
	err := s.pool.QueryRow(ctx, `SELECT data FROM `+s.schema+`.states WHERE name = $1`, s.name).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []byte(data), nil
}

func (s *store) Stat(ctx context.Context) (*state.Meta, string, error) {
	var m state.Meta
	var serial, version int64
	err := s.pool.QueryRow(ctx, `SELECT lineage, serial, version FROM `+s.schema+`.states WHERE name = $1`, s.name).Scan(&m.Lineage, &serial, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	m.Serial = uint64(serial)
	return &m, strconv.FormatInt(version, 10), nil
}

// Put is one statement, so a killed writer leaves the previous row.
func (s *store) Put(ctx context.Context, b []byte, m state.Meta, version string) error {
	var q string
	args := []any{s.name, string(b), m.Lineage, int64(m.Serial)}
	if version == "" {
		q = `INSERT INTO ` + s.schema + `.states (name, data, lineage, serial) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING`
	} else {
		v, err := strconv.ParseInt(version, 10, 64)
		if err != nil {
			return err
		}
		q = `UPDATE ` + s.schema + `.states SET data = $2, lineage = $3, serial = $4, version = version + 1 WHERE name = $1 AND version = $5`
		args = append(args, v)
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return remote.ErrConflict
	}
	return nil
}

func (s *store) Backup(ctx context.Context, version string) error {
	v, err := strconv.ParseInt(version, 10, 64)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO `+s.schema+`.states_history (name, data, lineage, serial) SELECT name, data, lineage, serial FROM `+s.schema+`.states WHERE name = $1 AND version = $2`, s.name, v)
	return err
}

// lockKey is the advisory lock's key, from the schema and the state's name.
const lockKey = `hashtextextended($1 || '/' || $2, 0)`

func (s *store) TryLock(ctx context.Context, info state.LockInfo) (*state.LockInfo, error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	var ok bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+lockKey+`)`, s.schema, s.name).Scan(&ok); err != nil {
		c.Release()
		return nil, err
	}
	if !ok {
		c.Release()
		return s.holder(ctx)
	}
	b, err := json.Marshal(info)
	if err == nil {
		_, err = c.Exec(ctx, `INSERT INTO `+s.schema+`.locks (name, info) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET info = EXCLUDED.info`, s.name, string(b))
	}
	if err != nil {
		c.Exec(ctx, `SELECT pg_advisory_unlock(`+lockKey+`)`, s.schema, s.name)
		c.Release()
		return nil, fmt.Errorf("writing the lock information: %w", err)
	}
	s.lock = c
	return nil, nil
}

// holder reads the lock holder's information, waiting a little for a holder
// that has the advisory lock but has not written its row yet.
func (s *store) holder(ctx context.Context) (*state.LockInfo, error) {
	for range 20 {
		info, err := s.readLock(ctx)
		if err != nil || info != nil {
			return info, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return &state.LockInfo{ID: "(unknown: the holder wrote no lock information)"}, nil
}

func (s *store) readLock(ctx context.Context) (*state.LockInfo, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT info FROM `+s.schema+`.locks WHERE name = $1`, s.name).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var info state.LockInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

func (s *store) Unlock(ctx context.Context, info state.LockInfo) error {
	c := s.lock
	if c == nil {
		return nil
	}
	s.lock = nil
	defer c.Release()
	if _, err := c.Exec(ctx, `DELETE FROM `+s.schema+`.locks WHERE name = $1 AND info->>'ID' = $2`, s.name, info.ID); err != nil {
		return err
	}
	_, err := c.Exec(ctx, `SELECT pg_advisory_unlock(`+lockKey+`)`, s.schema, s.name)
	return err
}

// ForceUnlock clears the information a dead holder left. A live holder's
// advisory lock cannot be taken from it: PostgreSQL releases it when that
// session ends.
func (s *store) ForceUnlock(ctx context.Context, id string) error {
	info, err := s.readLock(ctx)
	if err != nil {
		return err
	}
	if info == nil {
		return remote.ErrNotLocked
	}
	if info.ID != id {
		return remote.Mismatch(id, info.ID)
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	var ok bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+lockKey+`)`, s.schema, s.name).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the lock is held by a live session (%s, pid %d): PostgreSQL releases the pg backend's lock when that command exits; stop it instead", info.Who, info.PID)
	}
	defer c.Exec(ctx, `SELECT pg_advisory_unlock(`+lockKey+`)`, s.schema, s.name)
	_, err = c.Exec(ctx, `DELETE FROM `+s.schema+`.locks WHERE name = $1 AND info->>'ID' = $2`, s.name, id)
	return err
}
