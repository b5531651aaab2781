package ui

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/leptonml/lepton/internal/state"
)

// bigState is n datasets and n trainings, each training on its dataset.
func bigState(n int) *state.State {
	st := state.New("bench")
	for i := 0; i < n; i++ {
		st.Resources = append(st.Resources,
			&state.Resource{Address: fmt.Sprintf("dataset.d[%d]", i), Kind: "dataset", Name: "d", Index: i, Provider: "local", Status: state.StatusReady,
				Attributes: json.RawMessage(fmt.Sprintf(`{"digest":"sha256:%064d","rows":100,"dropped_rows":0,"columns":["x"],"schema":{"x":"number"}}`, i))},
			&state.Resource{Address: fmt.Sprintf("training.t[%d]", i), Kind: "training", Name: "t", Index: i, Provider: "local", Status: state.StatusReady,
				Attributes: json.RawMessage(`{"status":"succeeded","epochs_completed":3,"metrics":{"train_loss":0.5}}`), Dependencies: []string{"dataset.d"}})
	}
	return st
}

// BenchmarkGraph10k is the server's part of the first render of a
// 10,000-resource state: reading the state file and answering /api/graph
// (cmd/lepton's TestUIFirstRender10k measures it in the browser).
func BenchmarkGraph10k(b *testing.B) {
	s, _ := newTestServer(&testing.T{}, bigState(5000))
	b.ReportAllocs()
	for b.Loop() {
		s.stateMu.Lock()
		s.cached = nil // a changed state: parse and lay out again
		s.stateMu.Unlock()
		w := get(s, "/api/graph", bearer)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
		b.SetBytes(int64(w.Body.Len()))
	}
}

func TestGraph10kEveryNode(t *testing.T) {
	g := BuildGraph(bigState(5000))
	if len(g.Nodes) != 10000 {
		t.Fatalf("%d nodes", len(g.Nodes))
	}
	seen := map[[2]int]string{}
	for _, n := range g.Nodes {
		k := [2]int{n.X, n.Y}
		if other, ok := seen[k]; ok {
			t.Fatalf("%s and %s share a place", n.Address, other)
		}
		seen[k] = n.Address
		if n.Kind == "training" && len(n.Deps) != 1 {
			t.Fatalf("%s has edges %v", n.Address, n.Deps)
		}
	}
}
