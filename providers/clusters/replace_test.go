package clusters

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/catalog"
	"github.com/leptonml/lepton/providers/cloud"
	"github.com/leptonml/lepton/providers/gcp/gcpfake"
	"github.com/zclconf/go-cty/cty"
)

// applyCluster creates a cluster from cfg on the fakes.
func applyCluster(ctx context.Context, t *testing.T, c *Cluster, env providers.Env, address string, cfg cty.Value) cty.Value {
	t.Helper()
	null := cty.NullVal(lang.Schemas()["cluster"].StateType())
	resp, err := c.Plan(ctx, providers.PlanRequest{Address: address, Prior: null, Config: cfg, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Apply(ctx, providers.ApplyRequest{Address: address, Prior: null, Planned: resp.Planned, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A lost node of a two-node cluster replaced as the cluster's node 1: the
// cluster's Read adopts it (no longer degraded), the plan keeps the cluster
// as it is, the orphan listing does not report it, replacing again with the
// same seed (an apply killed after the create) finds the same instance, and
// Delete deletes it.
func TestReplaceNodeAdoptedByRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newFakes(t)
	c := New(Options{Catalog: catalog.Default(), NewProvisioner: f.provisioner})
	defer c.Close()
	log := &logBuf{}
	env := providers.Env{Lineage: "lin-r", Providers: fakeClouds, Log: log.logf}
	cfg := config(map[string]cty.Value{"gpu": cty.StringVal("A100:8"), "nodes": cty.NumberIntVal(2), "clouds": strs("aws"), "spot": cty.True})
	v := applyCluster(ctx, t, c, env, "cluster.gpu", cfg)
	old := strList(v.GetAttr("node_ids"))

	f.ec2.Terminate(old[1]) // preempted
	got, err := c.Read(ctx, providers.ReadRequest{Address: "cluster.gpu", Current: v, Env: env})
	if err != nil || str(got.GetAttr("status")) != statusDegraded {
		t.Fatalf("read after the loss: %v %#v", err, got)
	}
	_, lost, ok := StateNode(v, 1)
	if !ok || lost.ID != old[1] {
		t.Fatalf("StateNode(1) = %v, %v", lost, ok)
	}

	n, offer, err := c.ReplaceNode(ctx, NodeReplacement{Address: "cluster.gpu", Current: v, Index: 1, Seed: "run-1/attempt-1", Env: env})
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(log.lines, "\n"))
	}
	if n.ID == "" || n.ID == old[1] || n.Index != 1 || offer.InstanceType != str(v.GetAttr("instance_type")) || offer.Zone != str(v.GetAttr("zone")) {
		t.Fatalf("replacement %+v on %s; cluster on %s %s", n, offer, str(v.GetAttr("instance_type")), str(v.GetAttr("zone")))
	}
	if f.ec2.Live() != 2 {
		t.Fatalf("EC2 has %d live instances, want 2", f.ec2.Live())
	}
	// Replaying the create (a killed apply) makes no second instance.
	again, _, err := c.ReplaceNode(ctx, NodeReplacement{Address: "cluster.gpu", Current: v, Index: 1, Seed: "run-1/attempt-1", Env: env})
	if err != nil || again.ID != n.ID || f.ec2.Live() != 2 {
		t.Fatalf("replayed replacement %+v (%v), %d live; first %s", again, err, f.ec2.Live(), n.ID)
	}

	// No orphan, even before the cluster's state names it.
	lines, err := c.FindOrphans(ctx, providers.OrphansRequest{Instances: map[string]cty.Value{"cluster.gpu": v}, Env: env})
	if err != nil || len(lines) != 0 {
		t.Fatalf("orphans %v, %v", lines, err)
	}
	got, err = c.Read(ctx, providers.ReadRequest{Address: "cluster.gpu", Current: v, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	ids := strList(got.GetAttr("node_ids"))
	if len(ids) != 2 || ids[0] != old[0] || ids[1] != n.ID || str(got.GetAttr("status")) != statusRunning {
		t.Fatalf("read after the replacement: ids %v, status %s", ids, str(got.GetAttr("status")))
	}
	if !got.GetAttr("price_per_hour").Equals(v.GetAttr("price_per_hour")).True() || str(got.GetAttr("zone")) != str(v.GetAttr("zone")) {
		t.Errorf("the placement changed: %#v", got)
	}
	// Read again from the adopted value: stable.
	if again, err := c.Read(ctx, providers.ReadRequest{Address: "cluster.gpu", Current: got, Env: env}); err != nil || !again.Equals(got).True() {
		t.Fatalf("second read: %v\n%#v\n%#v", err, again, got)
	}
	resp, err := c.Plan(ctx, providers.PlanRequest{Address: "cluster.gpu", Prior: got, Config: cfg, Env: env})
	if err != nil || len(resp.RequiresReplace) != 0 || !resp.Planned.Equals(got).True() {
		t.Fatalf("plan after the adoption: %v, replace %v\n%#v\n%#v", err, resp.RequiresReplace, resp.Planned, got)
	}
	if lines, err := c.FindOrphans(ctx, providers.OrphansRequest{Instances: map[string]cty.Value{"cluster.gpu": got}, Env: env}); err != nil || len(lines) != 0 {
		t.Fatalf("orphans after the adoption %v, %v", lines, err)
	}
	if err := c.Delete(ctx, providers.DeleteRequest{Address: "cluster.gpu", Current: got, Env: env}); err != nil {
		t.Fatal(err)
	}
	if f.ec2.Live() != 0 {
		t.Errorf("EC2 has %d live instances after delete", f.ec2.Live())
	}
}

// A one-node GCP cluster whose zone has no capacity left when its node is
// lost: the replacement fails over to another zone of its region, and the
// cluster's Read records the new zone.
func TestReplaceNodeFailsOverOneNodeCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newFakes(t)
	c := New(Options{Catalog: catalog.Default(), NewProvisioner: f.provisioner})
	defer c.Close()
	log := &logBuf{}
	env := providers.Env{Lineage: "lin-f", Providers: fakeClouds, Log: log.logf}
	cfg := config(map[string]cty.Value{"gpu": cty.StringVal("A100:8"), "clouds": strs("gcp"), "regions": strs("us-central1")})
	v := applyCluster(ctx, t, c, env, "cluster.one", cfg)
	zone := str(v.GetAttr("zone"))
	f.gce.FailZone(zone, gcpfake.ZoneExhausted)
	_, lost, _ := StateNode(v, 0)
	if err := c.DeleteComputeNodes(ctx, env, "gcp", []cloud.Node{lost}); err != nil {
		t.Fatal(err)
	}

	n, offer, err := c.ReplaceNode(ctx, NodeReplacement{Address: "cluster.one", Current: v, Index: 0, Seed: "s", Env: env})
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(log.lines, "\n"))
	}
	if offer.Zone == zone || offer.Region != "us-central1" || n.Zone != offer.Zone {
		t.Fatalf("replacement %+v on %s, lost zone %s", n, offer, zone)
	}
	if !strings.Contains(strings.Join(log.lines, "\n"), "capacity error in "+zone) {
		t.Errorf("log:\n%s", strings.Join(log.lines, "\n"))
	}
	got, err := c.Read(ctx, providers.ReadRequest{Address: "cluster.one", Current: v, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if ids := strList(got.GetAttr("node_ids")); len(ids) != 1 || ids[0] != n.ID || str(got.GetAttr("zone")) != offer.Zone ||
		!strings.EqualFold(str(got.GetAttr("instance_type")), offer.InstanceType) || str(got.GetAttr("status")) != statusRunning {
		t.Fatalf("read after the failover: %#v (replacement %s on %s)", got, n.ID, offer)
	}
	if p, _ := num(got.GetAttr("price_per_hour")); p != roundCents(offer.PricePerHour) {
		t.Errorf("price_per_hour %v, want %v", p, offer.PricePerHour)
	}
	if again, err := c.Read(ctx, providers.ReadRequest{Address: "cluster.one", Current: got, Env: env}); err != nil || !again.Equals(got).True() {
		t.Fatalf("second read: %v\n%#v\n%#v", err, again, got)
	}
	resp, err := c.Plan(ctx, providers.PlanRequest{Address: "cluster.one", Prior: got, Config: cfg, Env: env})
	if err != nil || len(resp.RequiresReplace) != 0 {
		t.Fatalf("plan after the failover: %v, replace %v", err, resp.RequiresReplace)
	}
}

// A node of a cluster on this machine or Kubernetes is not replaced.
func TestReplaceNodeCloudOnly(t *testing.T) {
	c := New(Options{Catalog: catalog.Default()})
	v := stateValue(config(map[string]cty.Value{"clouds": strs("local")}), localComputed())
	if _, _, err := c.ReplaceNode(context.Background(), NodeReplacement{Address: "cluster.here", Current: v, Env: providers.Env{}}); err == nil || !strings.Contains(err.Error(), "not on cloud instances") {
		t.Fatalf("err = %v", err)
	}
	if _, _, ok := StateNode(v, 0); ok {
		t.Error("StateNode of a local cluster")
	}
}
