package fsutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		perm    os.FileMode
		opts    Options
		sub     string // write into this subdirectory of the test's directory
		fill    func(io.Writer) error
		want    string // content after the write ("" with wantErr: the old content stays)
		wantErr string
	}{
		{name: "durable", perm: 0o600, fill: text("new"), want: "new"},
		{name: "nosync", perm: 0o644, opts: Options{NoSync: true}, fill: text("fast"), want: "fast"},
		{name: "mkdir", perm: 0o640, opts: Options{MkdirAll: true}, sub: "a/b", fill: text("deep"), want: "deep"},
		{name: "no dir", perm: 0o600, sub: "missing", fill: text("x"), wantErr: "no such file"},
		{name: "fill fails", perm: 0o600, fill: func(w io.Writer) error { w.Write([]byte("half")); return boom }, wantErr: "boom"},
		{name: "large", perm: 0o600, fill: text(strings.Repeat("0123456789", 100_000)), want: strings.Repeat("0123456789", 100_000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), tc.sub)
			p := filepath.Join(dir, "f.json")
			if tc.sub == "" {
				if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := Write(p, tc.perm, tc.opts, tc.fill)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if tc.sub == "" {
					if b, _ := os.ReadFile(p); string(b) != "old" {
						t.Fatalf("a failed write changed the file to %q", b)
					}
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(p)
				if err != nil || string(b) != tc.want {
					t.Fatalf("read %d bytes (%v), want %d", len(b), err, len(tc.want))
				}
				fi, _ := os.Stat(p)
				if fi.Mode().Perm() != tc.perm {
					t.Fatalf("mode %v, want %v", fi.Mode().Perm(), tc.perm)
				}
			}
			// No temporary file is left behind, whatever happened.
			entries, _ := os.ReadDir(filepath.Dir(p))
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Fatalf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	for _, s := range []string{"one", "two"} {
		if err := WriteFile(p, []byte(s), 0o600, Options{}); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != s {
			t.Fatalf("got %q want %q", b, s)
		}
	}
}

func text(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}
