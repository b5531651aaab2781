package planner

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/leptonml/lepton/lang"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// decodeTypes are the types the cty JSON decoder is compared on: every kind's
// state type and a few shapes they do not use.
func decodeTypes() []cty.Type {
	tys := []cty.Type{
		cty.String, cty.Number, cty.Bool, cty.DynamicPseudoType,
		cty.List(cty.Number), cty.Set(cty.String), cty.Map(cty.Map(cty.Number)),
		cty.Tuple([]cty.Type{cty.String, cty.Number}), cty.EmptyObject, cty.EmptyTuple,
		cty.Object(map[string]cty.Type{"a": cty.List(cty.DynamicPseudoType), "b": cty.Map(cty.Bool)}),
	}
	for _, k := range []string{"dataset", "cluster", "training", "batch_inference", "endpoint"} {
		tys = append(tys, lang.Schemas()[k].StateType())
	}
	return tys
}

// sameValue compares values and their JSON (which shows numbers' precision).
func sameValue(t *testing.T, got, want cty.Value) {
	t.Helper()
	if !got.RawEquals(want) {
		t.Fatalf("values differ:\n got %#v\nwant %#v", got, want)
	}
	gj, gerr := ctyjson.Marshal(got, cty.DynamicPseudoType)
	wj, werr := ctyjson.Marshal(want, cty.DynamicPseudoType)
	if string(gj) != string(wj) || (gerr == nil) != (werr == nil) {
		t.Fatalf("encodings differ:\n got %s (%v)\nwant %s (%v)", gj, gerr, wj, werr)
	}
}

func TestUnmarshalCtyMatchesCtyjson(t *testing.T) {
	dataset := lang.Schemas()["dataset"].StateType()
	cases := []struct {
		doc string
		ty  cty.Type
	}{
		{`{"id":"dataset.a","digest":"sha256:ab","rows":3,"dropped_rows":0,"columns":["x","y"],"classes":[],
		  "schema":{"x":"number"},"stats":{"x":{"count":3,"mean":0.8164966,"max":3,"min":-1e-7}},
		  "source":{"inline":{"value":{"x":[1,2,3],"y":["a","b",null]},"type":["object",{"x":["tuple",["number","number","number"]],"y":["tuple",["string","string","string"]]}]},"file":null},
		  "label":null,"features":null,"format":"","split":null,"preprocess":null}`, dataset},
		{`{"id":"x"}`, dataset},
		{` null `, dataset},
		{`{"unknown_attr":1}`, dataset},
		{`{"rows":"12"}`, dataset},
		{`{"label":12.50}`, dataset},
		{`{"label":true}`, dataset},
		{`{"split":{"stratify":"true"}}`, dataset},
		{`{"split":{"stratify":1}}`, dataset},
		{`"caf\u00e9 \ud83d\ude00 \"q\" \\ /"`, cty.String},
		{"\"raw \xff bytes\"", cty.String},
		{`"héllo"`, cty.String},
		{`-0`, cty.Number},
		{`-12`, cty.Number},
		{`123456789012345678901234567890`, cty.Number},
		{`1e400`, cty.Number},
		{`0.1`, cty.Number},
		{`01`, cty.Number},
		{`[1,2,]`, cty.List(cty.Number)},
		{`[]`, cty.List(cty.Number)},
		{`["a","a","b"]`, cty.Set(cty.String)},
		{`{"a":{"b":1},"a":{"c":2}}`, cty.Map(cty.Map(cty.Number))},
		{`["s",1]`, cty.Tuple([]cty.Type{cty.String, cty.Number})},
		{`["s",1,2]`, cty.Tuple([]cty.Type{cty.String, cty.Number})},
		{`["s"]`, cty.Tuple([]cty.Type{cty.String, cty.Number})},
		{`{"value":[1,"a"],"type":["tuple",["number","string"]]}`, cty.DynamicPseudoType},
		{`{"type":"string","value":"x"}`, cty.DynamicPseudoType},
		{`{"value":"x"}`, cty.DynamicPseudoType},
		{`{"value":"x","type":"string","extra":1}`, cty.DynamicPseudoType},
		{`{"value":{"value":1,"type":"number"},"type":"dynamic"}`, cty.DynamicPseudoType},
		{`{} trailing`, cty.EmptyObject},
		{`{"a":1`, cty.Map(cty.Number)},
	}
	for _, c := range cases {
		t.Run(c.doc, func(t *testing.T) {
			want, werr := ctyjson.Unmarshal([]byte(c.doc), c.ty)
			got, gerr := unmarshalCty([]byte(c.doc), c.ty, newTypeCache())
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("error %v, ctyjson's %v", gerr, werr)
			}
			if werr != nil {
				if gerr.Error() != werr.Error() {
					t.Fatalf("error %q, ctyjson's %q", gerr, werr)
				}
				return
			}
			sameValue(t, got, want)
		})
	}
}

// FuzzUnmarshalCty: wherever the fast decoder succeeds on its own, ctyjson
// gives the same value (on failure the fast decoder returns ctyjson's result).
func FuzzUnmarshalCty(f *testing.F) {
	f.Add(`{"id":"a","rows":3,"stats":{"x":{"mean":0.5}},"source":{"inline":{"value":{"x":[1]},"type":["object",{"x":["tuple",["number"]]}]}}}`, uint8(11))
	f.Add(`[1,2.5e3,-0.0]`, uint8(4))
	f.Add(`{"value":"x","type":"string"}`, uint8(3))
	f.Add(`"a\u0000b"`, uint8(0))
	tys := decodeTypes()
	f.Fuzz(func(t *testing.T, doc string, which uint8) {
		ty := tys[int(which)%len(tys)]
		d := ctyDecoder{b: []byte(doc), types: newTypeCache()}
		got, err := func() (v cty.Value, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			v, err = d.value(ty)
			if err == nil {
				if d.space(); d.i != len(d.b) {
					err = errSyntax
				}
			}
			return v, err
		}()
		if err != nil {
			return
		}
		want, werr := func() (v cty.Value, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			return ctyjson.Unmarshal([]byte(doc), ty)
		}()
		if werr != nil {
			t.Fatalf("fast decoder accepted %q as %s, ctyjson: %v", doc, ty.GoString(), werr)
		}
		sameValue(t, got, want)
	})
}

// sameJSON checks marshalCty against ctyjson.Marshal on v.
func sameJSON(t *testing.T, v cty.Value, ty cty.Type) {
	t.Helper()
	want, werr := ctyjson.Marshal(v, ty)
	got, ok, _ := marshalCty(v, ty)
	if !ok {
		return // left to ctyjson: nothing to compare
	}
	if werr != nil {
		t.Fatalf("marshalCty rendered %s, ctyjson fails: %v", got, werr)
	}
	if string(got) != string(want) {
		t.Fatalf("marshalCty rendered\n%s\nctyjson\n%s", got, want)
	}
}

func TestMarshalCtyMatchesCtyjson(t *testing.T) {
	floats := []float64{0, 1, -1, 0.1, 0.2 + 0.1, 1.0 / 3, 2.5e-7, 1e21, 1e22, 123456789.125, 5e-324, 1.7976931348623157e308, -2.2250738585072014e-308, 4503599627370497, 9007199254740993, 0.8164966, 1.666667}
	var nums []cty.Value
	for _, f := range floats {
		nums = append(nums, cty.NumberFloatVal(f), cty.NumberFloatVal(-f))
	}
	nums = append(nums, cty.NumberIntVal(3), cty.NumberIntVal(-1<<62), cty.MustParseNumberVal("123456789012345678901234567890"), cty.MustParseNumberVal("0.1"), cty.MustParseNumberVal("-0"), cty.NumberVal(new(big.Float).SetPrec(20).SetFloat64(0.1)))
	strs := []cty.Value{cty.StringVal(""), cty.StringVal("plain"), cty.StringVal(`<a href="x">&</a>`), cty.StringVal("tab\there\nnew \u2028 \x01"), cty.StringVal("héllo 😀"), cty.StringVal("\\ \" /")}
	values := []struct {
		v  cty.Value
		ty cty.Type
	}{
		{cty.NullVal(cty.String), cty.String},
		{cty.NullVal(cty.String), cty.DynamicPseudoType},
		{cty.NullVal(cty.DynamicPseudoType), cty.DynamicPseudoType},
		{cty.True, cty.Bool},
		{cty.ListVal(nums), cty.List(cty.Number)},
		{cty.TupleVal(strs), cty.Tuple([]cty.Type{cty.String, cty.String, cty.String, cty.String, cty.String, cty.String})},
		{cty.SetVal(strs), cty.Set(cty.String)},
		{cty.MapVal(map[string]cty.Value{"b": cty.NumberFloatVal(0.5), "a&<": cty.NumberIntVal(1)}), cty.Map(cty.Number)},
		{cty.ObjectVal(map[string]cty.Value{"z": cty.ListValEmpty(cty.String), "a": cty.TupleVal(nums[:4]), "m": cty.NullVal(cty.Map(cty.String))}), cty.DynamicPseudoType},
		{cty.ObjectVal(map[string]cty.Value{"x": cty.StringVal("s").Mark("sensitive")}), cty.Object(map[string]cty.Type{"x": cty.String})},
		{cty.ObjectVal(map[string]cty.Value{"x": cty.UnknownVal(cty.String)}), cty.Object(map[string]cty.Type{"x": cty.String})},
		{cty.StringVal("x"), cty.Number},
	}
	for _, s := range strs {
		values = append(values, struct {
			v  cty.Value
			ty cty.Type
		}{s, cty.String})
	}
	for _, n := range nums {
		values = append(values, struct {
			v  cty.Value
			ty cty.Type
		}{n, cty.Number})
	}
	for i, c := range values {
		t.Run(fmt.Sprint(i), func(t *testing.T) { sameJSON(t, c.v, c.ty) })
	}
	// Whole state documents, decoded as ctyjson does (512-bit numbers).
	for _, ty := range decodeTypes() {
		if v, err := ctyjson.Unmarshal([]byte(`null`), ty); err == nil {
			sameJSON(t, v, ty)
		}
	}
	dataset := lang.Schemas()["dataset"].StateType()
	doc := `{"id":"dataset.a","digest":"sha256:ab","rows":3,"dropped_rows":0,"columns":["x","y"],"classes":[],
		  "schema":{"x":"number"},"stats":{"x":{"count":3,"mean":0.8164966,"max":3,"min":-1e-7}},
		  "source":{"inline":{"value":{"x":[1,2,3],"y":["a","b",null]},"type":["object",{"x":["tuple",["number","number","number"]],"y":["tuple",["string","string","string"]]}]},"file":null},
		  "label":null,"features":null,"format":"","split":null,"preprocess":null}`
	v, err := ctyjson.Unmarshal([]byte(doc), dataset)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, v, dataset)
}

// FuzzMarshalCty: numbers from float64 and documents decoded by ctyjson
// render as ctyjson renders them.
func FuzzMarshalCty(f *testing.F) {
	f.Add(0.1, `{"x":[1,"a",null]}`, uint8(3))
	f.Add(-0.0, `{"value":{"a":1.5},"type":["object",{"a":"number"}]}`, uint8(3))
	f.Add(1e21, `["<&>",1e400]`, uint8(0))
	tys := decodeTypes()
	f.Fuzz(func(t *testing.T, x float64, doc string, which uint8) {
		if !math.IsInf(x, 0) && !math.IsNaN(x) {
			sameJSON(t, cty.NumberFloatVal(x), cty.Number)
		}
		ty := tys[int(which)%len(tys)]
		if v, err := ctyjson.Unmarshal([]byte(doc), ty); err == nil {
			sameJSON(t, v, ty)
		}
	})
}

// TestNumberFormatAgreesWithBig: the strconv shortcut gives big.Float's
// digits on many random float64s of every magnitude.
func TestNumberFormatAgreesWithBig(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		var x float64
		switch i % 3 {
		case 0:
			x = math.Float64frombits(rng.Uint64())
		case 1:
			x = rng.Float64() * math.Pow(10, float64(rng.IntN(40)-20))
		default:
			x = math.Round(rng.Float64()*1e7) / math.Pow(10, float64(rng.IntN(8)))
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		f := big.NewFloat(x)
		var e ctyEncoder
		e.number(f)
		if want := f.Text('f', -1); string(e.buf) != want {
			t.Fatalf("%v: %s, big.Float gives %s", x, e.buf, want)
		}
	}
}
