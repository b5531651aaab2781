//go:build linux

package source

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// tamper rewrites the record of files with a fake digest, keeping the
// record's modification time (or setting it to at, when not zero): a lookup
// that answers "sha256:fake" used the record without hashing.
func tamper(t *testing.T, files []string, o Options, at time.Time) {
	t.Helper()
	p := recordPath(files, o)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("no record: %v", err)
	}
	b, _ := os.ReadFile(p)
	var rec hashRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	rec.Digest = "sha256:fake"
	b, _ = json.Marshal(rec)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if at.IsZero() {
		at = fi.ModTime()
	}
	if err := os.Chtimes(p, at, at); err != nil {
		t.Fatal(err)
	}
}

func TestHashCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "d.csv")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(data, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := Options{BaseDir: dir, HashCache: filepath.Join(dir, ".lepton", "filehash")}
	plain := Options{BaseDir: dir}
	files := []string{data}
	old := time.Now().Add(-time.Hour)
	fresh := func(content string) string {
		t.Helper()
		write(content)
		// An hour old: well before any record written from now on.
		if err := os.Chtimes(data, old, old); err != nil {
			t.Fatal(err)
		}
		want, err := fingerprintList(ctx, files, plain)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fingerprintList(ctx, files, o)
		if err != nil || got != want {
			t.Fatalf("through the cache: %q, %v; want %q", got, err, want)
		}
		return want
	}
	get := func() string {
		t.Helper()
		d, err := fingerprintList(ctx, files, o)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("unchanged file is not hashed again", func(t *testing.T) {
		fresh("x,y\n1,2\n")
		tamper(t, files, o, time.Time{})
		if d := get(); d != "sha256:fake" {
			t.Fatalf("digest %q: the record was not used", d)
		}
	})
	t.Run("new content of the same size, same mtime", func(t *testing.T) {
		want := fresh("x,y\n1,2\n")
		tamper(t, files, o, time.Time{})
		write("x,y\n3,4\n") // the change time moves, even with the mtime put back
		if err := os.Chtimes(data, old, old); err != nil {
			t.Fatal(err)
		}
		if d := get(); d == "sha256:fake" || d == want {
			t.Fatalf("digest %q after a same-size edit (old %q)", d, want)
		}
	})
	t.Run("metadata change", func(t *testing.T) {
		fresh("x,y\n5,6\n")
		tamper(t, files, o, time.Time{})
		if err := os.Chmod(data, 0o600); err != nil {
			t.Fatal(err)
		}
		if d := get(); d == "sha256:fake" {
			t.Fatal("a chmod (new change time) kept the record")
		}
	})
	t.Run("size change", func(t *testing.T) {
		fresh("x,y\n7,8\n")
		tamper(t, files, o, time.Time{})
		write("x,y\n7,8\n9,10\n")
		if err := os.Chtimes(data, old, old); err != nil {
			t.Fatal(err)
		}
		if d := get(); d == "sha256:fake" {
			t.Fatal("a size change kept the record")
		}
	})
	t.Run("racy: file as new as the record", func(t *testing.T) {
		want := fresh("x,y\n1,1\n")
		// The record written in the same tick as the file's last write: the
		// file could have changed after it within that tick.
		tamper(t, files, o, old)
		if d := get(); d != want {
			t.Fatalf("digest %q, want the file hashed again (%q)", d, want)
		}
		// Hashed again, the new record is newer than the file: trusted.
		tamper(t, files, o, time.Time{})
		if d := get(); d != "sha256:fake" {
			t.Fatalf("digest %q: the rewritten record was not used", d)
		}
	})
	t.Run("file list", func(t *testing.T) {
		fresh("x,y\n2,2\n")
		other := filepath.Join(dir, "e.csv")
		if err := os.WriteFile(other, []byte("x,y\n3,3\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(other, old, old)
		two := []string{data, other}
		want, _ := fingerprintList(ctx, two, plain)
		if d, err := fingerprintList(ctx, two, o); err != nil || d != want {
			t.Fatalf("two files: %q %v, want %q", d, err, want)
		}
		if get() == want {
			t.Fatal("one file's record answered for two")
		}
	})
	t.Run("missing file is an error", func(t *testing.T) {
		if _, err := fingerprintList(ctx, []string{filepath.Join(dir, "nope.csv")}, o); err == nil {
			t.Fatal("no error for a missing file")
		}
	})
}
