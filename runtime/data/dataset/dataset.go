// Package dataset is a loaded, processed dataset: its matrices and what was
// learned reading it. It depends on nothing but the standard library, so the
// node agent (which must not link the sources' cloud SDKs) can hold one.
package dataset

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// Matrix is one split, row-major.
type Matrix struct {
	X []float32 // N*D features
	// Y is the class index when the dataset has Classes, else the numeric
	// label; nil without a label.
	Y []float32
	// Target is the raw numeric label (for regression) when the label column
	// is numeric, nil otherwise. With a numeric label that also has Classes
	// (integers, at most MaxClasses distinct), Y is the index and Target the value.
	Target []float32
	N, D   int
}

// MaxClasses bounds how many distinct integer values a numeric label may have
// and still be offered as classes.
const MaxClasses = 100

// ColumnStats describes a raw column over every row read (before cleaning).
type ColumnStats struct {
	Type     string  `json:"type"`
	Count    int     `json:"count"` // non-missing values
	Missing  int     `json:"missing"`
	Mean     float64 `json:"mean"` // numbers and bools only
	Std      float64 `json:"std"`
	Min      float64 `json:"min"`
	Max      float64 `json:"max"`
	Distinct int     `json:"distinct,omitempty"` // strings only
}

// StepReport is one preprocessing step as `lepton show` prints it.
type StepReport struct {
	Step      string         `json:"step"`
	RowsIn    int            `json:"rows_in"`
	RowsOut   int            `json:"rows_out"`
	Dropped   int            `json:"dropped"`
	DroppedBy map[string]int `json:"dropped_by,omitempty"` // reason (usually a column) -> rows
	Detail    string         `json:"detail,omitempty"`
}

// Dataset is a loaded, processed dataset.
type Dataset struct {
	Digest      string
	Source      string   // the source, described without secrets
	Label       string   // "" when unsupervised
	Columns     []string // feature columns after encoding (one-hot expands)
	Schema      map[string]string
	Rows        int // after cleaning and anomaly removal, before augmentation
	DroppedRows int
	Classes     []string
	Stats       map[string]ColumnStats
	Steps       []StepReport
	Train       Matrix
	Validation  Matrix
	Test        Matrix
	Transform   json.RawMessage // prep.Transform JSON, from the training split
	ImageShape  []int
}

// Summary returns the computed attributes for state, with JSON-friendly
// types: json.Marshal it and read it with ctyjson to get a cty object. Keys:
// digest, rows, dropped_rows, columns, schema, classes, stats (per column:
// count, missing, and for numeric columns mean, std, min, max).
func (d *Dataset) Summary() map[string]any {
	stats := map[string]map[string]float64{}
	for name, s := range d.Stats {
		m := map[string]float64{"count": float64(s.Count), "missing": float64(s.Missing)}
		if s.Type != "string" && s.Count > 0 {
			m["mean"], m["std"], m["min"], m["max"] = s.Mean, s.Std, s.Min, s.Max
		}
		stats[name] = m
	}
	classes := d.Classes
	if classes == nil {
		classes = []string{}
	}
	return map[string]any{
		"digest":       d.Digest,
		"rows":         d.Rows,
		"dropped_rows": d.DroppedRows,
		"columns":      append([]string{}, d.Columns...),
		"schema":       d.Schema,
		"classes":      classes,
		"stats":        stats,
	}
}

// Describe writes the report `lepton show dataset.NAME` prints: source,
// schema, rows before and after each step, what was dropped and why, and the
// per-column statistics.
func (d *Dataset) Describe(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "source:  %s\n", d.Source)
	fmt.Fprintf(&b, "digest:  %s\n", d.Digest)
	fmt.Fprintf(&b, "rows:    %d kept, %d dropped\n", d.Rows, d.DroppedRows)
	fmt.Fprintf(&b, "splits:  train %d, validation %d, test %d\n", d.Train.N, d.Validation.N, d.Test.N)
	if d.Label != "" {
		fmt.Fprintf(&b, "label:   %s", d.Label)
		if len(d.Classes) > 0 {
			fmt.Fprintf(&b, " (%d classes: %s)", len(d.Classes), elide(d.Classes, 12))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "columns: %d: %s\n", len(d.Columns), elide(d.Columns, 12))
	if len(d.ImageShape) > 0 {
		fmt.Fprintf(&b, "image:   %v\n", d.ImageShape)
	}

	b.WriteString("\nsteps:\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  step\trows in\trows out\tdropped\tdetail")
	for _, s := range d.Steps {
		detail := s.Detail
		if len(s.DroppedBy) > 0 {
			if detail != "" {
				detail += "; "
			}
			detail += "dropped: " + CountList(s.DroppedBy)
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%s\n", s.Step, s.RowsIn, s.RowsOut, s.Dropped, detail)
	}
	tw.Flush()

	names := make([]string, 0, len(d.Schema))
	for n := range d.Schema {
		names = append(names, n)
	}
	sort.Strings(names)
	b.WriteString("\nschema and statistics (all rows read, before cleaning):\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  column\ttype\tcount\tmissing\tmean\tstd\tmin\tmax")
	const maxRows = 40
	for i, n := range names {
		if i == maxRows {
			fmt.Fprintf(tw, "  ... %d more columns\t\t\t\t\t\t\t\n", len(names)-maxRows)
			break
		}
		s := d.Stats[n]
		if s.Type == "string" {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d distinct\t\t\t\n", n, s.Type, s.Count, s.Missing, s.Distinct)
			continue
		}
		if s.Count == 0 {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t-\t-\t-\t-\n", n, s.Type, s.Count, s.Missing)
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", n, s.Type, s.Count, s.Missing, num(s.Mean), num(s.Std), num(s.Min), num(s.Max))
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}

func num(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e12 {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.4g", f)
}

func elide(xs []string, n int) string {
	if len(xs) <= n {
		return strings.Join(xs, ", ")
	}
	return strings.Join(xs[:n], ", ") + fmt.Sprintf(", ... (%d more)", len(xs)-n)
}

// CountList renders per-reason counts, the largest first: "age 3, city 1".
func CountList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
