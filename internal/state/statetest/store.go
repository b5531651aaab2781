package statetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/state/remote"
)

// RunStore checks a remote.Store's preconditions directly: the lock-step of
// Persist relies on them, and a Backend test cannot interleave two writers
// between a check and a write.
func RunStore(t *testing.T, f func(t testing.TB, key string) remote.Store) {
	ctx := context.Background()
	s := f(t, "statetest-store-"+uuid.NewString()[:8])
	m := state.Meta{Lineage: "l", Serial: 1}
	body := func(m state.Meta) []byte {
		return fmt.Appendf(nil, `{"version":1,"serial":%d,"lineage":%q,"outputs":{},"resources":[]}`, m.Serial, m.Lineage)
	}
	if err := s.Put(ctx, body(m), m, ""); err != nil {
		t.Fatalf("first Put: %v", err)
	}
	if err := s.Put(ctx, body(m), m, ""); !errors.Is(err, remote.ErrConflict) {
		t.Fatalf("a second create-only Put: %v, want ErrConflict (the store must enforce the precondition)", err)
	}
	got, v1, err := s.Stat(ctx)
	if err != nil || got == nil || *got != m {
		t.Fatalf("Stat = %v, %v", got, err)
	}
	m2 := state.Meta{Lineage: "l", Serial: 2}
	if err := s.Put(ctx, body(m2), m2, v1); err != nil {
		t.Fatalf("Put over the version checked: %v", err)
	}
	m3 := state.Meta{Lineage: "l", Serial: 3}
	if err := s.Put(ctx, body(m3), m3, v1); !errors.Is(err, remote.ErrConflict) {
		t.Fatalf("Put over a version that changed since: %v, want ErrConflict", err)
	}
	if got, _, err := s.Stat(ctx); err != nil || *got != m2 {
		t.Fatalf("after a refused Put the store holds %v (%v), want %v", got, err, m2)
	}
}
