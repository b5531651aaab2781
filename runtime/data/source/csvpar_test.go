package source

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// parseBlockRef is the plain reference for parseBlock: split lines and
// cells, then IsMissingText and ParseNumber on each cell. It returns the
// values row-major, or nil where parseBlock must give up.
func parseBlockRef(data []byte, ncols int, delim byte) []float32 {
	if bytes.IndexByte(data, '"') >= 0 {
		return nil
	}
	vals := []float32{}
	for len(data) > 0 {
		k := bytes.IndexByte(data, '\n')
		line := data
		if k >= 0 {
			line, data = data[:k], data[k+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			return nil
		}
		fields := bytes.Split(line, []byte{delim})
		if len(fields) != ncols {
			return nil
		}
		for _, field := range fields {
			if IsMissingText(field) {
				vals = append(vals, float32(math.NaN()))
			} else if f, ok := ParseNumber(field); ok && !math.IsInf(float64(float32(f)), 0) {
				vals = append(vals, float32(f))
			} else {
				return nil
			}
		}
	}
	return vals
}

func checkBlock(t *testing.T, data []byte, ncols int, delim byte) {
	t.Helper()
	want := parseBlockRef(data, ncols, delim)
	for _, dst := range [][]float32{nil, make([]float32, 0, 7), make([]float32, 1000, 100000)} {
		b := parseBlock(data, ncols, delim, dst)
		if (b == nil) != (want == nil) {
			t.Fatalf("%q (%d columns): block %v, reference %v", data, ncols, b != nil, want != nil)
		}
		if b == nil {
			continue
		}
		if b.Rows*ncols != len(want) || len(b.Vals) != len(want) {
			t.Fatalf("%q: %d rows (%d values), reference %d values", data, b.Rows, len(b.Vals), len(want))
		}
		for r := 0; r < b.Rows; r++ {
			for c := 0; c < ncols; c++ {
				got, w := b.Vals[c*b.Rows+r], want[r*ncols+c]
				if math.Float32bits(got) != math.Float32bits(w) && !(got != got && w != w) {
					t.Fatalf("%q row %d column %d: %v, reference %v", data, r, c, got, w)
				}
			}
		}
	}
}

var cellSpellings = []func(r *rand.Rand) string{
	func(r *rand.Rand) string { return strconv.FormatFloat(r.NormFloat64()*10, 'f', 4, 64) },
	func(r *rand.Rand) string { return strconv.FormatFloat(r.NormFloat64()*1e3, 'f', r.IntN(8), 64) },
	func(r *rand.Rand) string { return strconv.FormatFloat(r.NormFloat64()*1e8, 'f', r.IntN(12), 64) },
	func(r *rand.Rand) string { return strconv.FormatFloat(r.ExpFloat64()*1e-5, 'g', -1, 64) },
	func(r *rand.Rand) string { return strconv.FormatFloat(r.NormFloat64()*1e30, 'e', r.IntN(10), 32) },
	func(r *rand.Rand) string { return strconv.Itoa(r.IntN(1000000000) - 500) },
	func(r *rand.Rand) string { return strconv.Itoa(r.IntN(10)) },
	func(r *rand.Rand) string {
		return []string{"", "NA", "nan", "null", "None", "-", ".", "-.", "1.", ".5", "-.5", "+3", " 4", "4 ", "0000012.5", "-0",
			"-0.000", "1e5", "1E-3", "1.2.3", "x", "1x", "12345678", "1234567", "123456789012345", "1234567890123456789012",
			"9007199254740993", "1e39", "-1e39", "3.4028235e38", "1e-50", "\t7", "7\r", "0x10", "--5", "5-", "١"}[r.IntN(37)]
	},
}

func randomChunk(r *rand.Rand, rows, ncols int, odd float64, delim byte) []byte {
	var b bytes.Buffer
	for i := 0; i < rows; i++ {
		n := ncols
		if r.Float64() < odd/20 {
			n += r.IntN(3) - 1 // a wrong field count, or an empty line
		}
		for c := 0; c < n; c++ {
			if c > 0 {
				b.WriteByte(delim)
			}
			k := r.IntN(3)
			if r.Float64() < odd {
				k = r.IntN(len(cellSpellings))
			}
			b.WriteString(cellSpellings[k](r))
		}
		if r.Float64() < odd/10 {
			b.WriteByte('\r')
		}
		if i < rows-1 || r.IntN(2) == 0 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// TestParseBlockMatchesReference compares the fused chunk parser with
// cell-by-cell parsing on numeric chunks, unusual spellings, wrong field
// counts, empty lines, CRLF and a last line without a newline.
func TestParseBlockMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 3000; i++ {
		ncols := 1 + rng.IntN(6)
		odd := []float64{0, 0.001, 0.05, 0.5}[i%4]
		delim := byte(',')
		if i%7 == 0 {
			delim = '\t'
		}
		checkBlock(t, randomChunk(rng, 1+rng.IntN(60), ncols, odd, delim), ncols, delim)
	}
	for _, s := range []string{"1,2\n", "1,2", "1,2\r\n", "1,2\n\n", "\n", "", "1\n", "1,2,3\n", ",\n", "-,1\n", "1.5,-2.25\r\n3,4",
		"12345678,1\n", "1234567,1234567\n", "-1234567,-.123456\n", "0.1234567,1\n", ".,1\n", "1,2\r\r\n", "1\r,2\n"} {
		for _, pad := range []string{"", strings.Repeat("0.5,0.25\n", 3)} {
			checkBlock(t, []byte(pad+s), 2, ',')
		}
	}
}

func FuzzParseBlock(f *testing.F) {
	for _, s := range []string{"1,2\n3,4\n", "-1.5,NA\r\n,7\n", "1e5,2\n", "a,b\n", "1,2", ".5,-.25\n"} {
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, s string, n uint8) {
		ncols := int(n%8) + 1
		checkBlock(t, []byte(s), ncols, ',')
		// The fast path leaves the last 16 to 80 bytes to the general
		// one: valid lines after s put s in its reach.
		line := strings.Repeat("-1.25,", ncols-1) + "7\n"
		checkBlock(t, []byte(s+strings.Repeat(line, 100/len(line)+2)), ncols, ',')
	})
}

func BenchmarkParseBlock(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	for buf.Len() < parChunk {
		for j := 0; j < 19; j++ {
			if rng.IntN(200) != 0 {
				buf.WriteString(strconv.FormatFloat(rng.NormFloat64()*10+float64(j), 'f', 4, 64))
			}
			buf.WriteByte(',')
		}
		buf.WriteString(strconv.Itoa(rng.IntN(5)))
		buf.WriteByte('\n')
	}
	data := buf.Bytes()
	var dst []float32
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		blk := parseBlock(data, 20, ',', dst)
		if blk == nil {
			b.Fatal("not numeric")
		}
		dst = blk.Vals
	}
}

// TestToFloat32 checks the division-free conversion against float32 of the
// correctly rounded float64 quotient, on random values and on values next to
// float32 rounding midpoints (where the exact division must decide).
func TestToFloat32(t *testing.T) {
	check := func(mant uint64, frac uint) {
		want := float32(float64(mant) / pow10[frac])
		for _, neg := range []uint{0, 1} {
			w := want
			if neg == 1 {
				w = -want
			}
			if got := toFloat32(mant, frac+16*neg); math.Float32bits(got) != math.Float32bits(w) {
				t.Fatalf("toFloat32(%d, %d, sign %d) = %v, want %v", mant, frac, neg, got, w)
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 2_000_000; i++ {
		check(rng.Uint64N(100_000_000), uint(rng.IntN(9)))
	}
	// Decimals closest to float32 midpoints: m = (2k+1) * 2^(e-1) exactly
	// between two float32 values, and the decimals around it.
	for i := 0; i < 200_000; i++ {
		frac := uint(rng.IntN(9))
		f := float32(rng.Float64() * 1e7 / pow10[frac])
		next := math.Nextafter32(f, float32(math.Inf(1)))
		mid := (float64(f) + float64(next)) / 2
		m := uint64(mid * pow10[frac])
		for d := uint64(0); d < 3; d++ {
			if m+d >= 1 && m+d < 100_000_000 {
				check(m+d-1, frac)
			}
		}
	}
	for mant := uint64(0); mant < 1_000_000; mant++ { // every short decimal
		check(mant, uint(mant%9))
	}
	// Integers from 2^24 on are the decimals that fall exactly on float32
	// midpoints (16777217 lies between 16777216 and 16777218).
	for mant := uint64(1 << 24); mant < 1<<24+200_000; mant++ {
		check(mant, 0)
	}
	for i := 0; i < 200_000; i++ {
		check(1<<24+rng.Uint64N(100_000_000-1<<24), 0)
	}
}
