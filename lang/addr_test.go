package lang

import (
	"reflect"
	"testing"
)

// slowParseInstance is ParseInstance without its fast path.
func slowParseInstance(s string) (Instance, error) {
	t, err := ParseTarget(s)
	if err != nil {
		return Instance{}, err
	}
	return t.Resource.Instance(t.Key), nil
}

func checkParseInstance(t *testing.T, s string) {
	t.Helper()
	got, gerr := ParseInstance(s)
	want, werr := slowParseInstance(s)
	if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseInstance(%q) = %#v, %v; the traversal parser gives %#v, %v", s, got, gerr, want, werr)
	}
}

func TestParseInstanceFastPath(t *testing.T) {
	for _, s := range []string{
		"dataset.a", "dataset.d00001", "endpoint.a_b-c", "dataset.1a", "dataset.a.b", "nokind.a",
		"dataset.", ".a", "dataset", "dataset.é", "dataset.a ", " dataset.a", "dataset.a[0]",
		`dataset.a["k"]`, "dataset.-a", "training.x", "batch_inference.y", "cluster.z", "dataset.a\n",
	} {
		checkParseInstance(t, s)
	}
}

func FuzzParseInstance(f *testing.F) {
	for _, s := range []string{"dataset.a", "dataset.a[1]", "dataset.é", "x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkParseInstance(t, s) })
}
