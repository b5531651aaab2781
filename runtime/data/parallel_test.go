package data

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// bigCSV makes a CSV of several parse chunks; edit may change row i.
func bigCSV(rows int, edit func(i int, cells []string)) string {
	var b strings.Builder
	b.WriteString("a,b,c,label\n")
	for i := 0; i < rows; i++ {
		cells := []string{fmt.Sprintf("%d.25", i%97), fmt.Sprintf("%d", i%13), "", fmt.Sprintf("%d", i%3)}
		if i%50 == 7 {
			cells[1] = "" // missing
		}
		if edit != nil {
			edit(i, cells)
		}
		b.WriteString(strings.Join(cells, ","))
		b.WriteString("\n")
	}
	return b.String()
}

// TestParallelCSVMatchesSequential loads the same bytes from a file (parsed in
// parallel chunks) and from a URL (parsed sequentially): the datasets must be
// identical, whatever mix of numeric and text chunks the file has.
func TestParallelCSVMatchesSequential(t *testing.T) {
	const rows = 200000 // about 2.7 MB: three parse chunks
	cases := map[string]string{
		"numeric": bigCSV(rows, nil),
		"late string column": bigCSV(rows, func(i int, c []string) {
			if i > 150000 && i%2 == 1 {
				c[2] = fmt.Sprintf("s%d", i%5)
			} else if i > 150000 {
				c[2] = fmt.Sprint(i % 7) // numbers in a column that is already a string column
			}
		}),
		"late number column": bigCSV(rows, func(i int, c []string) {
			if i > 160000 {
				c[2] = "1.5"
			}
		}),
		"quoted fields late": bigCSV(rows, func(i int, c []string) {
			if i == 170000 {
				c[0] = "\"3.5\""
			}
			if i == 170001 {
				c[2] = "\"x\ny\""
			}
		}),
		"empty lines": strings.Replace(bigCSV(rows, nil), "\n", "\n\n", 100),
		// Every spelling the chunk parser reads itself or hands to the
		// general path, with CRLF line ends.
		"varied numbers, CRLF": strings.ReplaceAll(bigCSV(rows, func(i int, c []string) {
			v := float64(i%1000)*1.37 - 600
			switch i % 9 {
			case 0:
				c[0] = strconv.FormatFloat(v, 'f', 4, 64)
			case 1:
				c[0] = strconv.FormatFloat(v*1e6, 'f', 3, 64) // longer than 8 characters
			case 2:
				c[0] = strconv.FormatFloat(v, 'e', 3, 64)
			case 3:
				c[0] = "-0"
			case 4:
				c[0] = "." + strconv.Itoa(i%97)
			case 5:
				c[0] = strconv.Itoa(i%97) + "."
			case 6:
				c[0] = "NA"
			case 7:
				c[0] = "00" + strconv.Itoa(i%13) + ".50"
			}
			c[2] = strconv.FormatFloat(-v/7, 'f', i%8, 64)
		}), "\n", "\r\n"),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "d.csv", content)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/csv")
				w.Write([]byte(content))
			}))
			defer srv.Close()
			pp := Preprocess{Missing: "mean", Normalize: "zscore"}
			split := &Split{Train: 0.8, Validation: 0.1, Test: 0.1, Seed: 1}
			par := load(t, Spec{BaseDir: dir, Source: Source{File: "d.csv"}, Label: "label", Preprocess: pp, Split: split})
			seq := load(t, Spec{Source: Source{URL: srv.URL + "/d.csv"}, Label: "label", Preprocess: pp, Split: split})
			if par.Rows != seq.Rows || !reflect.DeepEqual(par.Columns, seq.Columns) || !reflect.DeepEqual(par.Schema, seq.Schema) ||
				!reflect.DeepEqual(par.Stats, seq.Stats) || !reflect.DeepEqual(par.Transform, seq.Transform) {
				t.Fatalf("parallel and sequential differ:\n%v %v %v\n%v %v %v", par.Rows, par.Columns, par.Schema, seq.Rows, seq.Columns, seq.Schema)
			}
			if !reflect.DeepEqual(par.Train.X, seq.Train.X) || !reflect.DeepEqual(par.Test.Y, seq.Test.Y) {
				t.Fatal("parallel and sequential matrices differ")
			}
			if fp, err := Fingerprint(context.Background(), Spec{BaseDir: dir, Source: Source{File: "d.csv"}, Label: "label", Preprocess: pp, Split: split}); err != nil || fp != par.Digest {
				t.Fatalf("Fingerprint %s (%v) != digest of the parallel read %s", fp, err, par.Digest)
			}
		})
	}
}

func TestParallelCSVErrors(t *testing.T) {
	const rows = 200000
	for _, tc := range []struct {
		name    string
		content string
		want    string
	}{
		{"non-numeric deep in the file", bigCSV(rows, func(i int, c []string) {
			if i == 160000 {
				c[0] = "oops"
			}
		}), `d.csv line 160002, column "a": value "oops" is not a number (the column holds numbers since d.csv line 2)`},
		{"short line deep in the file", bigCSV(rows, func(i int, c []string) {
			if i == 180000 {
				c[1] = "5\n1,1,1"
			}
		}), "d.csv line 180002: malformed CSV: 2 fields, the header has 4"},
		{"type decided in a block", bigCSV(rows, func(i int, c []string) {
			if i == 120000 {
				c[2] = "7"
			}
			if i == 160000 {
				c[2] = "x"
			}
		}), `d.csv line 160002, column "c": value "x" is not a number (the column holds numbers since d.csv line 120002)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "d.csv", tc.content)
			_, err := Load(context.Background(), Spec{BaseDir: dir, Source: Source{File: "d.csv"}, Label: "label"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant %q", err, tc.want)
			}
		})
	}
}
