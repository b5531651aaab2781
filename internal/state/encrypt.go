package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/leptonml/lepton/internal/crypt"
)

// RawReader is a Backend that returns the stored bytes as they are (nil when
// there is no state); every lepton backend is one.
type RawReader interface {
	ReadRaw(ctx context.Context) ([]byte, error)
}

// Encrypted wraps be so that state is encrypted on the client: Persist seals
// each write (lineage and serial stay in the clear, so be still checks
// them), Read opens it with the passphrase or the fallback. A plain state is
// read as it is, so turning encryption on needs no migration: the next
// write encrypts it.
func Encrypted(be Backend, k *crypt.Keys) Backend { return &encrypted{Backend: be, keys: k} }

type encrypted struct {
	Backend
	keys *crypt.Keys
}

func (e *encrypted) Read(ctx context.Context) (*State, error) {
	rr, ok := e.Backend.(RawReader)
	if !ok {
		return nil, fmt.Errorf("the backend %s cannot be read raw, so it cannot be encrypted", e.Backend)
	}
	b, err := rr.ReadRaw(ctx)
	if err != nil || b == nil {
		return nil, err
	}
	if crypt.IsEnvelope(b) {
		if b, err = e.keys.Open(b); err != nil {
			return nil, fmt.Errorf("reading the state at %s: %w", e.Backend, err)
		}
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.Backend, err)
	}
	return s, nil
}

func (e *encrypted) Persist(ctx context.Context, m Meta, b []byte, o WriteOptions) error {
	serial := m.Serial
	sealed, err := e.keys.Seal(b, &crypt.Envelope{Version: FormatVersion, Lineage: m.Lineage, Serial: &serial})
	if err != nil {
		return fmt.Errorf("encrypting the state: %w", err)
	}
	return e.Backend.Persist(ctx, m, sealed, o)
}

// Lock and the rest go to the wrapped backend unchanged.
func (e *encrypted) Lock(ctx context.Context, info LockInfo, timeout time.Duration) (LockInfo, error) {
	return e.Backend.Lock(ctx, info, timeout)
}

// errEncrypted is Parse's refusal of an envelope: the caller has no key.
var errEncrypted = errors.New("the state is encrypted: set " + crypt.EnvPassphrase + " (and " + crypt.EnvFallback + " while rotating) to read it")
