package data

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresDSN returns the test database (started by .ci/setup-postgres.sh).
// Without one the test fails under CI and is skipped elsewhere.
func postgresDSN(t *testing.T) string {
	dsn := os.Getenv("LEPTON_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("LEPTON_TEST_POSTGRES_DSN is not set; run eval \"$(.ci/setup-postgres.sh)\"")
		}
		t.Skip("LEPTON_TEST_POSTGRES_DSN is not set (eval \"$(.ci/setup-postgres.sh)\" to run this test)")
	}
	return dsn
}

func TestPostgres(t *testing.T) {
	dsn := postgresDSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(ctx)
	table := fmt.Sprintf("lepton_data_test_%d", time.Now().UnixNano())
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(fmt.Sprintf(`CREATE TABLE %s (id int PRIMARY KEY, x double precision, amount numeric(10,2), active boolean,
		city text, label text, updated_at timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z')`, table))
	defer exec("DROP TABLE " + table)
	exec(fmt.Sprintf(`INSERT INTO %s (id, x, amount, active, city, label) VALUES
		(1, 0.5, 10.25, true, 'paris', 'yes'), (2, 1.5, NULL, false, 'oslo', 'no'),
		(3, 2.5, 30.00, true, 'paris', 'yes'), (4, NULL, 40.50, false, 'rome', 'no')`, table))

	spec := Spec{Source: Source{SQL: &SQL{Driver: "postgres", DSN: dsn,
		Query: fmt.Sprintf("SELECT x, amount, active, city, label FROM %s ORDER BY id", table)}},
		Label: "label", Preprocess: Preprocess{Missing: "mean"}}
	ds := load(t, spec)
	wantSchema := map[string]string{"x": "number", "amount": "number", "active": "bool", "city": "string", "label": "string"}
	if !reflect.DeepEqual(ds.Schema, wantSchema) {
		t.Fatalf("schema %v", ds.Schema)
	}
	if ds.Rows != 4 || !reflect.DeepEqual(ds.Classes, []string{"no", "yes"}) || !reflect.DeepEqual(ds.Train.Y, []float32{1, 0, 1, 0}) {
		t.Fatalf("rows %d classes %v Y %v", ds.Rows, ds.Classes, ds.Train.Y)
	}
	// columns: x, amount, active, city=oslo, city=paris, city=rome
	if got := row(ds.Train, 0); !reflect.DeepEqual(got, []float64{0.5, 10.25, 1, 0, 1, 0}) {
		t.Fatalf("row 0 %v (columns %v)", got, ds.Columns)
	}
	if ds.Stats["amount"].Missing != 1 || ds.Stats["x"].Missing != 1 {
		t.Fatalf("stats %+v", ds.Stats)
	}
	fp := func(s Spec) string {
		t.Helper()
		d, err := Fingerprint(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	before := fp(spec)
	if before != ds.Digest {
		t.Fatal("Fingerprint differs from the Load digest")
	}
	exec(fmt.Sprintf("UPDATE %s SET city = 'oslo' WHERE id = 3", table))
	after := fp(spec)
	if after == before {
		t.Fatal("a changed row kept the digest")
	}

	// version_query: the digest follows the version, not the rows.
	vspec := spec
	vq := *spec.Source.SQL
	vq.VersionQuery = fmt.Sprintf("SELECT max(updated_at) FROM %s", table)
	vspec.Source.SQL = &vq
	v1 := fp(vspec)
	if load(t, vspec).Digest != v1 {
		t.Fatal("Load digest differs from the version fingerprint")
	}
	exec(fmt.Sprintf("UPDATE %s SET x = 9 WHERE id = 1", table))
	if fp(vspec) != v1 {
		t.Fatal("the version fingerprint read the rows")
	}
	exec(fmt.Sprintf("UPDATE %s SET x = 8, updated_at = '2026-02-01T00:00:00Z' WHERE id = 1", table))
	if fp(vspec) == v1 {
		t.Fatal("a new version kept the digest")
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("postgres://postgres:hunter2@%s/x?sslmode=disable&connect_timeout=5", l.Addr())
	l.Close()
	for _, tc := range []struct {
		name, dsn, query, version, want string
	}{
		{"failing query", dsn, "SELECT * FROM lepton_no_such_table", "", `query failed: ERROR: relation "lepton_no_such_table" does not exist`},
		{"failing version query", dsn, "SELECT 1", "SELECT nope FROM " + table, `version_query failed: ERROR: column "nope" does not exist`},
		{"empty result", dsn, fmt.Sprintf("SELECT x, label FROM %s WHERE false", table), "", "no rows: the source returned no rows"},
		{"unreachable", closed, "SELECT 1", "", "cannot connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Spec{Source: Source{SQL: &SQL{Driver: "postgres", DSN: tc.dsn, Query: tc.query, VersionQuery: tc.version}}}
			_, err := Load(ctx, s)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "sql (postgres ") {
				t.Fatalf("error %v, want %q naming the source", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

func TestSQLite(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE TABLE t (a REAL, b INTEGER, c TEXT, y TEXT)",
		"INSERT INTO t VALUES (1.5, 2, 'u', 'p'), (2.5, NULL, 'v', 'q'), (3.5, 4, 'u', 'p')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	spec := Spec{BaseDir: dir, Source: Source{SQL: &SQL{Driver: "sqlite", DSN: "app.db", Query: "SELECT a, b, c, y FROM t"}}, Label: "y", Preprocess: Preprocess{Missing: "zero"}}
	ds := load(t, spec)
	if ds.Rows != 3 || !reflect.DeepEqual(ds.Columns, []string{"a", "b", "c=u", "c=v"}) || !reflect.DeepEqual(row(ds.Train, 1), []float64{2.5, 0, 0, 1}) {
		t.Fatalf("rows %d columns %v row1 %v", ds.Rows, ds.Columns, row(ds.Train, 1))
	}
	if fp, err := Fingerprint(context.Background(), spec); err != nil || fp != ds.Digest {
		t.Fatalf("Fingerprint %s %v vs %s", fp, err, ds.Digest)
	}
	for _, tc := range []struct{ dsn, query, want string }{
		{"app.db", "SELECT nope FROM t", "query failed"},
		{"missing.db", "SELECT 1", "cannot connect"},
	} {
		_, err := Load(context.Background(), Spec{BaseDir: dir, Source: Source{SQL: &SQL{Driver: "sqlite", DSN: tc.dsn, Query: tc.query}}})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "sql (sqlite ") {
			t.Fatalf("%s: error %v, want %q", tc.query, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Fatal("opening a missing database created it")
	}
}
