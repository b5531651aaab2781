package pg

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/state/remote"
	"github.com/leptonml/lepton/internal/state/statetest"
)

// dsn returns the PostgreSQL of .ci/setup-postgres.sh; without it the test
// fails under CI and is skipped elsewhere.
func dsn(t *testing.T) string {
	d := os.Getenv("LEPTON_TEST_POSTGRES_DSN")
	if d == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("LEPTON_TEST_POSTGRES_DSN is not set; run eval \"$(.ci/setup-postgres.sh)\"")
		}
		t.Skip("LEPTON_TEST_POSTGRES_DSN is not set (eval \"$(.ci/setup-postgres.sh)\" to run this test)")
	}
	return d
}

func open(t testing.TB, conn, schema, name string) state.Backend {
	be, err := New(context.Background(), remote.Settings{"conn_str": conn, "schema_name": schema, "name": name})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func TestConformance(t *testing.T) {
	conn := dsn(t)
	schema := statetest.Shared(t, "PG_SCHEMA", func() string { return "lepton_statetest_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "") })
	statetest.Run(t, func(t testing.TB, key string) state.Backend { return open(t, conn, schema, key) })
}

func TestStore(t *testing.T) {
	conn := dsn(t)
	statetest.RunStore(t, func(t testing.TB, key string) remote.Store {
		return remote.StoreOf(open(t, conn, "lepton_statetest_store", key))
	})
}

func TestHistoryAndSettings(t *testing.T) {
	conn := dsn(t)
	ctx := context.Background()
	name := "history-" + uuid.NewString()[:8]
	a := open(t, conn, DefaultSchema, name)
	s := state.New("test")
	s.Serial = 1
	if err := state.Write(ctx, a, s, state.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{2, 3} { // a second command: one history row, serial 1
		s.Serial = n
		if err := state.Write(ctx, open(t, conn, DefaultSchema, name), s, state.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	st := remote.StoreOf(a).(*store)
	var serials []int64
	rows, err := st.pool.Query(ctx, `SELECT serial FROM `+st.schema+`.states_history WHERE name = $1 ORDER BY id`, name)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n int64
		rows.Scan(&n)
		serials = append(serials, n)
	}
	if len(serials) != 2 || serials[0] != 1 || serials[1] != 2 {
		t.Fatalf("history serials %v, want [1 2] (the state before each of two later commands)", serials)
	}
	// A bad connection string is refused without repeating its password.
	_, err = New(ctx, remote.Settings{"conn_str": "postgres://u:hunter2@127.0.0.1:1/db?sslmode=bogus"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad conn_str: %v", err)
	}
	if _, err := New(ctx, remote.Settings{"schema": "x"}); err == nil || !strings.Contains(err.Error(), `no setting "schema"`) {
		t.Fatalf("unknown setting: %v", err)
	}
	t.Setenv("PG_CONN_STR", "")
	if _, err := New(ctx, remote.Settings{}); err == nil || !strings.Contains(err.Error(), "PG_CONN_STR") {
		t.Fatalf("no connection string: %v", err)
	}
}
