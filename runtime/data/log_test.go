package data

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestLog(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "logs/a.log", "2026-01-01T00:00:00Z GET /a 200 12.5ms\nnoise line\n2026-01-01T00:00:01Z POST /b 500 80ms\n")
	write(t, dir, "logs/b.log", "2026-01-01T00:00:02Z GET /a 200 7ms\n")
	pattern := `(?P<ts>\S+) (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d+) (?P<latency_ms>[\d.]+)ms`
	spec := Spec{BaseDir: dir, Source: Source{Log: &Log{Path: "logs/*.log", Pattern: pattern}}, Label: "status", Features: []string{"method", "latency_ms"}}
	ds := load(t, spec)
	if ds.Rows != 3 || !reflect.DeepEqual(ds.Columns, []string{"method=GET", "method=POST", "latency_ms"}) {
		t.Fatalf("rows %d columns %v", ds.Rows, ds.Columns)
	}
	if ds.Schema["latency_ms"] != "number" || ds.Schema["status"] != "number" || ds.Schema["method"] != "string" {
		t.Fatalf("schema %v", ds.Schema)
	}
	if !reflect.DeepEqual(ds.Classes, []string{"200", "500"}) || !reflect.DeepEqual(ds.Train.Target, []float32{200, 500, 200}) {
		t.Fatalf("classes %v target %v", ds.Classes, ds.Train.Target)
	}
	if !strings.Contains(ds.Steps[0].Detail, "1 line did not match") {
		t.Fatalf("read step %+v", ds.Steps[0])
	}
	if fp, err := Fingerprint(context.Background(), spec); err != nil || fp != ds.Digest {
		t.Fatalf("Fingerprint %s %v != %s", fp, err, ds.Digest)
	}

	for _, tc := range []struct{ name, path, pattern, want string }{
		{"no named groups", "logs/*.log", `(\S+) (\d+)`, `has no named groups`},
		{"bad regexp", "logs/*.log", `(?P<x>[`, `not a valid RE2 expression`},
		{"lookahead is not RE2", "logs/*.log", `(?P<x>a(?=b))`, `not a valid RE2 expression`},
		{"nothing matches", "logs/*.log", `(?P<x>^zzz$)`, "no rows: no line matches the pattern (4 lines skipped)"},
		{"no files", "nope/*.log", `(?P<x>.)`, "the glob matches no files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(context.Background(), Spec{BaseDir: dir, Source: Source{Log: &Log{Path: tc.path, Pattern: tc.pattern}}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "log") {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
