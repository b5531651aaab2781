package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

func encoderState() *State {
	s := New("test")
	s.Serial = 7
	s.Outputs["rows"] = Output{Value: json.RawMessage(`[1, 2,  3]`), Type: json.RawMessage(`["list","number"]`)}
	s.Outputs["token"] = Output{Value: json.RawMessage(`"<&>"`), Type: json.RawMessage(`"string"`), Sensitive: true}
	s.Resources = []*Resource{
		{Address: "dataset.b", Kind: "dataset", Name: "b", Provider: "local", Status: StatusReady,
			Attributes:   json.RawMessage(`{"digest":"sha256:ab","stats":{"x":{"mean":0.8164966,"count":3}},"columns":["x","y"],"empty":{},"none":[]}`),
			Dependencies: []string{"dataset.a"}},
		{Address: "dataset.a", Kind: "dataset", Name: "a", Provider: "local", Status: StatusReady,
			Attributes: json.RawMessage(`{"source":{"inline":{"x":[1,2,3]}},"label":"<b>&\u2028</b>","id":"dataset.a"}`)},
		{Address: `endpoint.e["k"]`, Kind: "endpoint", Name: "e", Index: "k", Provider: "local", Status: StatusTainted,
			Attributes:          json.RawMessage(`{"token":"secret","url":null}`),
			SensitiveAttributes: [][]any{{"token"}, {"metrics", "x", 1.0}}},
		{Address: "cluster.c[0]", Kind: "cluster", Name: "c", Index: 0, Provider: "aws", Status: StatusRunning,
			Attributes: json.RawMessage(`{}`)},
		{Address: "cluster.c[1]", Kind: "cluster", Name: "c", Index: 1.0, Provider: "aws", Status: StatusRunning,
			Attributes: json.RawMessage(` { "a" : [ ] } `)},
	}
	return s
}

// checkEncoder compares the Encoder's output with State.Encode, the reference.
func checkEncoder(t *testing.T, e *Encoder, s *State, step string) {
	t.Helper()
	want, err := s.Encode()
	if err != nil {
		t.Fatalf("%s: reference: %v", step, err)
	}
	got, err := e.Encode(s)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: encoder output differs from State.Encode\n--- got\n%s\n--- want\n%s", step, got, want)
	}
	reused, err := e.EncodeReuse(s)
	if err != nil {
		t.Fatalf("%s: reusing the buffer: %v", step, err)
	}
	if !bytes.Equal(reused, want) {
		t.Fatalf("%s: EncodeReuse output differs from State.Encode\n--- got\n%s\n--- want\n%s", step, reused, want)
	}
}

func TestEncoderMatchesEncode(t *testing.T) {
	var e Encoder
	checkEncoder(t, &e, New("v"), "empty state")
	empty := New("v")
	empty.Outputs = nil
	checkEncoder(t, &e, empty, "nil outputs")

	s := encoderState()
	steps := []struct {
		name   string
		change func(*State)
	}{
		{"first render", func(*State) {}},
		{"unchanged, from the cache", func(*State) {}},
		{"resource replaced", func(s *State) {
			r := *s.Resources[0]
			r.Attributes = json.RawMessage(`{"digest":"sha256:cd"}`)
			s.Resources[0] = &r
		}},
		{"status changed in place", func(s *State) { s.Resources[1].Status = StatusTainted }},
		{"attributes replaced in place", func(s *State) { s.Resources[1].Attributes = json.RawMessage(`{"id":"dataset.a"}`) }},
		{"index changed in place", func(s *State) { s.Resources[3].Index = 2 }},
		{"dependencies appended", func(s *State) {
			s.Resources[0].Dependencies = append(s.Resources[0].Dependencies, "cluster.c")
		}},
		{"sensitive paths dropped", func(s *State) { s.Resources[2].SensitiveAttributes = nil }},
		{"resource removed", func(s *State) { s.Remove("dataset.a") }},
		{"resource added", func(s *State) {
			s.Resources = append(s.Resources, &Resource{Address: "dataset.0", Kind: "dataset", Name: "0", Status: StatusReady, Attributes: json.RawMessage(`null`)})
		}},
		{"outputs and serial changed", func(s *State) {
			s.Serial++
			s.Outputs = map[string]Output{}
		}},
		{"everything removed", func(s *State) { s.Resources = nil }},
	}
	for _, st := range steps {
		st.change(s)
		checkEncoder(t, &e, s, st.name)
	}
}

func TestEncoderRejectsInvalidAttributes(t *testing.T) {
	s := New("v")
	s.Resources = []*Resource{{Address: "dataset.a", Kind: "dataset", Attributes: json.RawMessage(`{"a":`)}}
	var e Encoder
	if _, err := e.Encode(s); err == nil {
		t.Fatal("invalid attributes JSON was encoded without an error")
	}
}

// TestEncoderManyWrites follows the Persister's pattern: resources replaced
// and added one by one, the state encoded after each change.
func TestEncoderManyWrites(t *testing.T) {
	s := New("v")
	var e Encoder
	for i := 0; i < 60; i++ {
		r := &Resource{Address: fmt.Sprintf("dataset.d%02d", (i*7)%40), Kind: "dataset", Name: "d", Status: StatusReady,
			Attributes: json.RawMessage(fmt.Sprintf(`{"n":%d,"m":{"a":[%d]}}`, i, i))}
		replaced := false
		for j, old := range s.Resources {
			if old.Address == r.Address {
				s.Resources[j], replaced = r, true
			}
		}
		if !replaced {
			s.Resources = append(s.Resources, r)
		}
		checkEncoder(t, &e, s, fmt.Sprintf("write %d", i))
	}
}

func FuzzEncoder(f *testing.F) {
	f.Add("dataset.a", `{"x":[1,2,{"y":null}]}`, "local")
	f.Add("a\u2028<b>", `"s"`, "")
	f.Fuzz(func(t *testing.T, addr, attrs, provider string) {
		if !json.Valid([]byte(attrs)) {
			return
		}
		s := New("v")
		s.Resources = []*Resource{
			{Address: addr, Kind: "dataset", Provider: provider, Attributes: json.RawMessage(attrs), Index: addr},
			{Address: addr + "x", Kind: "dataset", Attributes: json.RawMessage(`{}`), Dependencies: []string{addr}},
		}
		var e Encoder
		checkEncoder(t, &e, s, "first")
		s.Resources[0].Provider += "p"
		checkEncoder(t, &e, s, "second")
	})
}
