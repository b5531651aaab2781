package state

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseRejects(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"not JSON", `{"version": 1, "lineage": `, "not valid JSON"},
		{"no lineage", `{"version": 1, "serial": 1}`, "no version or lineage"},
		{"newer format", `{"version": 99, "lineage": "x"}`, "newer"},
		{"resource without address", `{"version": 1, "lineage": "x", "resources": [{"kind": "dataset"}]}`, "no address"},
		{"duplicate address", `{"version": 1, "lineage": "x", "resources": [{"address": "dataset.a", "kind": "dataset"}, {"address": "dataset.a", "kind": "dataset"}]}`, "twice"},
	}
	for _, c := range cases {
		if _, err := Parse([]byte(c.src)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Parse error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestEncodeParseRoundTrip(t *testing.T) {
	s := New("test")
	if s.Lineage == "" || s.Version != FormatVersion {
		t.Fatalf("New: %+v", s)
	}
	s.Serial = 7
	s.Outputs["o"] = Output{Value: json.RawMessage(`"v"`), Type: json.RawMessage(`"string"`), Sensitive: true}
	s.Resources = append(s.Resources, &Resource{
		Address: `dataset.d["k"]`, Kind: "dataset", Name: "d", Index: "k", Provider: "local", Status: StatusTainted,
		Attributes: json.RawMessage(`{"digest":"sha256:x"}`), SensitiveAttributes: [][]any{{"source", "inline", "t", float64(0)}},
		Dependencies: []string{"dataset.e"},
	})
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "lepton_version", "serial", "lineage", "outputs", "resources"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("encoded state lacks %q:\n%s", k, b)
		}
	}
	r0 := raw["resources"].([]any)[0].(map[string]any)
	for _, k := range []string{"address", "kind", "name", "index", "provider", "status", "attributes", "sensitive_attributes", "dependencies"} {
		if _, ok := r0[k]; !ok {
			t.Errorf("encoded resource lacks %q:\n%s", k, b)
		}
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Encode()
	if string(again) != string(b) {
		t.Errorf("encode/parse/encode differs:\n%s\n%s", b, again)
	}
	if r := back.Find(`dataset.d["k"]`); r == nil || r.Status != StatusTainted {
		t.Errorf("Find after round trip: %+v", r)
	}
}

func TestLocalWriteBackupMode(t *testing.T) {
	dir := t.TempDir()
	l := NewLocal(filepath.Join(dir, "lepton.state.json"))
	st, err := l.Read(context.Background())
	if err != nil || st != nil {
		t.Fatalf("Read with no file: %v, %v", st, err)
	}
	s := New("test")
	s.Serial = 1
	if err := Write(context.Background(), l, s, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.Path + ".backup"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backup of a state that did not exist: %v", err)
	}
	s.Serial = 2
	if err := Write(context.Background(), l, s, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Within one command the backup is the state from before the command.
	l2 := NewLocal(l.Path)
	s.Serial = 3
	if err := Write(context.Background(), l2, s, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Serial = 4
	if err := Write(context.Background(), l2, s, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(l.Path + ".backup")
	if err != nil {
		t.Fatal(err)
	}
	if bk, err := Parse(b); err != nil || bk.Serial != 2 {
		t.Errorf("backup = serial %v (%v), want 2, the state before this command", bk, err)
	}
	got, err := l2.Read(context.Background())
	if err != nil || got.Serial != 4 {
		t.Fatalf("Read = %v, %v", got, err)
	}
	for _, p := range []string{l.Path, l.Path + ".backup"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	// A corrupt file is an error naming it, not an empty state.
	if err := os.WriteFile(l.Path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(context.Background()); err == nil || !strings.Contains(err.Error(), "lepton.state.json") {
		t.Errorf("Read of a corrupt file: %v", err)
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lepton.state.json")
	a, b := NewLocal(path), NewLocal(path)
	ctx := context.Background()
	info, err := a.Lock(ctx, LockInfo{Operation: "apply", Version: "1.2.3"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID == "" || info.Operation != "apply" || info.Who != Who() || info.PID != os.Getpid() {
		t.Errorf("lock info %+v", info)
	}
	fi, err := os.Stat(path + ".lock")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file: %v %v", fi, err)
	}

	// A second holder fails at once, naming the first.
	t0 := time.Now()
	_, err = b.Lock(ctx, LockInfo{Operation: "plan", Version: "1.2.3"}, 0)
	var le *LockError
	if !errors.As(err, &le) {
		t.Fatalf("second Lock: %v, want a LockError", err)
	}
	if time.Since(t0) > time.Second {
		t.Errorf("second Lock took %v without -lock-timeout", time.Since(t0))
	}
	msg := err.Error()
	for _, w := range []string{Who(), `"apply"`, info.Created.Format(time.RFC3339), info.ID, "-lock-timeout"} {
		if !strings.Contains(msg, w) {
			t.Errorf("lock error lacks %q:\n%s", w, msg)
		}
	}
	// A live lock cannot be forced open; a wrong ID is refused.
	if err := b.ForceUnlock(ctx, "wrong"); err == nil {
		t.Error("ForceUnlock with a wrong ID succeeded")
	}
	if err := b.ForceUnlock(ctx, info.ID); err == nil || !strings.Contains(err.Error(), "live process") {
		t.Errorf("ForceUnlock of a live lock: %v", err)
	}

	// With a timeout the second waits and gets it once the first lets go.
	go func() {
		time.Sleep(300 * time.Millisecond)
		a.Unlock(ctx, info.ID)
	}()
	info2, err := b.Lock(ctx, LockInfo{Operation: "plan", Version: "1.2.3"}, 10*time.Second)
	if err != nil {
		t.Fatalf("Lock with a timeout: %v", err)
	}
	if info2.ID == info.ID || info2.Operation != "plan" {
		t.Errorf("second lock info %+v", info2)
	}
	// A timeout that runs out fails, naming the holder.
	_, err = a.Lock(ctx, LockInfo{Operation: "apply", Version: "1.2.3"}, 300*time.Millisecond)
	if !errors.As(err, &le) || le.Info.ID != info2.ID {
		t.Errorf("Lock after its timeout: %v", err)
	}
	// A cancelled context stops the wait.
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := a.Lock(cctx, LockInfo{Operation: "apply", Version: "1.2.3"}, time.Minute); err == nil {
		t.Error("Lock with a cancelled context succeeded")
	}
	if err := b.Unlock(ctx, info2.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.ForceUnlock(ctx, "any"); err == nil {
		t.Error("ForceUnlock of an unlocked state succeeded")
	}
}
