package suggest

import "testing"

func TestClosest(t *testing.T) {
	opts := []string{"A100", "H100", "L4", "T4", "sepal_length", "target"}
	for _, c := range []struct{ in, want string }{
		{"A10", "A100"},
		{"h100", "H100"},
		{"targt", "target"},
		{"Z9000", ""},
		{"sepal_lenght", "sepal_length"},
		{"", ""},
		{"xyz", ""},
	} {
		if got := Closest(c.in, opts); got != c.want {
			t.Errorf("Closest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := Hint("targe", opts); got != `; did you mean "target"?` {
		t.Errorf("Hint = %q", got)
	}
}
