package ctyval

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

func TestEqualAgreesWithCty(t *testing.T) {
	fromJSON := func(s string) cty.Value {
		v, err := ctyjson.Unmarshal([]byte(s), cty.Number)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	obj := func(m map[string]cty.Value) cty.Value { return cty.ObjectVal(m) }
	stats := func(mean cty.Value) cty.Value {
		return cty.MapVal(map[string]cty.Value{"x": cty.MapVal(map[string]cty.Value{"mean": mean, "count": cty.NumberIntVal(3)})})
	}
	cases := []struct {
		name string
		a, b cty.Value
		want bool // what valuesEqual must say
	}{
		{"same strings", cty.StringVal("a"), cty.StringVal("a"), true},
		{"different strings", cty.StringVal("a"), cty.StringVal("b"), false},
		{"bools", cty.True, cty.False, false},
		{"512-bit numbers from state", fromJSON("0.8164966"), fromJSON("0.8164966"), true},
		{"different numbers", fromJSON("0.8164966"), fromJSON("0.8164967"), false},
		{"same decimal, different precision", cty.NumberFloatVal(0.1), fromJSON("0.1"), true},
		{"integers", cty.NumberIntVal(3), cty.NumberVal(big.NewFloat(3)), true},
		{"zero signs", cty.NumberFloatVal(0), cty.NumberFloatVal(-0.0), true},
		{"nested maps equal", stats(fromJSON("1.5")), stats(cty.NumberFloatVal(1.5)), true},
		{"nested maps differ", stats(fromJSON("1.5")), stats(cty.NumberFloatVal(1.25)), false},
		{"map keys differ", cty.MapVal(map[string]cty.Value{"a": cty.True}), cty.MapVal(map[string]cty.Value{"b": cty.True}), false},
		{"list lengths", cty.ListVal([]cty.Value{cty.True}), cty.ListVal([]cty.Value{cty.True, cty.True}), false},
		{"tuples", cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.NumberIntVal(1)}), cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.NumberIntVal(1)}), true},
		{"nested null equal", obj(map[string]cty.Value{"a": cty.NullVal(cty.String)}), obj(map[string]cty.Value{"a": cty.NullVal(cty.String)}), true},
		{"nested null differs", obj(map[string]cty.Value{"a": cty.NullVal(cty.String)}), obj(map[string]cty.Value{"a": cty.StringVal("")}), false},
		{"object types differ", obj(map[string]cty.Value{"a": cty.True}), obj(map[string]cty.Value{"b": cty.True}), false},
		{"sets go to Equals", cty.SetVal([]cty.Value{cty.StringVal("a")}), cty.SetVal([]cty.Value{cty.StringVal("a")}), true},
		{"unknown is not equal", obj(map[string]cty.Value{"a": cty.UnknownVal(cty.String)}), obj(map[string]cty.Value{"a": cty.StringVal("x")}), false},
		{"empty lists of different types", cty.ListValEmpty(cty.String), cty.ListValEmpty(cty.Number), false},
		{"empty lists", cty.ListValEmpty(cty.String), cty.ListValEmpty(cty.String), true},
		{"list and tuple", cty.ListVal([]cty.Value{cty.True}), cty.TupleVal([]cty.Value{cty.True}), false},
		{"string and number", cty.StringVal("1"), cty.NumberIntVal(1), false},
		{"extra attribute", obj(map[string]cty.Value{"a": cty.True}), obj(map[string]cty.Value{"a": cty.True, "b": cty.True}), false},
		{"deep marks ignored", cty.ListVal([]cty.Value{obj(map[string]cty.Value{"a": cty.StringVal("s").Mark("sensitive")})}), cty.ListVal([]cty.Value{obj(map[string]cty.Value{"a": cty.StringVal("s")})}), true},
		{"null and value", cty.NullVal(cty.String), cty.StringVal(""), false},
		{"marks ignored", obj(map[string]cty.Value{"a": cty.StringVal("s").Mark("sensitive")}), obj(map[string]cty.Value{"a": cty.StringVal("s")}), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Equal(c.a, c.b); got != c.want {
				t.Errorf("Equal = %v, want %v", got, c.want)
			}
			if got := Equal(c.b, c.a); got != c.want {
				t.Errorf("Equal reversed = %v, want %v", got, c.want)
			}
			// Where the shortcut says equal, cty agrees (or the numbers are
			// numerically identical, which cty may tell apart by precision).
			ua, _ := c.a.UnmarkDeep()
			ub, _ := c.b.UnmarkDeep()
			if eq, sure := fastEqual(ua, ub); sure {
				ceq := ua.Equals(ub)
				if ceq.IsKnown() && ceq.True() != eq {
					t.Errorf("fastEqual says %v for sure, cty says %#v", eq, ceq)
				}
			}
		})
	}
}

func TestChangedArgs(t *testing.T) {
	obj := func(m map[string]cty.Value) cty.Value { return cty.ObjectVal(m) }
	prior := obj(map[string]cty.Value{"a": cty.StringVal("x"), "b": cty.NumberIntVal(1), "port": cty.NumberIntVal(8080), "c": cty.NullVal(cty.String)})
	keepsPort := func(name string) bool { return name == "port" }
	names := []string{"a", "b", "c", "port"}
	cases := []struct {
		name string
		cfg  cty.Value
		want []string
	}{
		{"same", obj(map[string]cty.Value{"a": cty.StringVal("x"), "b": cty.NumberIntVal(1), "c": cty.NullVal(cty.String), "port": cty.NumberIntVal(8080)}), nil},
		{"computed argument unset", obj(map[string]cty.Value{"a": cty.StringVal("x"), "b": cty.NumberIntVal(1), "c": cty.NullVal(cty.String), "port": cty.NullVal(cty.Number)}), nil},
		{"computed argument set to another value", obj(map[string]cty.Value{"a": cty.StringVal("x"), "b": cty.NumberIntVal(1), "c": cty.NullVal(cty.String), "port": cty.NumberIntVal(9090)}), []string{"port"}},
		{"argument unset", obj(map[string]cty.Value{"a": cty.NullVal(cty.String), "b": cty.NumberIntVal(1), "c": cty.NullVal(cty.String), "port": cty.NullVal(cty.Number)}), []string{"a"}},
		{"argument set", obj(map[string]cty.Value{"a": cty.StringVal("x"), "b": cty.NumberIntVal(2), "c": cty.StringVal("new"), "port": cty.NullVal(cty.Number)}), []string{"b", "c"}},
		{"argument missing from cfg", obj(map[string]cty.Value{"b": cty.NumberIntVal(1)}), []string{"a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ChangedArgs(prior, c.cfg, names, keepsPort); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("ChangedArgs = %v, want %v", got, c.want)
			}
		})
	}
}
