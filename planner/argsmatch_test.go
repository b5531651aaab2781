package planner

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
	"github.com/zclconf/go-cty/cty"
)

func TestEqualIgnoringSpace(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{`{ "a" : [1, 2] }`, `{"a":[1,2]}`, true},
		{"{\n  \"a\": \"x y\"\n}", `{"a":"x y"}`, true},
		{`{"a":"x y"}`, `{"a":"xy"}`, false},
		{`"a\" b"`, `"a\" b"`, true},
		{`"a\\" `, `"a\\"`, true},
		{`[1,2]`, `[1,2,3]`, false},
		{`[1,2,3]`, `[1,2]`, false},
		{``, ``, true},
	}
	for _, c := range cases {
		if got := equalIgnoringSpace([]byte(c.a), []byte(c.b)); got != c.want {
			t.Errorf("equalIgnoringSpace(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

// TestArgsMatchState: a dataset's arguments match the state written from
// them (indented as the state file holds it), and any changed argument
// does not.
func TestArgsMatchState(t *testing.T) {
	schema := lang.Schemas()["dataset"]
	cfgType, stateType := schema.ConfigType(), schema.StateType()
	base := map[string]cty.Value{}
	for name, aty := range cfgType.AttributeTypes() {
		base[name] = cty.NullVal(aty)
	}
	inline := cty.ObjectVal(map[string]cty.Value{
		"x": cty.TupleVal([]cty.Value{cty.NumberIntVal(1), cty.MustParseNumberVal("2.5"), cty.StringVal("<a & b>")}),
		"y": cty.TupleVal([]cty.Value{cty.True, cty.NullVal(cty.String), cty.StringVal("é \"q\"")}),
	})
	src := map[string]cty.Value{}
	for name, aty := range cfgType.AttributeType("source").AttributeTypes() {
		src[name] = cty.NullVal(aty)
	}
	src["inline"] = inline
	base["source"] = cty.ObjectVal(src)
	base["label"] = cty.StringVal("y")
	cfg := cty.ObjectVal(base)

	stored := func(c cty.Value) *state.Resource {
		attrs := map[string]cty.Value{}
		for name, aty := range stateType.AttributeTypes() {
			attrs[name] = cty.NullVal(aty)
		}
		for name := range cfgType.AttributeTypes() {
			attrs[name] = c.GetAttr(name)
		}
		attrs["id"] = cty.StringVal("dataset.a")
		attrs["digest"] = cty.StringVal("sha256:00")
		b, _, err := encodeInstance(cty.ObjectVal(attrs), stateType)
		if err != nil {
			t.Fatal(err)
		}
		var ind bytes.Buffer
		json.Indent(&ind, b, "    ", "  ")
		return &state.Resource{Address: "dataset.a", Kind: "dataset", Attributes: ind.Bytes()}
	}
	if !argsMatchState(&ctyEncoder{}, cfg, cfgType, stored(cfg)) {
		t.Fatal("arguments do not match the state written from them")
	}
	with := func(name string, v cty.Value) cty.Value {
		m := cfg.AsValueMap()
		m[name] = v
		return cty.ObjectVal(m)
	}
	changed := map[string]cty.Value{
		"label changed": with("label", cty.StringVal("x")),
		"label unset":   with("label", cty.NullVal(cty.String)),
		"inline changed": with("source", cty.ObjectVal(func() map[string]cty.Value {
			m := cfg.GetAttr("source").AsValueMap()
			m["inline"] = cty.ObjectVal(map[string]cty.Value{"x": cty.TupleVal([]cty.Value{cty.NumberIntVal(1)})})
			return m
		}())),
	}
	for name, c := range changed {
		if argsMatchState(&ctyEncoder{}, c, cfgType, stored(cfg)) {
			t.Errorf("%s: still matches the state", name)
		}
		if !argsMatchState(&ctyEncoder{}, c, cfgType, stored(c)) {
			t.Errorf("%s: does not match its own state", name)
		}
	}
	// A state written by another schema (an argument missing) is not shown.
	r := stored(cfg)
	r.Attributes = bytes.Replace(r.Attributes, []byte(`"label"`), []byte(`"labelx"`), 1)
	if argsMatchState(&ctyEncoder{}, cfg, cfgType, r) {
		t.Error("matches a state without the label argument")
	}
}

// FuzzEqualIgnoringSpace: a JSON text equals its compact form, and two texts
// are equal ignoring space exactly when their compact forms are the same.
func FuzzEqualIgnoringSpace(f *testing.F) {
	f.Add(`{ "a" : [1, 2], "b": "x y" }`, `{"a":[1,2],"b":"x y"}`)
	f.Add(`["a\" b", "\\"]`, `["a\" b","\\"]`)
	f.Add("{\n  \"k\": {\"v\": null}\n}", `{"k":{"v":0}}`)
	f.Fuzz(func(t *testing.T, a, b string) {
		var ca, cb bytes.Buffer
		if json.Compact(&ca, []byte(a)) != nil {
			return
		}
		if !equalIgnoringSpace([]byte(a), ca.Bytes()) {
			t.Fatalf("%q does not equal its compact form %q", a, ca.Bytes())
		}
		if json.Compact(&cb, []byte(b)) != nil {
			return
		}
		if got, want := equalIgnoringSpace([]byte(a), cb.Bytes()), bytes.Equal(ca.Bytes(), cb.Bytes()); got != want {
			t.Fatalf("equalIgnoringSpace(%q, %q) = %v, compact forms equal: %v", a, cb.Bytes(), got, want)
		}
	})
}

// FuzzTopMembers: the members topMembers finds are those encoding/json finds.
func FuzzTopMembers(f *testing.F) {
	f.Add(`{"a": 1, "b": {"c": [1, "x"]}, "d": null}`)
	f.Add(`{}`)
	f.Add(`{"a":"\u00e9"}`)
	f.Fuzz(func(t *testing.T, doc string) {
		got, ok := topMembers([]byte(doc))
		var want map[string]json.RawMessage
		if json.Unmarshal([]byte(doc), &want) != nil || want == nil {
			return // topMembers may accept or refuse what encoding/json refuses
		}
		if !ok {
			return // refusing is always safe: the caller takes the full path
		}
		if len(got) != len(want) {
			t.Fatalf("%d members, encoding/json finds %d", len(got), len(want))
		}
		for k, w := range want {
			var cg, cw bytes.Buffer
			json.Compact(&cg, got[k])
			json.Compact(&cw, w)
			if !bytes.Equal(cg.Bytes(), cw.Bytes()) {
				t.Fatalf("member %q: %s, encoding/json: %s", k, got[k], w)
			}
		}
	})
}
