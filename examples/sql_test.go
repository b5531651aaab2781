package examples

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestSQLDataset runs examples/sql-dataset against a real PostgreSQL
// (.ci/setup-postgres.sh starts one and sets LEPTON_TEST_POSTGRES_DSN): apply,
// change a row, and the plan updates the dataset and replaces the training
// that consumes it.
func TestSQLDataset(t *testing.T) {
	admin := os.Getenv("LEPTON_TEST_POSTGRES_DSN")
	if admin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("LEPTON_TEST_POSTGRES_DSN is not set: .ci/run must start PostgreSQL (eval \"$(.ci/setup-postgres.sh)\")")
		}
		t.Skip("LEPTON_TEST_POSTGRES_DSN is not set (eval \"$(.ci/setup-postgres.sh)\" starts a local PostgreSQL)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to %s: %v", admin, err)
	}
	defer conn.Close(ctx)
	db := fmt.Sprintf("lepton_example_%d", os.Getpid())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	dsn := u.String()
	ex, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close(ctx)
	seed, err := os.ReadFile("sql-dataset/seed.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Exec(ctx, string(seed)); err != nil {
		t.Fatalf("seeding: %v", err)
	}

	dir := copyExample(t, "sql-dataset")
	v := "dsn=" + dsn
	lepton(t, dir, "apply", "-auto-approve", "-var", v)
	if rows := outputNumber(t, dir, "rows"); rows != 2000 {
		t.Fatalf("rows = %v, want the 2000 seeded", rows)
	}
	if out := lepton(t, dir, "plan", "-var", v); !strings.Contains(out, "No changes.") {
		t.Fatalf("re-plan is not empty:\n%s", out)
	}
	if _, err := ex.Exec(ctx, "UPDATE customers SET support_calls = support_calls + 1, updated_at = now() WHERE id = 7"); err != nil {
		t.Fatal(err)
	}
	out := lepton(t, dir, "plan", "-var", v)
	for _, want := range []string{"# dataset.customers will be updated in-place", "# training.churn must be replaced", "(dataset.customers changed)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("plan after a row change lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, dsn) {
		t.Fatalf("the plan shows the sensitive DSN:\n%s", out)
	}
}
