package backend

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leptonml/lepton/internal/state/remote"
	"github.com/leptonml/lepton/lang"
)

func load(t *testing.T, dir, src string) *lang.Config {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, d := lang.Load(dir)
	if d.HasErrors() {
		t.Fatal(d)
	}
	return cfg
}

func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "be.hcl"), []byte("bucket = \"b\"\nuse_path_style = true\nport = 5432\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.hcl"), []byte("bucket = [\"x\"]\n"), 0o644)
	for _, tc := range []struct {
		in      []string
		want    map[string]string
		wantErr string
	}{
		{[]string{"key=a/b.json", "region=eu-west-1"}, map[string]string{"key": "a/b.json", "region": "eu-west-1"}, ""},
		{[]string{"be.hcl", "bucket=c"}, map[string]string{"bucket": "c", "use_path_style": "true", "port": "5432"}, ""},
		{[]string{"endpoint=http://127.0.0.1:9/x?a=b"}, map[string]string{"endpoint": "http://127.0.0.1:9/x?a=b"}, ""},
		{[]string{"missing.hcl"}, nil, "missing.hcl"},
		{[]string{"bad.hcl"}, nil, "must be a string"},
		{[]string{"=x"}, nil, "KEY=VALUE"},
	} {
		got, err := ParseFlags(tc.in, dir)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%v: %v, %v", tc.in, got, err)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%v: %s = %q, want %q", tc.in, k, got[k], v)
			}
		}
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	// No block: the default local file; a local block's path.
	if c, err := Resolve(load(t, dir, ``), dir); err != nil || c.Type != "local" || len(c.Settings) != 0 {
		t.Fatalf("no block: %+v %v", c, err)
	}
	cfg := load(t, dir, "lepton {\n  backend \"local\" {\n    path = \"s.json\"\n    other = [1]\n  }\n}\n")
	if c, err := Resolve(cfg, dir); err != nil || c.Settings["path"] != "s.json" || len(c.Settings) != 1 {
		t.Fatalf("local block: %+v %v", c, err)
	}
	// A remote block needs init; after it, init's settings are used.
	s3 := load(t, dir, "lepton {\n  backend \"s3\" {\n    bucket = \"b\"\n    key = \"k\"\n  }\n}\n")
	if _, err := Resolve(s3, dir); err == nil || !strings.Contains(err.Error(), "initialization required") {
		t.Fatalf("remote before init: %v", err)
	}
	want, _ := FromConfig(s3)
	if err := SaveRecord(dir, want.Merge(map[string]string{"endpoint": "http://127.0.0.1:1"})); err != nil {
		t.Fatal(err)
	}
	if c, err := Resolve(s3, dir); err != nil || c.Settings["endpoint"] != "http://127.0.0.1:1" || c.Settings["bucket"] != "b" {
		t.Fatalf("after init: %+v %v", c, err)
	}
	// A changed block, or a removed one, needs init again.
	for _, src := range []string{"lepton {\n  backend \"s3\" {\n    bucket = \"b2\"\n    key = \"k\"\n  }\n}\n", ``} {
		if _, err := Resolve(load(t, dir, src), dir); err == nil || !strings.Contains(err.Error(), "Backend configuration changed") {
			t.Errorf("changed block %q: %v", src, err)
		}
	}
	// A password is never recorded.
	err := SaveRecord(dir, Config{Type: "pg", Settings: remote.Settings{"conn_str": "postgres://u:pw@h/db"}})
	if err == nil || !strings.Contains(err.Error(), "PGPASSWORD") {
		t.Fatalf("recording a password: %v", err)
	}
	for _, tc := range []struct {
		conn string
		want bool
	}{
		{"postgres://u:pw@h/db", true}, {"postgres://u@h/db", false}, {"host=h password=x", true}, {"host=h user=u", false}, {"postgres://h/db?password=x", true},
	} {
		if got := hasPassword(tc.conn); got != tc.want {
			t.Errorf("hasPassword(%q) = %v", tc.conn, got)
		}
	}
}
