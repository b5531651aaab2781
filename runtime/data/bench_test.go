package data

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkLoadCSV is bench/data in small: a numeric CSV (19 features with
// about 0.5% missing cells, an integer label), missing = mean, zscore, an
// 80/10/10 split. go run ./bench/data measures the full-size file against a
// raw line scan.
func BenchmarkLoadCSV(b *testing.B) {
	const rows, cols = 200_000, 20
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
				line = strconv.AppendFloat(line, rng.NormFloat64()*10+float64(j), 'f', 4, 64)
			}
			line = append(line, ',')
		}
		line = strconv.AppendInt(line, int64(rng.IntN(5)), 10)
		sb.Write(append(line, '\n'))
	}
	dir := b.TempDir()
	write(b, dir, "b.csv", sb.String())
	spec := Spec{BaseDir: dir, Source: Source{File: "b.csv"}, Label: "label",
		Preprocess: Preprocess{Missing: "mean", Normalize: "zscore"}, Split: &Split{Train: 0.8, Validation: 0.1, Test: 0.1, Seed: 1}}
	b.SetBytes(int64(sb.Len()))
	for b.Loop() {
		if _, err := Load(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
	}
}
