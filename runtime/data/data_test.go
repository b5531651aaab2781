package data

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/leptonml/lepton/runtime/data/prep"
	"github.com/leptonml/lepton/runtime/data/source"
)

var update = flag.Bool("update", false, "rewrite golden files")

func write(t testing.TB, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, spec Spec) *Dataset {
	t.Helper()
	ds, err := Load(context.Background(), spec)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return ds
}

// row returns row r of m as float64s for comparisons.
func row(m Matrix, r int) []float64 {
	out := make([]float64, m.D)
	for j := range out {
		out[j] = float64(m.X[r*m.D+j])
	}
	return out
}

func TestFormats(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.csv", "x,y,label\n1,2,a\n3,4,b\n")
	write(t, dir, "quoted.csv", "x,y,label\n1,2,\"a\"\n\"3\",4,\"b\nc\"\n")
	write(t, dir, "a.jsonl", `{"x":1,"y":2,"label":"a"}`+"\n\n"+`{"label":"b","y":4,"x":3}`+"\n")
	write(t, dir, "a.json", `[{"x":1,"y":2,"label":"a"},{"x":3,"y":4,"label":"b"}]`)
	write(t, dir, "parts/p1.csv", "x,y,label\n1,2,a\n")
	write(t, dir, "parts/p2.csv", "y,x,label\n4,3,b\n") // columns matched by name
	write(t, dir, "crlf.csv", "x,y,label\r\n1,2,a\r\n3,4,b\r\n")
	write(t, dir, "a.tsv", "x\ty\tlabel\n1\t2\ta\n3\t4\tb\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("x,y,label\n1,2,a\n3,4,b\n"))
	zw.Close()
	write(t, dir, "z.csv.gz", gz.String())
	write(t, dir, "noext", "x,y,label\n1,2,a\n3,4,b\n")

	want := []float64{1, 2, 3, 4}
	for _, tc := range []struct {
		name, file, format string
		classes            []string
	}{
		{"csv", "a.csv", "", []string{"a", "b"}},
		{"csv quoted", "quoted.csv", "", []string{"a", "b\nc"}},
		{"jsonl", "a.jsonl", "", []string{"a", "b"}},
		{"json", "a.json", "", []string{"a", "b"}},
		{"glob", "parts/*.csv", "", []string{"a", "b"}},
		{"crlf", "crlf.csv", "", []string{"a", "b"}},
		{"tsv", "a.tsv", "", []string{"a", "b"}},
		{"gzip", "z.csv.gz", "", []string{"a", "b"}},
		{"explicit format", "noext", "csv", []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := load(t, Spec{BaseDir: dir, Source: Source{File: tc.file}, Format: tc.format, Label: "label"})
			if !reflect.DeepEqual(ds.Columns, []string{"x", "y"}) {
				t.Fatalf("columns %v", ds.Columns)
			}
			got := append(row(ds.Train, 0), row(ds.Train, 1)...)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("X = %v, want %v", got, want)
			}
			if !reflect.DeepEqual(ds.Classes, tc.classes) || !reflect.DeepEqual(ds.Train.Y, []float32{0, 1}) {
				t.Fatalf("classes %q Y %v", ds.Classes, ds.Train.Y)
			}
			if ds.Schema["x"] != "number" || ds.Schema["label"] != "string" {
				t.Fatalf("schema %v", ds.Schema)
			}
			fp, err := Fingerprint(context.Background(), Spec{BaseDir: dir, Source: Source{File: tc.file}, Format: tc.format, Label: "label"})
			if err != nil || fp != ds.Digest {
				t.Fatalf("Fingerprint %s (%v) != Load digest %s", fp, err, ds.Digest)
			}
		})
	}
}

func TestInline(t *testing.T) {
	ds := load(t, Spec{Source: Source{Inline: map[string][]any{
		"x":    {1.0, 2.0, nil, 4.0},
		"flag": {true, false, true, nil},
		"kind": {"a", "b", "a", "a"},
		"y":    {0.5, 1.5, 2.5, 3.5},
	}}, Label: "y", Preprocess: Preprocess{Missing: "zero", Encode: "ordinal"}})
	if !reflect.DeepEqual(ds.Columns, []string{"flag", "kind", "x"}) {
		t.Fatalf("columns %v", ds.Columns)
	}
	if ds.Schema["flag"] != "bool" || ds.Schema["kind"] != "string" || ds.Schema["x"] != "number" {
		t.Fatalf("schema %v", ds.Schema)
	}
	wantX := []float32{1, 0, 1, 0, 1, 2, 1, 0, 0, 0, 0, 4}
	if !reflect.DeepEqual(ds.Train.X, wantX) {
		t.Fatalf("X %v want %v", ds.Train.X, wantX)
	}
	// 0.5.. are not integers: a regression target, no classes.
	if ds.Classes != nil || !reflect.DeepEqual(ds.Train.Y, []float32{0.5, 1.5, 2.5, 3.5}) || !reflect.DeepEqual(ds.Train.Target, ds.Train.Y) {
		t.Fatalf("classes %v Y %v Target %v", ds.Classes, ds.Train.Y, ds.Train.Target)
	}
}

func TestNumericLabelClasses(t *testing.T) {
	ds := load(t, Spec{Source: Source{Inline: map[string][]any{"x": {1.0, 2.0, 3.0}, "y": {10.0, 2.0, 10.0}}}, Label: "y"})
	if !reflect.DeepEqual(ds.Classes, []string{"2", "10"}) || !reflect.DeepEqual(ds.Train.Y, []float32{1, 0, 1}) || !reflect.DeepEqual(ds.Train.Target, []float32{10, 2, 10}) {
		t.Fatalf("classes %v Y %v target %v", ds.Classes, ds.Train.Y, ds.Train.Target)
	}
}

func TestMissing(t *testing.T) {
	inline := map[string][]any{
		"a":     {1.0, nil, 3.0, 4.0, 10.0},
		"c":     {"u", "v", nil, "v", "u"},
		"label": {"p", "q", "p", nil, "q"},
	}
	for _, tc := range []struct {
		mode    string
		rows    int
		a       []float32 // column a of the train rows, in order
		c       []float32 // ordinal of c
		dropped map[string]int
	}{
		{"drop", 2, []float32{1, 10}, []float32{0, 0}, map[string]int{"no label": 1, "missing a": 1, "missing c": 1}},
		{"mean", 4, []float32{1, 14.0 / 3, 3, 10}, []float32{0, 1, 0, 0}, map[string]int{"no label": 1}},
		{"median", 4, []float32{1, 3, 3, 10}, []float32{0, 1, 0, 0}, map[string]int{"no label": 1}},
		{"zero", 4, []float32{1, 0, 3, 10}, []float32{0, 1, 0, 0}, map[string]int{"no label": 1}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			// Each run gets its own copy: the pipeline imputes in place in its own columns only.
			ds := load(t, Spec{Source: Source{Inline: inline}, Label: "label", Preprocess: Preprocess{Missing: tc.mode, Encode: "ordinal"}})
			if ds.Rows != tc.rows || ds.DroppedRows != 5-tc.rows {
				t.Fatalf("rows %d dropped %d", ds.Rows, ds.DroppedRows)
			}
			var a, c []float32
			for r := 0; r < ds.Train.N; r++ {
				a = append(a, ds.Train.X[r*2])
				c = append(c, ds.Train.X[r*2+1])
			}
			if !close32(a, tc.a) || !reflect.DeepEqual(c, tc.c) {
				t.Fatalf("a %v (want %v) c %v (want %v)", a, tc.a, c, tc.c)
			}
			if got := ds.Steps[1].DroppedBy; !reflect.DeepEqual(got, tc.dropped) && !(len(got) == 0 && len(tc.dropped) == 0) {
				t.Fatalf("dropped by %v, want %v", got, tc.dropped)
			}
		})
	}
}

func close32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-5 {
			return false
		}
	}
	return true
}

func TestAnomalies(t *testing.T) {
	xs := []any{}
	for i := 0; i < 20; i++ {
		xs = append(xs, float64(i%5))
	}
	xs = append(xs, 1000.0)
	ys := make([]any, len(xs))
	for i := range ys {
		ys[i] = float64(i % 2)
	}
	src := Source{Inline: map[string][]any{"x": xs, "y": ys}}
	for _, tc := range []struct {
		method, action string
		rows, d        int
		max            float32
	}{
		{"zscore", "drop", 20, 1, 4},
		{"iqr", "drop", 20, 1, 4},
		{"zscore", "clip", 21, 1, 0}, // clipped to mean + 3 std
		{"iqr", "clip", 21, 1, 6},    // Q3 + 1.5*IQR = 3 + 1.5*2
		{"zscore", "keep", 21, 2, 1000},
	} {
		t.Run(tc.method+"/"+tc.action, func(t *testing.T) {
			ds := load(t, Spec{Source: src, Label: "y", Preprocess: Preprocess{Anomalies: &Anomalies{Method: tc.method, Action: tc.action}}})
			if ds.Rows != tc.rows || ds.Train.D != tc.d {
				t.Fatalf("rows %d d %d", ds.Rows, ds.Train.D)
			}
			var mx float32
			for r := 0; r < ds.Train.N; r++ {
				mx = max(mx, ds.Train.X[r*ds.Train.D])
			}
			if tc.max != 0 && mx != tc.max {
				t.Fatalf("max x %v, want %v", mx, tc.max)
			}
			if tc.action == "clip" && tc.max == 0 && (mx >= 1000 || mx <= 4) {
				t.Fatalf("max x %v not clipped", mx)
			}
			if tc.action == "keep" {
				last := ds.Train.X[(ds.Train.N-1)*2+1]
				if ds.Columns[1] != "anomaly" || last != 1 || ds.Train.X[1] != 0 {
					t.Fatalf("flag column %v: %v", ds.Columns, ds.Train.X)
				}
			}
		})
	}
}

func TestNormalizeUsesTrainOnly(t *testing.T) {
	xs, ys := []any{}, []any{}
	for i := 0; i < 100; i++ {
		xs = append(xs, float64(i*i))
		ys = append(ys, float64(i%3))
	}
	for _, method := range []string{"zscore", "minmax"} {
		ds := load(t, Spec{Source: Source{Inline: map[string][]any{"x": xs, "y": ys}}, Label: "y",
			Preprocess: Preprocess{Normalize: method}, Split: &Split{Train: 0.7, Validation: 0.15, Test: 0.15, Seed: 7}})
		var m prep.Moments
		for _, v := range ds.Train.X {
			m.Add(float64(v))
		}
		switch method {
		case "zscore":
			if math.Abs(m.Mean()) > 1e-5 || math.Abs(m.Std()-1) > 1e-4 {
				t.Fatalf("train mean %v std %v", m.Mean(), m.Std())
			}
		case "minmax":
			if m.Min != 0 || math.Abs(m.Max-1) > 1e-6 {
				t.Fatalf("train min %v max %v", m.Min, m.Max)
			}
		}
		// The transform reproduces the matrices from raw values.
		tr, err := prep.ParseTransform(ds.Transform)
		if err != nil {
			t.Fatal(err)
		}
		raw := make([]float32, ds.Test.N)
		for r := range raw {
			raw[r] = float32(math.NaN())
		}
		// Recover raw test values from Target ordering is not possible; check via the inverse.
		scale, shift, _ := tr.Affine()
		for r := 0; r < ds.Test.N; r++ {
			orig := (ds.Test.X[r] - shift[0]) / scale[0]
			if s := math.Sqrt(float64(orig)); math.Abs(s-math.Round(s)) > 1e-2 {
				t.Fatalf("%s: test value %v does not map back to a square (%v)", method, ds.Test.X[r], orig)
			}
		}
	}
}

func TestSplit(t *testing.T) {
	var xs, ys []any
	for i := 0; i < 1000; i++ {
		xs = append(xs, float64(i))
		c := "common"
		if i%10 == 0 {
			c = "rare"
		}
		ys = append(ys, c)
	}
	spec := Spec{Source: Source{Inline: map[string][]any{"x": xs, "y": ys}}, Label: "y",
		Split: &Split{Train: 0.8, Validation: 0.1, Test: 0.1, Seed: 3, Stratify: true}}
	a, b := load(t, spec), load(t, spec)
	if a.Train.N != 800 || a.Validation.N != 100 || a.Test.N != 100 {
		t.Fatalf("sizes %d %d %d", a.Train.N, a.Validation.N, a.Test.N)
	}
	if !reflect.DeepEqual(a.Train.X, b.Train.X) {
		t.Fatal("the same seed gave different splits")
	}
	seen := map[float32]bool{}
	for _, m := range []Matrix{a.Train, a.Validation, a.Test} {
		rare := 0
		for r := 0; r < m.N; r++ {
			if seen[m.X[r]] {
				t.Fatalf("row %v in two splits", m.X[r])
			}
			seen[m.X[r]] = true
			if m.Y[r] == 1 {
				rare++
			}
		}
		if rare*10 != m.N {
			t.Fatalf("stratified split has %d rare of %d", rare, m.N)
		}
	}
	spec.Split.Seed = 4
	if c := load(t, spec); reflect.DeepEqual(a.Train.X, c.Train.X) {
		t.Fatal("another seed gave the same split")
	}
}

func TestAugment(t *testing.T) {
	ds := load(t, Spec{Source: Source{Inline: map[string][]any{"x": {1.0, 2.0, 3.0, 4.0}, "c": {"a", "b", "a", "b"}, "y": {0.0, 1.0, 0.0, 1.0}}}, Label: "y",
		Preprocess: Preprocess{Augment: &Augment{NoiseStddev: 0.1, Copies: 2}}, Split: &Split{Train: 0.5, Test: 0.5, Seed: 1}})
	if ds.Train.N != 6 || ds.Test.N != 2 || ds.Rows != 4 || len(ds.Train.Y) != 6 {
		t.Fatalf("train %d test %d rows %d", ds.Train.N, ds.Test.N, ds.Rows)
	}
	d := ds.Train.D
	for c := 1; c <= 2; c++ {
		for r := 0; r < 2; r++ {
			orig, cp := ds.Train.X[r*d:(r+1)*d], ds.Train.X[(c*2+r)*d:(c*2+r+1)*d]
			// columns: c=a, c=b, x
			if orig[2] == cp[2] || math.Abs(float64(orig[2]-cp[2])) > 1 {
				t.Fatalf("numeric column not noised sensibly: %v vs %v", orig, cp)
			}
			if orig[0] != cp[0] || orig[1] != cp[1] {
				t.Fatalf("one-hot columns changed: %v vs %v", orig, cp)
			}
			if ds.Train.Y[c*2+r] != ds.Train.Y[r] {
				t.Fatal("labels not copied")
			}
		}
	}
}

func TestBuiltin(t *testing.T) {
	ds := load(t, Spec{Source: Source{Builtin: "iris"}, Label: "label", Preprocess: Preprocess{Normalize: "zscore"},
		Split: &Split{Train: 0.6, Validation: 0.2, Test: 0.2, Seed: 1, Stratify: true}})
	if ds.Rows != 150 || ds.Train.N != 90 || ds.Validation.N != 30 || ds.Test.N != 30 || ds.Train.D != 4 || len(ds.Classes) != 3 {
		t.Fatalf("iris: rows %d train %d val %d test %d d %d classes %v", ds.Rows, ds.Train.N, ds.Validation.N, ds.Test.N, ds.Train.D, ds.Classes)
	}
	if _, err := Load(context.Background(), Spec{Source: Source{Builtin: "iris"}, Label: "species"}); err == nil || !strings.Contains(err.Error(), `its label column is "label"`) {
		t.Fatalf("wrong builtin label: %v", err)
	}
	if testing.Short() {
		return
	}
	// MNIST without a split block: the standard 60000/10000 split.
	m := load(t, Spec{Source: Source{Builtin: "mnist"}})
	if m.Train.N != 60000 || m.Test.N != 10000 || m.Validation.N != 0 || m.Train.D != 784 || len(m.Classes) != 10 || len(m.ImageShape) == 0 {
		t.Fatalf("mnist: train %d test %d val %d d %d classes %v shape %v", m.Train.N, m.Test.N, m.Validation.N, m.Train.D, m.Classes, m.ImageShape)
	}
	// An image dataset is normalised with statistics pooled over every pixel:
	// MNIST's customary 0.1307 and 0.3081 of full scale, the same for every
	// pixel (per pixel, a border pixel that is almost always 0 would be blown
	// up into noise, and an MLP loses half a point of test accuracy).
	for _, method := range []string{"zscore", "minmax"} {
		z := load(t, Spec{Source: Source{Builtin: "mnist"}, Preprocess: Preprocess{Normalize: method}})
		tr, err := prep.ParseTransform(z.Transform)
		if err != nil {
			t.Fatal(err)
		}
		for j := range tr.Features {
			switch {
			case method == "zscore" && (math.Abs(tr.Mean[j]-0.1307*255) > 0.05 || math.Abs(tr.Std[j]-0.3081*255) > 0.05):
				t.Fatalf("zscore of %s: mean %v std %v, want the pooled 33.33 and 78.57", tr.Features[j], tr.Mean[j], tr.Std[j])
			case method == "minmax" && (tr.Min[j] != 0 || tr.Max[j] != 255):
				t.Fatalf("minmax of %s: %v..%v, want the pooled 0..255", tr.Features[j], tr.Min[j], tr.Max[j])
			}
		}
		if !strings.Contains(fmt.Sprint(z.Steps), "pooled over every pixel") {
			t.Errorf("%s: the normalize step does not say it pooled: %v", method, z.Steps)
		}
	}
	// With a split block, validation is carved from the standard train rows.
	m = load(t, Spec{Source: Source{Builtin: "mnist"}, Features: []string{"pixel400", "pixel401"}, Split: &Split{Train: 0.75, Validation: 0.125, Test: 0.125, Seed: 1}})
	if m.Train.N != 51429 || m.Validation.N != 8571 || m.Test.N != 10000 || m.Train.D != 2 {
		t.Fatalf("mnist split: train %d val %d test %d d %d", m.Train.N, m.Validation.N, m.Test.N, m.Train.D)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "short.csv", "a,b,label\n1,2,x\n3,4\n")
	write(t, dir, "quote.csv", "a,b,label\n1,2,x\n3,\"4,y\n")
	write(t, dir, "nan.csv", "a,b,label\n1,2,x\n3,abc,y\n")
	write(t, dir, "empty.csv", "")
	write(t, dir, "header.csv", "a,b,label\n")
	write(t, dir, "bad.jsonl", "{\"a\":1}\n{\"a\":\n")
	write(t, dir, "nested.json", `[{"a":{"b":1}}]`)
	write(t, dir, "ok.csv", "a,b,label\n1,2,x\n")
	write(t, dir, "dup.csv", "a,a,label\n1,2,x\n")
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"malformed csv line", Spec{Source: Source{File: "short.csv"}, Label: "label"}, "short.csv line 3: malformed CSV: 2 fields, the header has 3"},
		{"malformed quote", Spec{Source: Source{File: "quote.csv"}, Label: "label"}, "quote.csv line 3: malformed CSV"},
		{"non-numeric", Spec{Source: Source{File: "nan.csv"}, Label: "label"}, `nan.csv line 3, column "b": value "abc" is not a number (the column holds numbers since nan.csv line 2)`},
		{"missing label", Spec{Source: Source{File: "ok.csv"}, Label: "target"}, `file ok.csv: label column "target" not found; the source has columns: a, b, label`},
		{"missing feature", Spec{Source: Source{File: "ok.csv"}, Label: "label", Features: []string{"a", "z"}}, `feature column "z" not found`},
		{"empty file", Spec{Source: Source{File: "empty.csv"}}, "empty.csv: no rows: the file is empty"},
		{"header only", Spec{Source: Source{File: "header.csv"}}, "file header.csv: no rows: the source returned no rows"},
		{"all dropped", Spec{Source: Source{Inline: map[string][]any{"a": {nil, nil}, "y": {1.0, 2.0}}}, Label: "y"}, "inline: no rows: every one of the 2 rows was dropped (missing (drop): missing a 2)"},
		{"split sum", Spec{Source: Source{File: "ok.csv"}, Split: &Split{Train: 0.8, Validation: 0.1, Test: 0.2}}, "split: train + validation + test = 0.8 + 0.1 + 0.2 = 1.1; the parts must sum to 1"},
		{"bad jsonl", Spec{Source: Source{File: "bad.jsonl"}}, "bad.jsonl line 2: malformed JSON line"},
		{"nested json", Spec{Source: Source{File: "nested.json"}}, `nested.json record 1, column "a": nested map[string]interface {} values are not supported`},
		{"no glob match", Spec{Source: Source{File: "nope/*.csv"}}, "file nope/*.csv: the glob matches no files"},
		{"missing file", Spec{Source: Source{File: "nope.csv"}}, "file nope.csv: stat"},
		{"duplicate header", Spec{Source: Source{File: "dup.csv"}}, `dup.csv line 1: header names column "a" twice`},
		{"no source", Spec{}, "exactly one of"},
		{"two sources", Spec{Source: Source{File: "ok.csv", URL: "http://x"}}, "got file, url"},
		{"inline ragged", Spec{Source: Source{Inline: map[string][]any{"a": {1.0}, "b": {1.0, 2.0}}}}, `inline: column "b" has 2 values but column "a" has 1`},
		{"unknown builtin", Spec{Source: Source{Builtin: "cifar"}}, `unknown built-in dataset "cifar"`},
		{"bad missing", Spec{Source: Source{File: "ok.csv"}, Preprocess: Preprocess{Missing: "guess"}}, `missing = "guess"`},
		{"stratify continuous", Spec{Source: Source{Inline: map[string][]any{"a": {1.0, 2.0}, "y": {0.5, 1.5}}}, Label: "y", Split: &Split{Train: 0.5, Test: 0.5, Stratify: true}}, "stratify needs a categorical label"},
		{"unknown format", Spec{Source: Source{File: "ok.csv"}, Format: "xml"}, `format "xml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.BaseDir = dir
			_, err := Load(context.Background(), tc.spec)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\n does not contain %q", err, tc.want)
			}
		})
	}
	// Errors located at a row are typed, for callers that want the position.
	_, err := Load(context.Background(), Spec{BaseDir: dir, Source: Source{File: "nan.csv"}})
	var se *source.Error
	if !errors.As(err, &se) || se.Pos.N != 3 || se.Column != "b" {
		t.Fatalf("error %v is not a source.Error at line 3 column b", err)
	}
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "d.csv", "a,label\n1,x\n2,y\n")
	spec := Spec{BaseDir: dir, Source: Source{File: "d.csv"}, Label: "label"}
	ctx := context.Background()
	fp := func(s Spec) string {
		d, err := Fingerprint(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	base := fp(spec)
	if base != load(t, spec).Digest {
		t.Fatal("Load digest differs from Fingerprint")
	}
	if fp(spec) != base {
		t.Fatal("Fingerprint is not stable")
	}
	other := spec
	other.Preprocess.Normalize = "zscore"
	if fp(other) == base {
		t.Fatal("a changed spec kept the digest")
	}
	same := spec
	same.Preprocess.Missing = "drop" // the default, spelled out
	if fp(same) != base {
		t.Fatal("spelling out a default changed the digest")
	}
	moved := t.TempDir()
	write(t, moved, "d.csv", "a,label\n1,x\n2,y\n")
	spec2 := spec
	spec2.BaseDir = moved
	if fp(spec2) != base {
		t.Fatal("the working directory changed the digest")
	}
	write(t, dir, "d.csv", "a,label\n1,x\n3,y\n")
	if fp(spec) == base {
		t.Fatal("changed content kept the digest")
	}
	inl := Spec{Source: Source{Inline: map[string][]any{"a": {1.0}}}}
	inl2 := Spec{Source: Source{Inline: map[string][]any{"a": {2.0}}}}
	if fp(inl) == fp(inl2) || fp(inl) != load(t, inl).Digest {
		t.Fatal("inline digests")
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@localhost:5432/db?sslmode=disable": "postgres://u@localhost:5432/db?sslmode=disable",
		"host=localhost user=u password=secret dbname=db":       "host=localhost user=u password=REDACTED dbname=db",
		"file:test.db": "file:test.db",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func writeIDX(t *testing.T, path string, dims []int, data []byte) {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIDX(t *testing.T) {
	dir := t.TempDir()
	writeIDX(t, filepath.Join(dir, "a-images-idx3-ubyte"), []int{3, 2, 2}, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	writeIDX(t, filepath.Join(dir, "a-labels-idx1-ubyte"), []int{3}, []byte{7, 8, 7})
	spec := Spec{BaseDir: dir, Source: Source{File: "a-*-ubyte"}, Label: "label"}
	ds := load(t, spec)
	if !reflect.DeepEqual(ds.ImageShape, []int{2, 2}) || ds.Train.D != 4 || ds.Train.N != 3 {
		t.Fatalf("shape %v D %d N %d", ds.ImageShape, ds.Train.D, ds.Train.N)
	}
	if !reflect.DeepEqual(ds.Train.X[4:8], []float32{4, 5, 6, 7}) || !reflect.DeepEqual(ds.Classes, []string{"7", "8"}) || !reflect.DeepEqual(ds.Train.Y, []float32{0, 1, 0}) {
		t.Fatalf("X %v classes %v Y %v", ds.Train.X, ds.Classes, ds.Train.Y)
	}
	if fp, _ := Fingerprint(context.Background(), spec); fp != ds.Digest {
		t.Fatal("idx digest differs from Fingerprint")
	}
	writeIDX(t, filepath.Join(dir, "b-labels-idx1-ubyte"), []int{2}, []byte{1, 2})
	if _, err := Load(context.Background(), Spec{BaseDir: dir, Source: Source{File: "*-ubyte"}}); err == nil || !strings.Contains(err.Error(), "1 image files but 2 label files") {
		t.Fatalf("unpaired idx: %v", err)
	}
}

func TestDescribeGolden(t *testing.T) {
	ds := load(t, Spec{BaseDir: "testdata", Source: Source{File: "small.csv"}, Label: "label",
		Preprocess: Preprocess{Missing: "mean", Normalize: "zscore", Anomalies: &Anomalies{Method: "iqr", Action: "drop"}, Augment: &Augment{NoiseStddev: 0.01, Copies: 1}},
		Split:      &Split{Train: 0.6, Validation: 0.2, Test: 0.2, Seed: 1, Stratify: true}})
	var b bytes.Buffer
	if err := ds.Describe(&b); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "describe.golden")
	if *update {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Fatalf("Describe output differs from %s (run go test -update):\n%s", golden, b.String())
	}
	s := ds.Summary()
	if s["rows"] != 9 || s["dropped_rows"] != 1 || s["digest"] != ds.Digest {
		t.Fatalf("summary %v", s)
	}
	st := s["stats"].(map[string]map[string]float64)
	if st["b"]["missing"] != 1 || st["a"]["max"] != 100 {
		t.Fatalf("stats %v", st)
	}
	if _, ok := st["color"]["mean"]; ok {
		t.Fatal("a string column has a mean")
	}
}
