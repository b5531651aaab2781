package source

import (
	"math"
	"strconv"
	"testing"
)

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0", 0, true}, {"-0.5", -0.5, true}, {"+3", 3, true}, {"1e3", 1000, true}, {"1.5E-2", 0.015, true},
		{" 42 ", 42, true}, {"0.1", 0.1, true}, {"123456789012345678901234", 1.2345678901234568e23, true},
		{"1e400", 0, false}, {"abc", 0, false}, {"1.2.3", 0, false}, {"", 0, false}, {"-", 0, false},
		{"1e", 0, false}, {".5", 0.5, true}, {"5.", 5, true}, {"Inf", 0, false}, {"NaN", 0, false},
		{"0x10", 0, false}, {"1_000", 0, false}, {"00012", 12, true}, {"4.9e-324", 5e-324, true},
	} {
		got, ok := ParseNumber([]byte(tc.in))
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("ParseNumber(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseNumber checks the fast path against strconv on every input both accept.
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"1", "-2.5", "3e10", "0.000001", "123456789.123456789", "9007199254740993", "1e-22", "1e23"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseNumber([]byte(s))
		if !ok {
			return
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			want, err = strconv.ParseFloat(trimSpaceTab(s), 64)
		}
		if err != nil && !math.IsInf(want, 0) {
			if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
				t.Fatalf("ParseNumber(%q) = %v but strconv rejects it: %v", s, got, err)
			}
		}
		if got != want {
			t.Fatalf("ParseNumber(%q) = %v, strconv says %v", s, got, want)
		}
	})
}

func trimSpaceTab(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
