// Package suggest finds the name a user probably meant, for "did you mean"
// hints in errors.
package suggest

import (
	"strings"

	"github.com/agext/levenshtein"
)

// Closest returns the option nearest to name (case-insensitive edit
// distance), or "" when none is near enough to be a likely typo: at most a
// third of the longer name's letters differ, and at least one letter matches.
func Closest(name string, options []string) string {
	best, bestD := "", 0
	lower := strings.ToLower(name)
	for _, o := range options {
		d := levenshtein.Distance(lower, strings.ToLower(o), nil)
		n := max(len(lower), len(o))
		if d*3 > n || d >= n {
			continue
		}
		if best == "" || d < bestD {
			best, bestD = o, d
		}
	}
	return best
}

// Hint is Closest as a sentence to append to a message ("; did you mean
// "x"?"), or "".
func Hint(name string, options []string) string {
	if c := Closest(name, options); c != "" {
		return "; did you mean \"" + c + "\"?"
	}
	return ""
}
