package catalog

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// `lepton offers -gpu A100:8` on the embedded catalog.
func TestRenderGolden(t *testing.T) {
	offers, err := List(Default(), Filter{GPU: "A100:8"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Render(&buf, offers); err != nil {
		t.Fatal(err)
	}
	golden(t, "offers_a100x8.txt", buf.Bytes())

	spot, err := List(Default(), Filter{GPU: "H100:8", Spot: true, Clouds: []string{"aws"}, Regions: []string{"us-east-1", "us-east-2"}})
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := Render(&buf, spot); err != nil {
		t.Fatal(err)
	}
	golden(t, "offers_h100x8_spot_aws.txt", buf.Bytes())

	buf.Reset()
	if err := Render(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "No GPU offers match.\n" {
		t.Fatalf("empty render = %q", buf.String())
	}
}

func TestRenderJSON(t *testing.T) {
	offers, err := List(Default(), Filter{GPU: "L4", Regions: []string{"us-central1"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := RenderJSON(&buf, offers); err != nil {
		t.Fatal(err)
	}
	golden(t, "offers_l4.json", buf.Bytes())

	// Exactly the fields of SPEC section 2, `lepton offers -json`.
	var objs []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &objs); err != nil || len(objs) == 0 {
		t.Fatalf("decode: %v (%d objects)", err, len(objs))
	}
	want := []string{"cloud", "instance_type", "gpu", "gpu_count", "gpu_memory_gb", "vcpus", "memory_gb", "region", "zone", "price_per_hour", "spot_price_per_hour", "source", "source_date"}
	sort.Strings(want)
	for _, o := range objs {
		var got []string
		for k := range o {
			got = append(got, k)
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("JSON fields %v, want %v", got, want)
		}
	}

	// No spot price is null; an empty list is [].
	noSpot, _ := List(Default(), Filter{InstanceType: "p5.48xlarge", Regions: []string{"eu-north-1"}, Clouds: []string{"aws"}})
	buf.Reset()
	if err := RenderJSON(&buf, noSpot[:1]); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(buf.Bytes(), &objs); err != nil || objs[0]["spot_price_per_hour"] != nil {
		t.Fatalf("offer without spot: %s", buf.String())
	}
	buf.Reset()
	if err := RenderJSON(&buf, nil); err != nil || buf.String() != "[]\n" {
		t.Fatalf("empty JSON = %q, %v", buf.String(), err)
	}
}
