package state

import (
	"encoding/json"
	"fmt"
	"testing"
)

func res(addr, status string) *Resource {
	return &Resource{Address: addr, Kind: "dataset", Status: status, Attributes: json.RawMessage(`{}`)}
}

// addresses lists the state's resources as address=status, checking that no
// address appears twice.
func addresses(t *testing.T, s *State) string {
	t.Helper()
	seen := map[string]bool{}
	out := ""
	for _, r := range s.Resources {
		if seen[r.Address] {
			t.Fatalf("%s appears twice", r.Address)
		}
		seen[r.Address] = true
		out += r.Address + "=" + r.Status + " "
	}
	return out
}

func TestPutKeepsOneResourcePerAddress(t *testing.T) {
	s := New("v")
	steps := []struct {
		name string
		do   func(*State)
		want string
	}{
		{"append", func(s *State) { s.Put(res("a", "ready")); s.Put(res("b", "ready")) }, "a=ready b=ready "},
		{"replace", func(s *State) { s.Put(res("a", "tainted")) }, "a=tainted b=ready "},
		{"after Remove", func(s *State) { s.Remove("a"); s.Put(res("b", "running")); s.Put(res("a", "ready")) }, "b=running a=ready "},
		{"after a direct append", func(s *State) {
			s.Resources = append(s.Resources, res("c", "ready"))
			s.Put(res("c", "tainted"))
		}, "b=running a=ready c=tainted "},
		{"after a new slice", func(s *State) {
			s.Resources = []*Resource{res("c", "ready"), res("a", "ready")}
			s.Put(res("a", "tainted"))
		}, "c=ready a=tainted "},
		{"after an in-place replacement", func(s *State) {
			s.Resources[0] = res("d", "ready")
			s.Put(res("c", "ready"))
			s.Put(res("d", "tainted"))
		}, "d=tainted a=tainted c=ready "},
	}
	for _, st := range steps {
		st.do(s)
		if got := addresses(t, s); got != st.want {
			t.Fatalf("%s: got %q, want %q", st.name, got, st.want)
		}
	}
}

func TestPutOnCloneLeavesOriginal(t *testing.T) {
	s := New("v")
	for i := 0; i < 10; i++ {
		s.Put(res(fmt.Sprintf("r%d", i), "ready"))
	}
	c := s.Clone()
	c.Put(res("r3", "tainted"))
	c.Put(res("new", "ready"))
	s.Put(res("r4", "tainted"))
	if s.Find("r3").Status != "ready" || s.Find("new") != nil || s.Find("r4").Status != "tainted" {
		t.Errorf("original changed by its clone: %s", addresses(t, s))
	}
	if c.Find("r3").Status != "tainted" || c.Find("new") == nil || c.Find("r4").Status != "ready" {
		t.Errorf("clone changed by its original: %s", addresses(t, c))
	}
}
