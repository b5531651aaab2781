package dirtar

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRoundTripAndCanonical(t *testing.T) {
	files := map[string]string{"train.py": "print(1)\n", "run.sh": "#!/bin/sh\n", "data/a/b.txt": "b", "data/c.txt": ""}
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, files)
	writeTree(t, b, files)
	// Other times and an extra skipped folder: the same archive.
	os.Chtimes(filepath.Join(b, "train.py"), time.Unix(1e9, 0), time.Unix(1e9, 0))
	writeTree(t, b, map[string]string{".git/HEAD": "ref"})
	skip := Options{Skip: func(rel string, d fs.DirEntry) bool { return rel == ".git" }}
	for _, gz := range []bool{false, true} {
		skip.Gzip = gz
		sa, err := ToFile(a, filepath.Join(t.TempDir(), "a"), skip)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := ToFile(b, filepath.Join(t.TempDir(), "b"), skip)
		if err != nil {
			t.Fatal(err)
		}
		if sa.Digest != sb.Digest || sa.Files != 4 {
			t.Errorf("gzip=%v: digests %s and %s (files %d), want equal and 4 files", gz, sa.Digest, sb.Digest, sa.Files)
		}
	}
	var buf bytes.Buffer
	if _, err := Write(&buf, a, Options{Gzip: true}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	n, err := Extract(&buf, out, true)
	if err != nil || n != 4 {
		t.Fatalf("Extract: %d files, %v", n, err)
	}
	for name, body := range files {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(got) != body {
			t.Errorf("%s: %q, %v; want %q", name, got, err, body)
		}
	}
	if st, _ := os.Stat(filepath.Join(out, "run.sh")); st == nil || st.Mode()&0o100 == 0 {
		t.Errorf("run.sh lost its executable bit: %v", st)
	}
}

func TestMissingDirIsEmpty(t *testing.T) {
	s, err := ToFile(filepath.Join(t.TempDir(), "none"), filepath.Join(t.TempDir(), "x"), Options{})
	if err != nil || s.Files != 0 {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []tar.Header
		want    string
	}{
		{"dotdot", []tar.Header{{Name: "../x", Typeflag: tar.TypeReg}}, "outside"},
		{"absolute", []tar.Header{{Name: "/etc/x", Typeflag: tar.TypeReg}}, "outside"},
		{"link out", []tar.Header{{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../../etc"}}, "points outside"},
		{"absolute link", []tar.Header{{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}}, "points outside"},
		{"through a link", []tar.Header{{Name: "d/", Typeflag: tar.TypeDir}, {Name: "l", Typeflag: tar.TypeSymlink, Linkname: "d"}, {Name: "d/up", Typeflag: tar.TypeSymlink, Linkname: ".."}, {Name: "d/up/up", Typeflag: tar.TypeSymlink, Linkname: ".."}}, "points outside"},
		{"device", []tar.Header{{Name: "dev", Typeflag: tar.TypeChar}}, "type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range tc.entries {
				h.Mode = 0o644
				tw.WriteHeader(&h)
			}
			tw.Close()
			root := t.TempDir()
			dir := filepath.Join(root, "out")
			_, err := Extract(&buf, dir, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(root, "x")); err == nil {
				t.Fatal("a file was written outside the folder")
			}
		})
	}
}

func FuzzExtract(f *testing.F) {
	var buf bytes.Buffer
	d := f.TempDir()
	os.WriteFile(filepath.Join(d, "a"), []byte("x"), 0o644)
	Write(&buf, d, Options{})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		root := t.TempDir()
		Extract(bytes.NewReader(b), filepath.Join(root, "out"), false)
		entries, _ := os.ReadDir(root)
		if len(entries) > 1 {
			t.Fatalf("wrote outside the folder: %v", entries)
		}
	})
}
