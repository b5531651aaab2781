package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Backend is where one state lives and the lock that guards it. It has the
// shape of OpenTofu's statemgr.Full, reduced to what lepton uses:
//
//   - Read is RefreshState followed by State: it fetches the stored state.
//   - Persist is WriteState followed by PersistState: every write is made
//     durable before it returns (lepton's Persister batches writes above
//     this interface instead of holding a transient copy below it).
//   - Lock, Unlock and ForceUnlock are statemgr.Locker.
//
// Every implementation refuses a write that would lose information
// (CheckWrite): one whose lineage differs from the stored state's, or whose
// serial is older, unless WriteOptions.Force says the caller means it.
// statetest.Run is the conformance suite each implementation must pass.
type Backend interface {
	// Read returns the stored state, or nil (and no error) when there is none.
	Read(ctx context.Context) (*State, error)
	// Persist stores b, the encoded state whose lineage and serial are m,
	// atomically: a reader, or a crash at any instant, sees the previous
	// state or this one. b is valid only during the call.
	Persist(ctx context.Context, m Meta, b []byte, o WriteOptions) error
	// Lock takes the lock for info.Operation (info.Version is lepton's
	// version; the backend fills in ID, Who, Created, Path and PID), waiting
	// up to timeout (0: fail at once with a *LockError naming the holder).
	Lock(ctx context.Context, info LockInfo, timeout time.Duration) (LockInfo, error)
	// Unlock releases the lock this Backend holds under id.
	Unlock(ctx context.Context, id string) error
	// ForceUnlock clears a lock with the given ID, whoever holds it (a lock
	// left by a killed process). It refuses when id is not the current lock.
	ForceUnlock(ctx context.Context, id string) error
	// String says where the state is, for messages ("lepton.state.json",
	// "s3://bucket/key"). It never contains credentials.
	String() string
}

// Meta identifies one version of a state.
type Meta struct {
	Lineage string
	Serial  uint64
}

// MetaOf returns s's lineage and serial.
func MetaOf(s *State) Meta { return Meta{Lineage: s.Lineage, Serial: s.Serial} }

// WriteOptions change how Persist checks a write.
type WriteOptions struct {
	// Force skips the lineage and serial checks (state push -force,
	// init -migrate-state over an existing state with -force-copy).
	Force bool
}

// Write encodes s and persists it to be.
func Write(ctx context.Context, be Backend, s *State, o WriteOptions) error {
	b, err := s.Encode()
	if err != nil {
		return err
	}
	return be.Persist(ctx, MetaOf(s), b, o)
}

// ErrLineage and ErrStaleSerial are the reasons CheckWrite refuses a write.
var (
	ErrLineage     = errors.New("lineage differs")
	ErrStaleSerial = errors.New("serial is older")
)

// WriteRefusedError says why a write was refused; it wraps ErrLineage or
// ErrStaleSerial.
type WriteRefusedError struct {
	Where          string // the backend's String
	Stored, Wanted Meta
	Reason         error
}

func (e *WriteRefusedError) Error() string {
	if errors.Is(e.Reason, ErrLineage) {
		return fmt.Sprintf("refusing to write state to %s: its lineage %s differs from the stored state's %s, so it belongs to another state (another project, or a state created anew). Nothing was written. Check the backend configuration; to replace the stored state on purpose, use lepton state push -force", e.Where, e.Wanted.Lineage, e.Stored.Lineage)
	}
	return fmt.Sprintf("refusing to write state to %s: its serial %d is older than the stored state's %d, so another command wrote the state since this one read it. Nothing was written. Run the command again to start from the stored state", e.Where, e.Wanted.Serial, e.Stored.Serial)
}

func (e *WriteRefusedError) Unwrap() error { return e.Reason }

// CheckWrite decides whether next may replace stored (nil: nothing is
// stored). A different lineage, or an older serial, is refused unless o.Force.
// An equal serial is allowed: writing the same version again is a retry.
func CheckWrite(where string, stored *Meta, next Meta, o WriteOptions) error {
	if stored == nil || o.Force {
		return nil
	}
	switch {
	case stored.Lineage != next.Lineage:
		return &WriteRefusedError{Where: where, Stored: *stored, Wanted: next, Reason: ErrLineage}
	case next.Serial < stored.Serial:
		return &WriteRefusedError{Where: where, Stored: *stored, Wanted: next, Reason: ErrStaleSerial}
	}
	return nil
}

// ReadMeta returns the lineage and serial of an encoded state without
// decoding the rest: lepton writes them before the resources, so reading the
// first fields is enough; otherwise the whole state is parsed.
func ReadMeta(r io.Reader) (Meta, error) {
	var head bytes.Buffer
	dec := json.NewDecoder(io.TeeReader(io.LimitReader(r, 64<<10), &head))
	var m Meta
	found := 0
	if t, err := dec.Token(); err == nil && t == json.Delim('{') {
		for found < 2 && dec.More() {
			k, err := dec.Token()
			if err != nil {
				break
			}
			switch k {
			case "serial":
				err = dec.Decode(&m.Serial)
				found++
			case "lineage":
				err = dec.Decode(&m.Lineage)
				found++
			case "resources", "outputs":
				err = errors.New("large field first") // parse all instead
			default:
				var skip json.RawMessage
				err = dec.Decode(&skip)
			}
			if err != nil {
				break
			}
		}
	}
	if found == 2 && m.Lineage != "" {
		return m, nil
	}
	all, err := io.ReadAll(io.MultiReader(&head, r))
	if err != nil {
		return Meta{}, err
	}
	s, err := Parse(all)
	if err != nil {
		return Meta{}, err
	}
	return MetaOf(s), nil
}

// PrefetchReader is a Backend that can use a Prefetch (the local backend).
type PrefetchReader interface {
	ReadPrefetched(ctx context.Context, p *Prefetch) (*State, error)
}

// ReadWith reads be's state, using p when be can.
func ReadWith(ctx context.Context, be Backend, p *Prefetch) (*State, error) {
	if pr, ok := be.(PrefetchReader); ok {
		return pr.ReadPrefetched(ctx, p)
	}
	return be.Read(ctx)
}

// Sink adapts a Backend to the Persister: each batched write is persisted
// with the lineage and serial of the state it encodes, so a Persister's write
// is checked like any other.
func Sink(ctx context.Context, be Backend) Writer { return sink{ctx, be} }

type sink struct {
	ctx context.Context
	be  Backend
}

func (s sink) WriteBytes(b []byte) error {
	m, err := ReadMeta(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.be.Persist(s.ctx, m, b, WriteOptions{})
}

func (s sink) WriteState(m Meta, b []byte) error { return s.be.Persist(s.ctx, m, b, WriteOptions{}) }

// metaWriter is a Writer that takes the written state's lineage and serial
// with its bytes (Sink); the Persister prefers it.
type metaWriter interface {
	WriteState(m Meta, b []byte) error
}
