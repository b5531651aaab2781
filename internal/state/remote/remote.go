// Package remote turns a store with conditional writes (an object store, a
// database) into a state.Backend: it checks lineage and serial before each
// write, makes the write conditional on the version it checked (so a writer
// that bypassed the lock cannot be overwritten unseen), keeps the state from
// before each command, and polls the store's lock until a timeout.
package remote

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/leptonml/lepton/internal/state"
)

// ErrConflict is what Store.Put returns when the stored version is no longer
// the one it was given (a precondition failed).
var ErrConflict = errors.New("the stored state changed")

// Store is what a remote backend provides.
type Store interface {
	// Get returns the stored state's bytes, or nil when there is none.
	Get(ctx context.Context) ([]byte, error)
	// Stat returns the stored state's lineage and serial (nil when there is
	// no state) and a version token for Put's precondition.
	Stat(ctx context.Context) (m *state.Meta, version string, err error)
	// Put stores b (whose lineage and serial are m) if the stored version is
	// still version ("" : only if nothing is stored), else ErrConflict.
	Put(ctx context.Context, b []byte, m state.Meta, version string) error
	// Backup keeps the stored state of version as the state before this
	// command (a copy, a snapshot or a history row).
	Backup(ctx context.Context, version string) error
	// TryLock takes the lock for info, or returns the holder's information
	// when someone holds it.
	TryLock(ctx context.Context, info state.LockInfo) (holder *state.LockInfo, err error)
	// Unlock releases the lock info.ID taken by this store.
	Unlock(ctx context.Context, info state.LockInfo) error
	// ForceUnlock clears the lock if its ID is id, whoever holds it.
	ForceUnlock(ctx context.Context, id string) error
	// String says where the state is (no credentials).
	String() string
}

// Backend is a state.Backend over a Store.
type Backend struct {
	store    Store
	backedUp bool
	held     state.LockInfo
	// Hint ends a lock refusal (state.RemoteLockHint unless set).
	Hint string
}

var _ state.Backend = (*Backend)(nil)

// New returns the backend for s.
func New(s Store) *Backend { return &Backend{store: s, Hint: state.RemoteLockHint} }

// String says where the state is.
func (b *Backend) String() string { return b.store.String() }

// Read returns the stored state, or nil when there is none.
func (b *Backend) Read(ctx context.Context) (*state.State, error) {
	raw, err := b.store.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading state from %s: %w", b, err)
	}
	if raw == nil {
		return nil, nil
	}
	s, err := state.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	return s, nil
}

// Persist checks m against the stored state and writes b on the condition
// that the stored state is still the one checked.
func (b *Backend) Persist(ctx context.Context, m state.Meta, data []byte, o state.WriteOptions) error {
	stored, version, err := b.store.Stat(ctx)
	if err != nil {
		return fmt.Errorf("checking the stored state at %s before writing: %w", b, err)
	}
	if err := state.CheckWrite(b.String(), stored, m, o); err != nil {
		return err
	}
	if !b.backedUp && stored != nil {
		if err := b.store.Backup(ctx, version); err != nil {
			return fmt.Errorf("keeping the previous state at %s: %w", b, err)
		}
	}
	b.backedUp = true
	if err := b.store.Put(ctx, data, m, version); err != nil {
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("writing state to %s: another command changed it while this one was writing (was it run with -lock=false?); nothing was written: run this command again", b)
		}
		return fmt.Errorf("writing state to %s: %w", b, err)
	}
	return nil
}

// pollInterval is how often a waiting Lock retries.
const pollInterval = 500 * time.Millisecond

// Lock takes the lock, waiting up to timeout for its holder.
func (b *Backend) Lock(ctx context.Context, want state.LockInfo, timeout time.Duration) (state.LockInfo, error) {
	info := state.NewLockInfo(want.Operation, want.Version)
	info.Path = b.String()
	deadline := time.Now().Add(timeout)
	for {
		holder, err := b.store.TryLock(ctx, info)
		if err != nil {
			return state.LockInfo{}, fmt.Errorf("locking state at %s: %w", b, err)
		}
		if holder == nil {
			b.held = info
			return info, nil
		}
		if timeout <= 0 || time.Now().After(deadline) {
			return state.LockInfo{}, &state.LockError{Info: *holder, Err: errors.New("held by another process"), Hint: b.Hint}
		}
		select {
		case <-ctx.Done():
			return state.LockInfo{}, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// Unlock releases the lock this backend holds.
func (b *Backend) Unlock(ctx context.Context, id string) error {
	if b.held.ID == "" {
		return nil
	}
	if id != b.held.ID {
		return fmt.Errorf("lock ID %q is not the lock this command holds (%q)", id, b.held.ID)
	}
	if err := b.store.Unlock(ctx, b.held); err != nil {
		return fmt.Errorf("releasing the lock at %s: %w", b, err)
	}
	b.held = state.LockInfo{}
	return nil
}

// ForceUnlock clears the lock with this ID.
func (b *Backend) ForceUnlock(ctx context.Context, id string) error {
	return b.store.ForceUnlock(ctx, id)
}

// ErrNotLocked and MismatchError are ForceUnlock's refusals, shared by the
// stores so that every backend words them alike.
var ErrNotLocked = errors.New("the state is not locked")

// Mismatch is the refusal of a ForceUnlock whose ID is not the lock's.
func Mismatch(id, current string) error {
	return fmt.Errorf("lock ID %q does not match the current lock %q", id, current)
}

// Settings are a backend's configuration: the backend block's arguments
// merged with init's -backend-config, as strings.
type Settings map[string]string

// Check refuses keys not in allowed and missing required ones, naming the
// backend.
func (s Settings) Check(backend string, required []string, optional ...string) error {
	known := map[string]bool{}
	for _, k := range append(append([]string(nil), required...), optional...) {
		known[k] = true
	}
	for k := range s {
		if !known[k] {
			return fmt.Errorf("the %s backend has no setting %q (it takes %s)", backend, k, list(required, optional))
		}
	}
	for _, k := range required {
		if s[k] == "" {
			return fmt.Errorf("the %s backend needs %q: set it in the backend block or with lepton init -backend-config %s=...", backend, k, k)
		}
	}
	return nil
}

// Bool reads a boolean setting (def when unset).
func (s Settings) Bool(key string, def bool) (bool, error) {
	switch s[key] {
	case "":
		return def, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("setting %q must be true or false, not %q", key, s[key])
}

func list(required, optional []string) string {
	all := append(append([]string(nil), required...), optional...)
	sort.Strings(all)
	return strings.Join(all, ", ")
}

// StoreOf returns the Store under a Backend made by New (for tests of the
// store's preconditions), or nil.
func StoreOf(be state.Backend) Store {
	if b, ok := be.(*Backend); ok {
		return b.store
	}
	return nil
}

// ReadRaw returns the stored bytes, or nil when there is none.
func (b *Backend) ReadRaw(ctx context.Context) ([]byte, error) {
	raw, err := b.store.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading state from %s: %w", b, err)
	}
	return raw, nil
}
