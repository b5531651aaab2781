package state_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leptonml/lepton/internal/crypt"
	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/state/statetest"
)

func TestLocalConformance(t *testing.T) {
	dir := statetest.Dir(t)
	statetest.Run(t, func(t testing.TB, key string) state.Backend {
		return state.NewLocal(filepath.Join(dir, strings.ReplaceAll(key, "/", "_")+".json"))
	})
}

// Encryption wraps any backend; the wrapped one must still pass the suite.
func TestEncryptedLocalConformance(t *testing.T) {
	dir := statetest.Dir(t)
	statetest.Run(t, func(t testing.TB, key string) state.Backend {
		return state.Encrypted(state.NewLocal(filepath.Join(dir, strings.ReplaceAll(key, "/", "_")+".json")), &crypt.Keys{Passphrase: "conformance", Iterations: 1000})
	})
}

func TestEncryptedWrongKey(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "s.json")
	k := &crypt.Keys{Passphrase: "right", Iterations: 1000}
	s := state.New("test")
	s.Serial = 2
	s.Put(&state.Resource{Address: "dataset.secret", Kind: "dataset", Attributes: []byte(`{"token":"hunter2"}`)})
	if err := state.Write(ctx, state.Encrypted(state.NewLocal(p), k), s, state.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	if strings.Contains(string(before), "hunter2") || strings.Contains(string(before), "dataset.secret") {
		t.Fatal("the state file shows its content")
	}
	for _, tc := range []struct {
		name string
		be   state.Backend
		want string
	}{
		{"wrong key", state.Encrypted(state.NewLocal(p), &crypt.Keys{Passphrase: "wrong", Iterations: 1000}), "cannot be decrypted"},
		{"no key", state.NewLocal(p), "the state is encrypted: set LEPTON_STATE_PASSPHRASE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.be.Read(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Read: %v, want %q", err, tc.want)
			}
			after, _ := os.ReadFile(p)
			if !bytes.Equal(before, after) {
				t.Fatal("a failed read changed the state file")
			}
		})
	}
	// Rotation: the fallback reads, the new passphrase writes.
	rot := state.Encrypted(state.NewLocal(p), &crypt.Keys{Passphrase: "new", Fallback: "right", Iterations: 1000})
	got, err := rot.Read(ctx)
	if err != nil || got.Find("dataset.secret") == nil {
		t.Fatalf("read with the fallback: %v", err)
	}
	got.Serial++
	if err := state.Write(ctx, rot, got, state.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := state.Encrypted(state.NewLocal(p), &crypt.Keys{Passphrase: "new", Iterations: 1000}).Read(ctx); err != nil {
		t.Fatalf("after rotation the new passphrase alone reads: %v", err)
	}
	if _, err := state.Encrypted(state.NewLocal(p), &crypt.Keys{Passphrase: "right", Iterations: 1000}).Read(ctx); err == nil {
		t.Fatal("after rotation the old passphrase still reads")
	}
}
