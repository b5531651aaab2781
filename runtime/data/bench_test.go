package data

import (
	"context"
	"testing"
)

// BenchmarkLoadCSV is bench/data in small: a numeric CSV (19 features with
// about 0.5% missing cells, an integer label), missing = mean, zscore, an
// 80/10/10 split. go run ./bench/data measures the full-size file against a
// raw line scan.
func BenchmarkLoadCSV(b *testing.B) {
	const rows, cols = 200_000, 20
	csv := numericCSV(rows, cols, 1)
	dir := b.TempDir()
	write(b, dir, "b.csv", csv)
	spec := Spec{BaseDir: dir, Source: Source{File: "b.csv"}, Label: "label",
		Preprocess: Preprocess{Missing: "mean", Normalize: "zscore"}, Split: &Split{Train: 0.8, Validation: 0.1, Test: 0.1, Seed: 1}}
	b.SetBytes(int64(len(csv)))
	for b.Loop() {
		if _, err := Load(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
	}
}
