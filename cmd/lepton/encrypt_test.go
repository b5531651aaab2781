package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestEncryptedState: with LEPTON_STATE_PASSPHRASE the state and saved plans
// are encrypted; without it, or with a wrong one, commands fail clearly and
// leave the state alone; a fallback passphrase rotates the key.
func TestEncryptedState(t *testing.T) {
	dir := project(t, "basic")
	pass := []string{"LEPTON_STATE_PASSPHRASE=first passphrase"}
	if r := runEnv(t, dir, pass, "", "apply", "-auto-approve"); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	statePath := filepath.Join(dir, "lepton.state.json")
	enc := fileBytes(t, statePath)
	if !bytes.Contains(enc, []byte(`"encrypted"`)) || bytes.Contains(enc, []byte("dataset.a")) {
		t.Fatalf("the state is not encrypted:\n%.300s", enc)
	}
	if fi, _ := os.Stat(statePath); fi.Mode().Perm() != 0o600 {
		t.Fatalf("state mode %v", fi.Mode().Perm())
	}
	if r := runEnv(t, dir, pass, "", "plan", "-detailed-exitcode"); r.code != 0 {
		t.Fatalf("plan with the passphrase: %s", r)
	}
	// No passphrase, or a wrong one: a clear error, the state untouched.
	for _, env := range [][]string{nil, {"LEPTON_STATE_PASSPHRASE=wrong"}} {
		for _, args := range [][]string{{"plan"}, {"apply", "-auto-approve"}, {"state", "list"}} {
			r := runEnv(t, dir, env, "", args...)
			if r.code != 1 {
				t.Fatalf("%v %v: want exit 1, got %s", env, args, r)
			}
			contains(t, r.stderr, "LEPTON_STATE_PASSPHRASE")
		}
	}
	if !bytes.Equal(enc, fileBytes(t, statePath)) {
		t.Fatal("a failed command changed the state file")
	}
	// A saved plan is encrypted too.
	edit(t, dir, "main.lep.hcl", "default     = 7", "default     = 8")
	if r := runEnv(t, dir, pass, "", "plan", "-out=p.plan"); r.code != 0 {
		t.Fatalf("plan -out: %s", r)
	}
	if planBytes := fileBytes(t, filepath.Join(dir, "p.plan")); !bytes.Contains(planBytes, []byte(`"encrypted"`)) {
		t.Fatal("the saved plan is not encrypted")
	}
	r := runEnv(t, dir, nil, "", "show", "p.plan")
	if r.code != 1 {
		t.Fatalf("show without the passphrase: %s", r)
	}
	contains(t, r.stderr, "LEPTON_STATE_PASSPHRASE")
	if r := runEnv(t, dir, pass, "", "apply", "p.plan"); r.code != 0 {
		t.Fatalf("apply p.plan: %s", r)
	}
	// Rotation: the new passphrase with the old one as fallback reads; a
	// pull and push writes with the new one; the old one alone then fails.
	rot := []string{"LEPTON_STATE_PASSPHRASE=second passphrase", "LEPTON_STATE_PASSPHRASE_FALLBACK=first passphrase"}
	pulled := runEnv(t, dir, rot, "", "state", "pull")
	if pulled.code != 0 {
		t.Fatalf("pull with the fallback: %s", pulled)
	}
	write(t, dir, "s.json", pulled.stdout)
	if r := runEnv(t, dir, rot, "", "state", "push", "s.json"); r.code != 0 {
		t.Fatalf("push: %s", r)
	}
	if r := runEnv(t, dir, []string{"LEPTON_STATE_PASSPHRASE=second passphrase"}, "", "plan", "-detailed-exitcode"); r.code != 0 {
		t.Fatalf("plan with the new passphrase alone: %s", r)
	}
	if r := runEnv(t, dir, pass, "", "plan"); r.code != 1 {
		t.Fatalf("plan with the old passphrase after rotation: %s", r)
	}
}
