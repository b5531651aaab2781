// Package multicloud_test runs the multi-cloud example's plan offline through
// the built binary, and a cluster's whole life (apply with failover and a lost
// response, drift, orphans, resize, destroy) through the binary against the
// EC2 fake, configured with the provider's `endpoint` argument.
package multicloud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/leptonml/lepton/providers/aws"
	"github.com/leptonml/lepton/providers/aws/awsfake"
	"github.com/leptonml/lepton/providers/catalog"
	"github.com/leptonml/lepton/providers/cloud"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lepton-multicloud")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "lepton")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/lepton").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// offlineEnv is an environment with no cloud credential of any kind and no
// way to find one (no home directory files, no instance metadata).
func offlineEnv(t testing.TB, extra ...string) []string {
	home := t.TempDir()
	return append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "NO_COLOR=1",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "aws-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"CLOUDSDK_CONFIG=" + filepath.Join(home, "gcloud"),
		"AZURE_CONFIG_DIR=" + filepath.Join(home, "azure"),
	}, extra...)
}

func run(t testing.TB, env []string, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-chdir=" + dir}, args...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func must(t testing.TB, env []string, dir string, args ...string) string {
	t.Helper()
	out, err := run(t, env, dir, args...)
	if err != nil {
		t.Fatalf("lepton %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func copyExample(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	b, err := os.ReadFile("main.lep.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "main.lep.hcl"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// The example plans with no credentials and no network: the plan shows the
// optimizer's choice, its price, the fallbacks and the Cost line.
func TestExamplePlansOffline(t *testing.T) {
	dir := copyExample(t)
	out := must(t, offlineEnv(t), dir, "plan")

	ch, err := catalog.Choose(catalog.Default(), catalog.Filter{
		GPU: "A100:8", Clouds: []string{"aws", "gcp", "azure"}, Nodes: 2, MaxPricePerHour: 45,
		Regions: []string{"us-east-1", "us-west-2", "us-central1", "europe-west4", "eastus", "westus2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	total := ch.TotalPerHour()
	for _, want := range []string{
		"# cluster.gpu will be created",
		"# offer: " + ch.Best.String(),
		fmt.Sprintf("# price: $%.4f/hr for 2 node(s)", total),
		fmt.Sprintf("# fallbacks: %d offers remain", len(ch.Fallbacks)),
		fmt.Sprintf(`+ cloud              = %q`, ch.Best.Cloud),
		fmt.Sprintf(`+ instance_type      = %q`, ch.Best.InstanceType),
		"+ node_ids           = (known after apply)",
		fmt.Sprintf("Cost: +$%.2f/hr, -$0.00/hr (now $%.2f/hr)", total, total),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}

	// The same plan as JSON carries the cost figures.
	js := must(t, offlineEnv(t), dir, "plan", "-json")
	var doc struct {
		Lepton struct {
			Cost struct {
				AddPerHour float64 `json:"add_per_hour"`
			} `json:"cost"`
		} `json:"lepton"`
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatalf("plan -json: %v\n%s", err, js)
	}
	if d := doc.Lepton.Cost.AddPerHour - total; d > 0.01 || d < -0.01 {
		t.Errorf("plan -json add_per_hour = %v, want %.4f", doc.Lepton.Cost.AddPerHour, total)
	}

	// A constraint nothing meets is a plan error naming the argument.
	b, _ := os.ReadFile(filepath.Join(dir, "main.lep.hcl"))
	cfg := strings.Replace(string(b), "max_price_per_hour = 45", "max_price_per_hour = 1", 1)
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, offlineEnv(t), dir, "plan")
	if err == nil || !strings.Contains(out, "max_price_per_hour") {
		t.Errorf("plan with an impossible price cap: err %v, output:\n%s", err, out)
	}
}

const awsConfig = `
variable "nodes" {
  type    = number
  default = 2
}
provider "aws" {
  region   = "us-east-1"
  endpoint = %q
}
cluster "gpu" {
  gpu     = "A100:8"
  regions = ["us-east-1"]
  nodes   = var.nodes
  disk_gb = 200
}
output "placement" {
  value = "${cluster.gpu.cloud} ${cluster.gpu.region} ${cluster.gpu.zone}"
}
`

type stateFile struct {
	Lineage   string `json:"lineage"`
	Resources []struct {
		Address    string         `json:"address"`
		Status     string         `json:"status"`
		Attributes map[string]any `json:"attributes"`
	} `json:"resources"`
}

func readState(t *testing.T, dir string) stateFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "lepton.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func nodeIDs(t *testing.T, st stateFile) []string {
	t.Helper()
	for _, r := range st.Resources {
		if r.Address == "cluster.gpu" {
			var ids []string
			for _, v := range r.Attributes["node_ids"].([]any) {
				ids = append(ids, v.(string))
			}
			return ids
		}
	}
	t.Fatal("cluster.gpu is not in state")
	return nil
}

// A cluster's life on AWS through the binary and the EC2 fake: apply fails over
// from the cheapest zone (no capacity) to the next offer, a lost RunInstances
// answer is retried without a second instance, an instance terminated outside
// lepton makes the plan replace the cluster, an instance tagged with the state's
// lineage but missing from state is reported, nodes resize in place, and
// destroy deletes every node.
func TestClusterLifeOnAWSFake(t *testing.T) {
	ec2 := awsfake.New()
	defer ec2.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(fmt.Sprintf(awsConfig, ec2.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	ch, err := catalog.Choose(catalog.Default(), catalog.Filter{GPU: "A100:8", Clouds: []string{"aws"}, Regions: []string{"us-east-1"}, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Fallbacks) == 0 || ch.Fallbacks[0].Zone == ch.Best.Zone {
		t.Fatalf("the test needs a fallback in another zone: %s", ch.Summary())
	}
	best, next := ch.Best, ch.Fallbacks[0]

	// No credentials: apply fails and says what to set.
	out, err := run(t, offlineEnv(t), dir, "apply", "-auto-approve")
	if err == nil || !strings.Contains(out, "AWS_ACCESS_KEY_ID") {
		t.Fatalf("apply without credentials: err %v, want a message naming AWS_ACCESS_KEY_ID:\n%s", err, out)
	}
	if n := len(ec2.Instances()); n != 0 {
		t.Fatalf("%d instances after a failed apply", n)
	}
	env := offlineEnv(t, "AWS_ACCESS_KEY_ID="+awsfake.AccessKey, "AWS_SECRET_ACCESS_KEY=fake-secret")

	// The state may hold a tainted cluster from the failed apply; plan again.
	ec2.FailCapacity(awsfake.CapacityRule{Region: best.Region, Zone: best.Zone, InstanceType: best.InstanceType})
	ec2.DropResponses("RunInstances", 1, awsfake.DropClose)
	out = must(t, env, dir, "apply", "-auto-approve")
	wantLog := fmt.Sprintf("capacity error in %s (InsufficientInstanceCapacity); trying aws %s", best.Zone, next.Zone)
	if !strings.Contains(out, wantLog) {
		t.Errorf("apply output lacks %q:\n%s", wantLog, out)
	}
	if ec2.Live() != 2 || len(ec2.Instances()) != 2 {
		t.Fatalf("EC2 has %d live of %d instances, want exactly 2 (a lost answer must not duplicate):\n%s", ec2.Live(), len(ec2.Instances()), out)
	}
	place := strings.TrimSpace(must(t, env, dir, "output", "-raw", "placement"))
	if want := "aws " + next.Region + " " + next.Zone; place != want {
		t.Errorf("output placement = %q, want %q", place, want)
	}
	st := readState(t, dir)
	ids := nodeIDs(t, st)
	for _, in := range ec2.Instances() {
		if in.Zone != next.Zone && in.ZoneID != next.Zone {
			t.Errorf("instance %s in %s/%s, want %s", in.ID, in.Zone, in.ZoneID, next.Zone)
		}
		if in.Tags[aws.TagLineage] != st.Lineage || in.Tags[aws.TagAddress] != "cluster.gpu" {
			t.Errorf("instance %s tags %v, want lineage %s and address cluster.gpu", in.ID, in.Tags, st.Lineage)
		}
	}
	if out := must(t, env, dir, "plan"); !strings.Contains(out, "No changes.") || strings.Contains(out, "Warning") {
		t.Errorf("plan after apply (orphans looked for, none found):\n%s", out)
	}

	// An instance tagged with this state's lineage that state does not record.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := aws.New(ctx, aws.Config{Region: "us-east-1", Endpoint: ec2.URL, Credentials: awsfake.Credentials(), PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := p.Create(ctx, cloud.NodeSpec{Address: "cluster.old", Lineage: st.Lineage, Index: 3, InstanceType: next.InstanceType, Region: next.Region, Zone: next.Zone, ClientToken: "orphan-token"})
	if err != nil {
		t.Fatal(err)
	}
	out = must(t, env, dir, "plan")
	if !strings.Contains(out, "not in state") || !strings.Contains(out, orphan.ID) || !strings.Contains(out, "cluster.old node 3") {
		t.Errorf("plan does not report orphan %s:\n%s", orphan.ID, out)
	}
	for _, id := range ids {
		if strings.Contains(out, "aws "+id+" ") {
			t.Errorf("plan reports %s, which state records, as an orphan:\n%s", id, out)
		}
	}
	if err := p.Delete(ctx, orphan); err != nil {
		t.Fatal(err)
	}

	// Drift: a node terminated outside lepton; the plan replaces the cluster.
	if !ec2.Terminate(ids[0]) {
		t.Fatalf("no instance %s", ids[0])
	}
	out = must(t, env, dir, "plan")
	for _, want := range []string{"Objects have changed outside of lepton", "cluster.gpu must be replaced", "1 of 2 nodes were terminated outside lepton"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan after drift lacks %q:\n%s", want, out)
		}
	}
	out = must(t, env, dir, "apply", "-auto-approve")
	if ec2.Live() != 2 {
		t.Fatalf("after the replacement EC2 has %d live instances, want 2:\n%s", ec2.Live(), out)
	}
	newIDs := nodeIDs(t, readState(t, dir))
	for _, id := range newIDs {
		if id == ids[0] || id == ids[1] {
			t.Errorf("replacement kept instance %s", id)
		}
	}

	// nodes 2 -> 3 is an in-place update that adds one instance.
	out = must(t, env, dir, "plan", "-var", "nodes=3")
	if !strings.Contains(out, "cluster.gpu will be updated in-place") {
		t.Errorf("plan of nodes = 3:\n%s", out)
	}
	must(t, env, dir, "apply", "-auto-approve", "-var", "nodes=3")
	if ec2.Live() != 3 {
		t.Fatalf("after resize EC2 has %d live instances, want 3", ec2.Live())
	}
	if got := nodeIDs(t, readState(t, dir)); len(got) != 3 || got[0] != newIDs[0] || got[1] != newIDs[1] {
		t.Errorf("node_ids after resize %v, want %v plus one", got, newIDs)
	}

	out = must(t, env, dir, "destroy", "-auto-approve", "-var", "nodes=3")
	if ec2.Live() != 0 {
		t.Fatalf("after destroy EC2 has %d live instances:\n%s", ec2.Live(), out)
	}
}

const benchConfig = `
provider "aws" {
  region   = "us-east-1"
  endpoint = %q
}
cluster "c" {
  count   = 50
  clouds  = [%q]
  gpu     = %s
  regions = %s
}
`

// BenchmarkApply50ClustersCLI: ` + "`lepton apply -parallelism 10`" + ` of 50
// single-node clusters through the built binary (planner, state writes and
// all) against an EC2 fake that answers every call after 50 ms. Each
// iteration is a fresh working directory (a new state lineage, so new
// instances). Reports the median ratio to awsfake's ideal time (x-ideal) and,
// as a reference measured in the same run, the wall time of the same apply
// with 50 local clusters (the CLI and planner cost without any cloud call).
func BenchmarkApply50ClustersCLI(b *testing.B) {
	const clusters, parallelism, latency = 50, 10, 50 * time.Millisecond
	ec2 := awsfake.New()
	defer ec2.Close()
	ec2.SetLatency(latency)
	env := offlineEnv(b, "AWS_ACCESS_KEY_ID="+awsfake.AccessKey, "AWS_SECRET_ACCESS_KEY=fake-secret")
	write := func(cloudName, gpu, regions string) string {
		dir := b.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(fmt.Sprintf(benchConfig, ec2.URL, cloudName, gpu, regions)), 0o644); err != nil {
			b.Fatal(err)
		}
		return dir
	}
	var ratios, locals []float64
	var last awsfake.Measurement
	for b.Loop() {
		dir := write("aws", `"T4"`, `["us-east-1"]`)
		m, err := ec2.Measure(clusters, parallelism, func() error {
			out, err := run(b, env, dir, "apply", "-auto-approve", "-parallelism", fmt.Sprint(parallelism))
			if err != nil {
				return fmt.Errorf("%v\n%s", err, out)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		ratios = append(ratios, m.Ratio)
		last = m

		local := write("local", "null", "null")
		start := time.Now()
		must(b, env, local, "apply", "-auto-approve", "-parallelism", fmt.Sprint(parallelism))
		locals = append(locals, float64(time.Since(start).Milliseconds()))
	}
	if ec2.Live() != clusters*len(ratios) {
		b.Fatalf("EC2 has %d live instances after %d applies of %d clusters", ec2.Live(), len(ratios), clusters)
	}
	median := func(xs []float64) float64 {
		ys := append([]float64(nil), xs...)
		sort.Float64s(ys)
		return ys[len(ys)/2]
	}
	b.ReportMetric(last.Ideal.Seconds()*1000, "ideal-ms")
	b.ReportMetric(last.CallsPerCluster, "calls/cluster")
	b.ReportMetric(median(ratios), "x-ideal")
	b.ReportMetric(median(locals), "local-apply-ms")
	b.Logf("x-ideal per iteration: %v; local apply ms: %v", ratios, locals)
	if m := median(ratios); m > 1.5 {
		b.Fatalf("apply took %.2fx the ideal time (median of %d), budget 1.5x", m, len(ratios))
	}
}

const cbdConfig = `
variable "gpu" {
  type    = string
  default = "A100:8"
}
provider "aws" {
  region   = "us-east-1"
  endpoint = %q
}
cluster "gpu" {
  gpu     = var.gpu
  regions = ["us-east-1"]
  nodes   = 1
  lifecycle {
    create_before_destroy = true
  }
}
`

// A create_before_destroy replacement whose old instances cannot be deleted
// (EC2 termination protection): the new cluster holds the address, the old one
// stays in state as a deposed object, the next plan shows its delete and the
// next apply makes it, through the binary and the EC2 fake.
func TestCreateBeforeDestroyDeposedOnAWSFake(t *testing.T) {
	ec2 := awsfake.New()
	defer ec2.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(fmt.Sprintf(cbdConfig, ec2.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := offlineEnv(t, "AWS_ACCESS_KEY_ID="+awsfake.AccessKey, "AWS_SECRET_ACCESS_KEY=fake-secret")
	must(t, env, dir, "apply", "-auto-approve")
	old := nodeIDs(t, readState(t, dir))
	for _, id := range old {
		ec2.ProtectFromTermination(id, true)
	}

	out, err := run(t, env, dir, "apply", "-auto-approve", "-var", "gpu=H100:8")
	if err == nil || !strings.Contains(out, "cluster.gpu (deposed object ") || !strings.Contains(out, "OperationNotPermitted") {
		t.Fatalf("apply whose old instances are protected: err %v, want the deposed object's delete failing:\n%s", err, out)
	}
	if ec2.Live() != 2 {
		t.Fatalf("EC2 has %d live instances, want the new node and the protected old one", ec2.Live())
	}
	var st struct {
		Deposed []struct {
			Key        string         `json:"key"`
			Address    string         `json:"address"`
			Attributes map[string]any `json:"attributes"`
		} `json:"deposed"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "lepton.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Deposed) != 1 || st.Deposed[0].Address != "cluster.gpu" || fmt.Sprint(st.Deposed[0].Attributes["node_ids"]) != fmt.Sprint([]any{old[0]}) {
		t.Fatalf("state's deposed objects: %+v, want the old cluster with nodes %v", st.Deposed, old)
	}
	if now := nodeIDs(t, readState(t, dir)); len(now) != 1 || now[0] == old[0] {
		t.Fatalf("cluster.gpu holds nodes %v, want the replacement's", now)
	}

	// The plan shows the deposed object's delete and nothing else.
	out = must(t, env, dir, "plan", "-var", "gpu=H100:8")
	want := "# cluster.gpu (deposed object " + st.Deposed[0].Key + ") will be destroyed"
	if !strings.Contains(out, want) || !strings.Contains(out, "0 to add, 0 to change, 1 to destroy") {
		t.Fatalf("plan lacks %q and a single destroy:\n%s", want, out)
	}
	ec2.ProtectFromTermination(old[0], false)
	out = must(t, env, dir, "apply", "-auto-approve", "-var", "gpu=H100:8")
	if !strings.Contains(out, "1 destroyed") || ec2.Live() != 1 {
		t.Fatalf("second apply: %d live instances:\n%s", ec2.Live(), out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "lepton.state.json")); strings.Contains(string(b), `"deposed"`) {
		t.Fatalf("state still lists a deposed object:\n%s", b)
	}
	must(t, env, dir, "destroy", "-auto-approve", "-var", "gpu=H100:8")
	if ec2.Live() != 0 {
		t.Fatalf("%d live instances after destroy", ec2.Live())
	}
}
