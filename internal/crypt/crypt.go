// Package crypt encrypts state and saved plans on the client: AES-256-GCM
// with a key derived by PBKDF2-SHA256 from a passphrase, in a JSON envelope
// that carries the KDF parameters, the salt and the nonce (and, for a state,
// its lineage and serial in the clear, so that backends can still refuse a
// stale or foreign write without the key). The envelope's clear fields are
// authenticated: changing one makes decryption fail.
package crypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// Environment variables that hold the passphrases.
const (
	EnvPassphrase = "LEPTON_STATE_PASSPHRASE"
	// EnvFallback holds the previous passphrase while rotating: files are
	// read with either, and written with EnvPassphrase's.
	EnvFallback = "LEPTON_STATE_PASSPHRASE_FALLBACK"
)

// Format names the envelope's scheme.
const Format = "lepton-aes256gcm-pbkdf2-v1"

// DefaultIterations is PBKDF2's work factor for new envelopes (OWASP's
// recommendation for PBKDF2-HMAC-SHA256).
const DefaultIterations = 600_000

// ErrNoKey is returned when an envelope is read without a passphrase.
var ErrNoKey = errors.New("it is encrypted, and " + EnvPassphrase + " is not set")

// ErrWrongKey is returned when no passphrase opens an envelope.
var ErrWrongKey = errors.New("it cannot be decrypted with " + EnvPassphrase + " (nor " + EnvFallback + "): the passphrase is not the one it was encrypted with, or the file was altered")

// Params are the envelope's key derivation and cipher parameters.
type Params struct {
	Format     string `json:"format"`
	KDF        string `json:"kdf"`
	Iterations int    `json:"iterations"`
	Salt       []byte `json:"salt"`
	Nonce      []byte `json:"nonce"`
}

// Envelope is an encrypted file. Version, Lineage and Serial are set for a
// state (in the clear, authenticated); Ciphertext is the sealed content.
type Envelope struct {
	Version    int     `json:"version,omitempty"`
	Lineage    string  `json:"lineage,omitempty"`
	Serial     *uint64 `json:"serial,omitempty"`
	Encrypted  Params  `json:"encrypted"`
	Ciphertext []byte  `json:"ciphertext"`
}

// aad is what the cipher authenticates besides the content: every clear field.
func (e *Envelope) aad() []byte {
	c := *e
	c.Ciphertext = nil
	c.Encrypted.Nonce = nil
	b, _ := json.Marshal(c)
	return b
}

// IsEnvelope reports whether b is an encrypted envelope rather than plain
// JSON content. Only the first top-level fields are looked at.
func IsEnvelope(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	for i := 0; i < 8 && dec.More(); i++ {
		k, err := dec.Token()
		if err != nil {
			return false
		}
		if k == "encrypted" {
			return true
		}
		var skip json.RawMessage
		if k == "resources" || k == "outputs" || dec.Decode(&skip) != nil {
			return false
		}
	}
	return false
}

// Keys seals and opens envelopes with a passphrase and, for reading, a
// fallback. A derived key is remembered per salt, so an apply that writes
// its state dozens of times derives it once.
type Keys struct {
	Passphrase, Fallback string
	Iterations           int // 0: DefaultIterations

	mu      sync.Mutex
	derived map[string][]byte // passphrase+salt+iterations -> key
	salt    []byte            // the salt new envelopes use (one per Keys)
}

// FromEnv returns the keys the environment holds, or nil when no passphrase
// is set (getenv looks a variable up).
func FromEnv(getenv func(string) string) *Keys {
	p, f := getenv(EnvPassphrase), getenv(EnvFallback)
	if p == "" && f == "" {
		return nil
	}
	return &Keys{Passphrase: p, Fallback: f}
}

func (k *Keys) key(pass string, salt []byte, iter int) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := fmt.Sprintf("%d\x00%x\x00%s", iter, salt, pass)
	if key, ok := k.derived[id]; ok {
		return key, nil
	}
	key, err := pbkdf2.Key(sha256.New, pass, salt, iter, 32)
	if err != nil {
		return nil, err
	}
	if k.derived == nil {
		k.derived = map[string][]byte{}
	}
	k.derived[id] = key
	return key, nil
}

// Seal encrypts plain into an envelope; head carries a state's clear fields
// (nil for a plan).
func (k *Keys) Seal(plain []byte, head *Envelope) ([]byte, error) {
	if k.Passphrase == "" {
		return nil, fmt.Errorf("%s is not set: lepton encrypts with it (%s alone only reads)", EnvPassphrase, EnvFallback)
	}
	iter := k.Iterations
	if iter == 0 {
		iter = DefaultIterations
	}
	k.mu.Lock()
	if k.salt == nil {
		k.salt = make([]byte, 16)
		rand.Read(k.salt)
	}
	salt := k.salt
	k.mu.Unlock()
	key, err := k.key(k.Passphrase, salt, iter)
	if err != nil {
		return nil, err
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	e := Envelope{}
	if head != nil {
		e.Version, e.Lineage, e.Serial = head.Version, head.Lineage, head.Serial
	}
	e.Encrypted = Params{Format: Format, KDF: "pbkdf2-sha256", Iterations: iter, Salt: salt}
	aad := e.aad()
	e.Encrypted.Nonce = make([]byte, gcm.NonceSize())
	rand.Read(e.Encrypted.Nonce)
	e.Ciphertext = gcm.Seal(nil, e.Encrypted.Nonce, plain, aad)
	b, err := json.Marshal(&e)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Open decrypts an envelope with the passphrase, then the fallback.
func (k *Keys) Open(b []byte) ([]byte, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("the encrypted envelope is not valid JSON: %w", err)
	}
	p := e.Encrypted
	if p.Format != Format || p.KDF != "pbkdf2-sha256" {
		return nil, fmt.Errorf("the envelope's format %q (%s) is not one this lepton knows (%s)", p.Format, p.KDF, Format)
	}
	if p.Iterations < 1000 || p.Iterations > 100_000_000 || len(p.Salt) < 8 || len(p.Nonce) != 12 {
		return nil, errors.New("the envelope's parameters are not valid (iterations, salt or nonce)")
	}
	if k == nil || (k.Passphrase == "" && k.Fallback == "") {
		return nil, ErrNoKey
	}
	aad := e.aad()
	for _, pass := range []string{k.Passphrase, k.Fallback} {
		if pass == "" {
			continue
		}
		key, err := k.key(pass, p.Salt, p.Iterations)
		if err != nil {
			return nil, err
		}
		gcm, err := newGCM(key)
		if err != nil {
			return nil, err
		}
		if plain, err := gcm.Open(nil, p.Nonce, e.Ciphertext, aad); err == nil {
			return plain, nil
		}
	}
	return nil, ErrWrongKey
}

func newGCM(key []byte) (cipher.AEAD, error) {
	c, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(c)
}
