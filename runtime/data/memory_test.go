package data

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestStreamingMemory checks that loading allocates in proportion to the
// processed output, not to the text: the whole load (reading, cleaning,
// splitting, normalising) may allocate at most 3 times the float32 output
// plus a constant for the parse buffers in flight (about 20 MB, whatever the
// file size), and must not allocate per row. A per-cell allocation (a string
// per cell, a row object per line) would blow well past both. Allocation
// counts are deterministic, unlike timings.
func TestStreamingMemory(t *testing.T) {
	const rows, cols = 2 * chunkSize, 20 // whole column chunks: no rounding in the count
	csv := numericCSV(rows, cols, 0)
	dir := t.TempDir()
	write(t, dir, "m.csv", csv)
	for _, name := range []string{"file (parallel blocks)", "url (sequential rows)"} {
		t.Run(name, func(t *testing.T) {
			spec := Spec{BaseDir: dir, Source: Source{File: "m.csv"}, Label: "label",
				Preprocess: Preprocess{Missing: "mean", Normalize: "zscore"}, Split: &Split{Train: 0.8, Validation: 0.1, Test: 0.1, Seed: 1}}
			if strings.HasPrefix(name, "url") {
				srv := serveText(t, csv)
				spec.Source = Source{URL: srv + "/m.csv"}
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			ds, err := Load(context.Background(), spec)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			out := 4 * (len(ds.Train.X) + len(ds.Validation.X) + len(ds.Test.X) + len(ds.Train.Y) + len(ds.Validation.Y) + len(ds.Test.Y) +
				len(ds.Train.Target) + len(ds.Validation.Target) + len(ds.Test.Target))
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("text %.1f MB, output %.1f MB, allocated %.1f MB (%.2fx output), %d allocations",
				float64(len(csv))/1e6, float64(out)/1e6, float64(alloc)/1e6, float64(alloc)/float64(out), after.Mallocs-before.Mallocs)
			const inFlight = 24 << 20
			if alloc > 3*uint64(out)+inFlight {
				t.Fatalf("allocated %d bytes for %d bytes of output", alloc, out)
			}
			if n := after.Mallocs - before.Mallocs; n > rows/50 {
				t.Fatalf("%d allocations for %d rows", n, rows)
			}
		})
	}
}

// numericCSV is cols-1 float features (column j drawn around j*offset, about
// 0.5% of cells empty) and an integer label in 0..4, from a fixed seed.
func numericCSV(rows, cols int, offset float64) string {
	var sb strings.Builder
	for j := 0; j < cols-1; j++ {
		fmt.Fprintf(&sb, "f%d,", j)
	}
	sb.WriteString("label\n")
	rng := rand.New(rand.NewPCG(1, 2))
	var line []byte
	for i := 0; i < rows; i++ {
		line = line[:0]
		for j := 0; j < cols-1; j++ {
			if rng.IntN(200) != 0 {
				line = strconv.AppendFloat(line, rng.NormFloat64()*10+float64(j)*offset, 'f', 4, 64)
			}
			line = append(line, ',')
		}
		line = strconv.AppendInt(line, int64(rng.IntN(5)), 10)
		sb.Write(append(line, '\n'))
	}
	return sb.String()
}
