package multicloud_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leptonml/lepton/providers/catalog"
	"github.com/leptonml/lepton/providers/gcp"
	"github.com/leptonml/lepton/providers/gcp/gcpfake"
)

const gcpConfig = `
provider "gcp" {
  project  = "lepton-test"
  region   = "us-central1"
  endpoint = %q
}
cluster "gpu" {
  gpu     = "L4"
  regions = ["us-central1"]
  nodes   = 2
}
output "placement" {
  value = "${cluster.gpu.cloud} ${cluster.gpu.zone} ${cluster.gpu.instance_type}"
}
`

// The cluster's life on GCP through the binary and the Compute Engine fake:
// failover from an
// exhausted zone, a lost insert answer retried without a second instance,
// refresh, drift, destroy.
func TestClusterLifeOnGCPFake(t *testing.T) {
	gce := gcpfake.New()
	defer gce.Close()
	gce.AddImageFamily(gcp.DefaultImageProject, gcp.DefaultImageFamily, "common-cu128-ubuntu-2204-nvidia-570-v20261101")
	gce.SetBootReads(0)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(fmt.Sprintf(gcpConfig, gce.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	ch, err := catalog.Choose(catalog.Default(), catalog.Filter{GPU: "L4", Clouds: []string{"gcp"}, Regions: []string{"us-central1"}, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Failing the cheapest zone fails every offer in it; the cluster lands on
	// the first offer in another zone.
	best, next := ch.Best, ch.Best
	for _, f := range ch.Fallbacks {
		if f.Zone != best.Zone {
			next = f
			break
		}
	}
	if next.Zone == best.Zone {
		t.Fatalf("the test needs a fallback in another zone: %s", ch.Summary())
	}
	running := func() (n int, zones map[string]int) {
		zones = map[string]int{}
		for _, in := range gce.Instances() {
			if in.Status == "RUNNING" {
				n++
				zones[in.Zone]++
			}
		}
		return n, zones
	}

	// A loopback endpoint needs no Google credentials (providers/gcp).
	env := offlineEnv(t)
	if out := must(t, env, dir, "plan"); !strings.Contains(out, "# offer: "+best.String()) {
		t.Fatalf("plan:\n%s", out)
	}
	gce.FailZone(best.Zone, gcpfake.ZoneExhausted)
	gce.DropResponses(gcpfake.CallInsert, 1)
	out := must(t, env, dir, "apply", "-auto-approve")
	if want := fmt.Sprintf("capacity error in %s (ZONE_RESOURCE_POOL_EXHAUSTED); trying gcp %s", best.Zone, ch.Fallbacks[0].Zone); !strings.Contains(out, want) {
		t.Errorf("apply output lacks %q:\n%s", want, out)
	}
	if n, zones := running(); n != 2 || zones[next.Zone] != 2 || len(gce.Instances()) != 2 {
		t.Fatalf("%d running (%v) of %d instances, want exactly 2 in %s:\n%s", n, zones, len(gce.Instances()), next.Zone, out)
	}
	if got, want := strings.TrimSpace(must(t, env, dir, "output", "-raw", "placement")), "gcp "+next.Zone+" "+next.InstanceType; got != want {
		t.Errorf("placement %q, want %q", got, want)
	}
	if out := must(t, env, dir, "plan"); !strings.Contains(out, "No changes.") || strings.Contains(out, "Warning") {
		t.Errorf("plan after apply (orphans looked for, none found):\n%s", out)
	}

	// Every node deleted outside lepton: the refreshed state drops the
	// cluster and the plan creates it again.
	for _, in := range gce.Instances() {
		gce.DeleteOutOfBand("lepton-test", in.Zone, in.Name)
	}
	out = must(t, env, dir, "plan")
	for _, want := range []string{"Objects have changed outside of lepton", "cluster.gpu will be created"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan after drift lacks %q:\n%s", want, out)
		}
	}
	must(t, env, dir, "apply", "-auto-approve")
	if n, _ := running(); n != 2 {
		t.Fatalf("%d running after re-creation, want 2", n)
	}
	must(t, env, dir, "destroy", "-auto-approve")
	if n, _ := running(); n != 0 {
		t.Fatalf("%d running after destroy", n)
	}
}
