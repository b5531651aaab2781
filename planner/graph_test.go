package planner

import (
	"strings"
	"testing"
)

func TestGraphCycle(t *testing.T) {
	cases := []struct {
		name  string
		nodes []string
		edges [][2]int // from refers to to
		want  string   // the cycle in reference order, "" for none
	}{
		{"none", []string{"a", "b", "c"}, [][2]int{{0, 1}, {1, 2}, {0, 2}}, ""},
		{"two", []string{"dataset.p", "dataset.q"}, [][2]int{{0, 1}, {1, 0}}, "dataset.p -> dataset.q -> dataset.p"},
		{"three through a local", []string{"dataset.q", "local.l", "dataset.p"}, [][2]int{{0, 1}, {1, 2}, {2, 0}}, "dataset.q -> local.l -> dataset.p -> dataset.q"},
		{"behind a chain", []string{"out", "a", "b", "c"}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 2}}, "b -> c -> b"},
	}
	for _, c := range cases {
		g := &graph{}
		for _, n := range c.nodes {
			g.add(n)
		}
		for _, e := range c.edges {
			g.edge(e[0], e[1])
		}
		got := strings.Join(g.cycle(), " -> ")
		if got != c.want {
			t.Errorf("%s: cycle %q, want %q", c.name, got, c.want)
		}
	}
	// A long chain does not overflow the stack.
	g := &graph{}
	for i := range 200000 {
		g.add("n")
		if i > 0 {
			g.edge(i, i-1)
		}
	}
	if c := g.cycle(); c != nil {
		t.Errorf("cycle in a chain: %v", c[:3])
	}
}
