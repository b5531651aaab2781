package crypt

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	plain := []byte(`{"version":1,"serial":3,"lineage":"l","outputs":{},"resources":[{"address":"a","attributes":{"token":"s3cr3t"}}]}`)
	serial := uint64(3)
	head := &Envelope{Version: 1, Lineage: "l", Serial: &serial}
	k := &Keys{Passphrase: "correct horse", Iterations: 1000}
	sealed, err := k.Seal(plain, head)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("s3cr3t")) || bytes.Contains(sealed, []byte("token")) {
		t.Fatalf("the envelope shows the content: %s", sealed)
	}
	if !IsEnvelope(sealed) || IsEnvelope(plain) {
		t.Fatal("IsEnvelope")
	}
	for _, tc := range []struct {
		name    string
		keys    *Keys
		mutate  func([]byte) []byte
		wantErr error
		errText string
	}{
		{name: "same key", keys: &Keys{Passphrase: "correct horse"}},
		{name: "fallback while rotating", keys: &Keys{Passphrase: "new one", Fallback: "correct horse"}},
		{name: "fallback alone", keys: &Keys{Fallback: "correct horse"}},
		{name: "wrong key", keys: &Keys{Passphrase: "wrong"}, wantErr: ErrWrongKey},
		{name: "wrong key and fallback", keys: &Keys{Passphrase: "a", Fallback: "b"}, wantErr: ErrWrongKey},
		{name: "no key", keys: nil, wantErr: ErrNoKey},
		{name: "serial altered", keys: &Keys{Passphrase: "correct horse"}, mutate: func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"serial":3`), []byte(`"serial":9`), 1)
		}, wantErr: ErrWrongKey},
		{name: "ciphertext altered", keys: &Keys{Passphrase: "correct horse"}, mutate: func(b []byte) []byte {
			var e Envelope
			json.Unmarshal(b, &e)
			e.Ciphertext[0] ^= 1
			out, _ := json.Marshal(e)
			return out
		}, wantErr: ErrWrongKey},
		{name: "unknown format", keys: &Keys{Passphrase: "correct horse"}, mutate: func(b []byte) []byte {
			return bytes.Replace(b, []byte(Format), []byte("rot13"), 1)
		}, errText: "not one this lepton knows"},
		{name: "iterations forged low", keys: &Keys{Passphrase: "correct horse"}, mutate: func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"iterations":1000`), []byte(`"iterations":1`), 1)
		}, errText: "not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := sealed
			if tc.mutate != nil {
				in = tc.mutate(append([]byte(nil), sealed...))
			}
			got, err := tc.keys.Open(in)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
			case tc.errText != "":
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err %v, want %q", err, tc.errText)
				}
			default:
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("Open = %q, %v", got, err)
				}
			}
		})
	}
	// The clear fields a backend checks are there; each seal has its own nonce.
	var e Envelope
	if err := json.Unmarshal(sealed, &e); err != nil || e.Lineage != "l" || *e.Serial != 3 || e.Encrypted.Iterations != 1000 || len(e.Encrypted.Salt) != 16 {
		t.Fatalf("envelope %+v (%v)", e, err)
	}
	again, _ := k.Seal(plain, head)
	var e2 Envelope
	json.Unmarshal(again, &e2)
	if bytes.Equal(e.Encrypted.Nonce, e2.Encrypted.Nonce) {
		t.Fatal("two seals share a nonce")
	}
	if _, err := (&Keys{Fallback: "x"}).Seal(plain, nil); err == nil || !strings.Contains(err.Error(), EnvPassphrase) {
		t.Fatalf("sealing with only a fallback: %v", err)
	}
}

func TestDefaultIterationsDerivedOnce(t *testing.T) {
	k := &Keys{Passphrase: "p"}
	b, err := k.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"iterations":600000`) {
		t.Fatalf("default iterations: %s", b)
	}
	if len(k.derived) != 1 {
		t.Fatal("no cached key")
	}
	for range 3 { // cached: these take no PBKDF2 time
		if _, err := k.Seal([]byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Open(b); err != nil {
			t.Fatal(err)
		}
	}
	if len(k.derived) != 1 {
		t.Fatalf("%d keys derived, want 1", len(k.derived))
	}
}

func FuzzOpen(f *testing.F) {
	k := &Keys{Passphrase: "p", Iterations: 1000}
	sealed, _ := k.Seal([]byte(`{"a":1}`), nil)
	f.Add(sealed)
	f.Add([]byte(`{"encrypted":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Never a panic; anything that opens was sealed with this key.
		if plain, err := (&Keys{Passphrase: "p"}).Open(b); err == nil && plain == nil {
			t.Fatal("opened to nil")
		}
		IsEnvelope(b)
	})
}
