package clusters

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/aws"
	"github.com/leptonml/lepton/providers/aws/awsfake"
	"github.com/leptonml/lepton/providers/azure"
	"github.com/leptonml/lepton/providers/azure/azurefake"
	"github.com/leptonml/lepton/providers/catalog"
	"github.com/leptonml/lepton/providers/cloud"
	"github.com/leptonml/lepton/providers/gcp"
	"github.com/leptonml/lepton/providers/gcp/gcpfake"
	"github.com/zclconf/go-cty/cty"
)

// config builds a cluster's decoded arguments (unset ones null).
func config(set map[string]cty.Value) cty.Value {
	ty := lang.Schemas()["cluster"].ConfigType()
	m := map[string]cty.Value{}
	for name, aty := range ty.AttributeTypes() {
		if v, ok := set[name]; ok {
			m[name] = v
		} else {
			m[name] = cty.NullVal(aty)
		}
	}
	return cty.ObjectVal(m)
}

func strs(ss ...string) cty.Value { return strListVal(ss) }

var allClouds = map[string]map[string]string{"aws": {}, "gcp": {"project": "p"}, "azure": {"subscription_id": "s", "resource_group": "g"}}

func TestPlanNew(t *testing.T) {
	cat := catalog.Default()
	for _, tc := range []struct {
		name    string
		args    map[string]cty.Value
		provs   map[string]map[string]string
		filter  catalog.Filter // the expected choice; zero for local
		local   bool
		wantErr string
	}{
		{name: "default clouds are the configured ones", args: map[string]cty.Value{"gpu": cty.StringVal("A100:8"), "nodes": cty.NumberIntVal(2)},
			provs: map[string]map[string]string{"aws": {}, "azure": {"subscription_id": "s", "resource_group": "g"}}, filter: catalog.Filter{GPU: "A100:8", Clouds: []string{"aws", "azure"}, Nodes: 2}},
		{name: "explicit clouds and regions", args: map[string]cty.Value{"gpu": cty.StringVal("H100:8"), "clouds": strs("gcp", "aws"), "regions": strs("us-east-1", "us-central1")},
			provs: allClouds, filter: catalog.Filter{GPU: "H100:8", Clouds: []string{"aws", "gcp"}, Regions: []string{"us-east-1", "us-central1"}}},
		{name: "spot", args: map[string]cty.Value{"gpu": cty.StringVal("T4"), "spot": cty.True},
			provs: allClouds, filter: catalog.Filter{GPU: "T4", Clouds: []string{"aws", "azure", "gcp"}, Spot: true}},
		{name: "pinned instance type", args: map[string]cty.Value{"instance_type": cty.StringVal("g5.xlarge")},
			provs: allClouds, filter: catalog.Filter{InstanceType: "g5.xlarge", Clouds: []string{"aws", "azure", "gcp"}}},
		{name: "local when no cloud is configured", args: map[string]cty.Value{}, local: true},
		{name: "explicit local", args: map[string]cty.Value{"clouds": strs("local")}, provs: allClouds, local: true},
		{name: "price cap nothing meets", args: map[string]cty.Value{"gpu": cty.StringVal("H100:8"), "max_price_per_hour": cty.NumberIntVal(1)},
			provs: allClouds, wantErr: "max_price_per_hour"},
		{name: "unknown gpu", args: map[string]cty.Value{"gpu": cty.StringVal("Z9000")}, provs: allClouds, wantErr: "gpu"},
		{name: "cloud without provider block", args: map[string]cty.Value{"clouds": strs("gcp")}, provs: map[string]map[string]string{"aws": {}},
			wantErr: `no provider "gcp" block`},
		{name: "fractional nodes", args: map[string]cty.Value{"nodes": cty.NumberFloatVal(1.5)}, provs: allClouds, wantErr: "nodes = 1.5"},
		{name: "local with many nodes", args: map[string]cty.Value{"clouds": strs("local"), "nodes": cty.NumberIntVal(2)}, wantErr: "one node"},
		{name: "kubernetes mixed with a cloud", args: map[string]cty.Value{"clouds": strs("kubernetes", "aws")}, provs: allClouds, wantErr: `mixes "kubernetes"`},
		{name: "kubernetes with spot", args: map[string]cty.Value{"clouds": strs("kubernetes"), "spot": cty.True}, provs: allClouds, wantErr: "spot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Options{Catalog: cat})
			resp, err := c.Plan(context.Background(), providers.PlanRequest{
				Address: "cluster.gpu", Prior: cty.NullVal(lang.Schemas()["cluster"].StateType()),
				Config: config(tc.args), Env: providers.Env{Providers: tc.provs},
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !resp.Planned.Type().Equals(lang.Schemas()["cluster"].StateType()) {
				t.Fatalf("planned type %#v", resp.Planned.Type())
			}
			if tc.local {
				if str(resp.Planned.GetAttr("cloud")) != Local || resp.PricePerHour != 0 || !resp.Planned.IsWhollyKnown() {
					t.Fatalf("local plan %#v price %v", resp.Planned, resp.PricePerHour)
				}
				return
			}
			ch, err := catalog.Choose(cat, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			p := resp.Planned
			if str(p.GetAttr("cloud")) != ch.Best.Cloud || str(p.GetAttr("region")) != ch.Best.Region ||
				str(p.GetAttr("zone")) != ch.Best.Zone || str(p.GetAttr("instance_type")) != ch.Best.InstanceType {
				t.Errorf("planned %s %s %s %s, want %s", str(p.GetAttr("cloud")), str(p.GetAttr("region")), str(p.GetAttr("zone")), str(p.GetAttr("instance_type")), ch.Best)
			}
			if want := roundCents(ch.TotalPerHour()); resp.PricePerHour != want {
				t.Errorf("price %v, want %v", resp.PricePerHour, want)
			}
			for _, n := range []string{"node_ids", "node_addresses", "status"} {
				if p.GetAttr(n).IsKnown() {
					t.Errorf("%s is known at plan time", n)
				}
			}
			if len(resp.Detail) != 3 || resp.Detail[0] != "offer: "+ch.Best.String() || !strings.Contains(resp.Detail[2], fmt.Sprintf("%d offer", len(ch.Fallbacks))) {
				t.Errorf("detail %q", resp.Detail)
			}
		})
	}
}

// An existing cluster stays where it is: nodes changes are in place, other
// argument changes replace, and a degraded cluster (nodes lost) is replaced.
func TestPlanExisting(t *testing.T) {
	c := New(Options{Catalog: catalog.Default()})
	env := providers.Env{Providers: allClouds}
	cfg := config(map[string]cty.Value{"gpu": cty.StringVal("A100:8"), "nodes": cty.NumberIntVal(2), "clouds": strs("aws")})
	prior := stateValue(cfg, map[string]cty.Value{
		"cloud": cty.StringVal("aws"), "region": cty.StringVal("us-east-1"), "zone": cty.StringVal("use1-az1"),
		"instance_type": cty.StringVal("p4d.24xlarge"), "price_per_hour": numVal(60),
		"node_ids": strs("i-1", "i-2"), "node_addresses": strs("10.0.0.1", "10.0.0.2"), "status": cty.StringVal("running"),
	})
	prior = setAttr(prior, "id", cty.StringVal("cluster.gpu"))
	with := func(v cty.Value, name string, x cty.Value) cty.Value { return setAttr(v, name, x) }
	for _, tc := range []struct {
		name        string
		prior, cfg  cty.Value
		wantReplace []string
		wantUnknown bool
		wantPrice   float64
		wantReason  string
	}{
		{name: "no change", prior: prior, cfg: cfg, wantPrice: 60},
		{name: "more nodes", prior: prior, cfg: with(cfg, "nodes", cty.NumberIntVal(3)), wantUnknown: true, wantPrice: 90},
		{name: "fewer nodes", prior: prior, cfg: with(cfg, "nodes", cty.NumberIntVal(1)), wantUnknown: true, wantPrice: 30},
		{name: "gpu change replaces", prior: prior, cfg: with(cfg, "gpu", cty.StringVal("H100:8")), wantReplace: []string{"gpu"}},
		{name: "disk change replaces", prior: prior, cfg: with(cfg, "disk_gb", cty.NumberIntVal(500)), wantReplace: []string{"disk_gb"}},
		{name: "degraded is replaced", prior: with(with(prior, "node_ids", strs("i-2")), "status", cty.StringVal(statusDegraded)), cfg: cfg,
			wantReplace: []string{"node_ids"}, wantReason: "1 of 2 nodes were terminated outside lepton"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Plan(context.Background(), providers.PlanRequest{Address: "cluster.gpu", Prior: tc.prior, Config: tc.cfg, Env: env})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range resp.RequiresReplace {
				got = append(got, p[0].(cty.GetAttrStep).Name)
			}
			if strings.Join(got, ",") != strings.Join(tc.wantReplace, ",") {
				t.Fatalf("replace %v, want %v", got, tc.wantReplace)
			}
			if resp.Reason != tc.wantReason {
				t.Errorf("reason %q, want %q", resp.Reason, tc.wantReason)
			}
			if len(tc.wantReplace) > 0 {
				return
			}
			if resp.PricePerHour != tc.wantPrice {
				t.Errorf("price %v, want %v", resp.PricePerHour, tc.wantPrice)
			}
			if known := resp.Planned.GetAttr("node_ids").IsKnown(); known == tc.wantUnknown {
				t.Errorf("node_ids known = %v", known)
			}
			if str(resp.Planned.GetAttr("zone")) != "use1-az1" {
				t.Errorf("placement moved: %#v", resp.Planned)
			}
			if tc.name == "no change" {
				if eq := resp.Planned.Equals(tc.prior); !eq.True() {
					t.Errorf("no-change plan differs from prior:\n%#v\n%#v", resp.Planned, tc.prior)
				}
			}
		})
	}
}

// fakes are the three clouds' fakes with provisioners built from them by the
// real SDK clients.
type fakes struct {
	ec2 *awsfake.Server
	gce *gcpfake.Server
	az  *azurefake.Cloud
}

func newFakes(t *testing.T) *fakes {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "", "AWS_REGION": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_EC2": "",
	} {
		t.Setenv(k, v)
	}
	f := &fakes{ec2: awsfake.New(), gce: gcpfake.New(), az: azurefake.New("sub-1")}
	f.gce.AddImageFamily(gcp.DefaultImageProject, gcp.DefaultImageFamily, "common-cu128-ubuntu-2204-nvidia-570-v20261101")
	t.Cleanup(func() { f.ec2.Close(); f.gce.Close() })
	return f
}

// provisioner builds real SDK provisioners pointed at the fakes, from the
// provider blocks like SDKProvisioner, with test credentials.
func (f *fakes) provisioner(ctx context.Context, name string, b map[string]string) (cloud.Provisioner, error) {
	switch name {
	case "aws":
		return aws.New(ctx, aws.Config{Region: b["region"], Endpoint: f.ec2.URL, Credentials: awsfake.Credentials(), PollInterval: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	case "gcp":
		return gcp.New(ctx, gcp.Config{Project: b["project"], Region: b["region"], Endpoint: f.gce.URL, NoAuth: true, PollInterval: time.Millisecond, RetryDelay: time.Millisecond})
	case "azure":
		return azure.New(ctx, azure.Config{SubscriptionID: b["subscription_id"], ResourceGroup: b["resource_group"], Location: b["location"],
			Credential: &azfake.TokenCredential{},
			ClientOptions: arm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: f.az,
				Retry: policy.RetryOptions{RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}}},
			PollFrequency: time.Millisecond})
	}
	return nil, fmt.Errorf("no fake for %s", name)
}

var fakeClouds = map[string]map[string]string{
	"aws":   {"region": "us-east-1"},
	"gcp":   {"project": "lepton-test", "region": "us-central1"},
	"azure": {"subscription_id": "sub-1", "resource_group": "ml", "location": "eastus"},
}

type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

// A cluster across the three clouds: GCP's cheapest zones have no capacity and
// Azure's region refuses the size; the cluster lands on the next offer, the
// value says where, each attempt is logged, nothing is left behind, and Read,
// orphan listing and Delete work on what was made.
func TestApplyFailsOverAcrossClouds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newFakes(t)
	c := New(Options{Catalog: catalog.Default(), NewProvisioner: f.provisioner})
	defer c.Close()
	log := &logBuf{}
	env := providers.Env{Lineage: "lin-1", Providers: fakeClouds, Log: log.logf}
	cfg := config(map[string]cty.Value{"gpu": cty.StringVal("A100:8"), "nodes": cty.NumberIntVal(2), "regions": strs("us-central1", "eastus", "us-east-1")})

	resp, err := c.Plan(ctx, providers.PlanRequest{Address: "cluster.gpu", Prior: cty.NullVal(lang.Schemas()["cluster"].StateType()), Config: cfg, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := catalog.Choose(catalog.Default(), catalog.Filter{GPU: "A100:8", Nodes: 2, Regions: []string{"us-central1", "eastus", "us-east-1"}, Clouds: []string{"aws", "azure", "gcp"}})
	var land cloud.Offer
	for _, o := range ch.CloudOffers() {
		if o.Cloud == "aws" {
			land = o
			break
		}
	}
	for _, z := range []string{"us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"} {
		f.gce.FailZone(z, gcpfake.ZoneExhausted)
	}
	f.az.FailLocation("eastus", azurefake.AllocationFailed)

	v, err := c.Apply(ctx, providers.ApplyRequest{Address: "cluster.gpu", Prior: cty.NullVal(resp.Planned.Type()), Planned: resp.Planned, Env: env})
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(log.lines, "\n"))
	}
	if str(v.GetAttr("cloud")) != "aws" || str(v.GetAttr("zone")) != land.Zone || str(v.GetAttr("instance_type")) != land.InstanceType {
		t.Fatalf("landed on %s %s %s, want %s", str(v.GetAttr("cloud")), str(v.GetAttr("zone")), str(v.GetAttr("instance_type")), land)
	}
	if p, _ := num(v.GetAttr("price_per_hour")); p != roundCents(2*land.PricePerHour) {
		t.Errorf("price_per_hour %v, want %v", p, 2*land.PricePerHour)
	}
	if !v.IsWhollyKnown() || len(strList(v.GetAttr("node_ids"))) != 2 || str(v.GetAttr("status")) != "running" {
		t.Fatalf("value %#v", v)
	}
	logged := strings.Join(log.lines, "\n")
	for _, want := range []string{"capacity error in us-central1-a (ZONE_RESOURCE_POOL_EXHAUSTED); trying gcp", "capacity error in eastus (AllocationFailed); trying", "landed on aws " + land.InstanceType} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %q:\n%s", want, logged)
		}
	}
	if f.ec2.Live() != 2 {
		t.Errorf("EC2 has %d live instances", f.ec2.Live())
	}
	for _, in := range f.gce.Instances() {
		if in.Status == "RUNNING" || in.Status == "STAGING" || in.Status == "PROVISIONING" {
			t.Errorf("GCP instance %s left behind", in.Name)
		}
	}
	if vms := f.az.VMs(); len(vms) != 0 {
		t.Errorf("Azure VMs left behind: %v", vms)
	}

	// Refresh: unchanged.
	got, err := c.Read(ctx, providers.ReadRequest{Address: "cluster.gpu", Current: v, Env: env})
	if err != nil || !got.Equals(v).True() {
		t.Fatalf("read: %v\n%#v\n%#v", err, got, v)
	}
	// No orphans; then one made behind lepton's back is found.
	lines, err := c.FindOrphans(ctx, providers.OrphansRequest{Instances: map[string]cty.Value{"cluster.gpu": v}, Env: env})
	if err != nil || len(lines) != 0 {
		t.Fatalf("orphans %v, %v", lines, err)
	}
	f.ec2.Terminate(strList(v.GetAttr("node_ids"))[1])
	got, err = c.Read(ctx, providers.ReadRequest{Address: "cluster.gpu", Current: v, Env: env})
	if err != nil || str(got.GetAttr("status")) != statusDegraded || len(strList(got.GetAttr("node_ids"))) != 1 {
		t.Fatalf("read after a node was terminated: %v %#v", err, got)
	}
	if err := c.Delete(ctx, providers.DeleteRequest{Address: "cluster.gpu", Current: v, Env: env}); err != nil {
		t.Fatal(err)
	}
	if f.ec2.Live() != 0 {
		t.Errorf("EC2 has %d live instances after delete", f.ec2.Live())
	}
	got, err = c.Read(ctx, providers.ReadRequest{Address: "cluster.gpu", Current: v, Env: env})
	if err != nil || !got.IsNull() {
		t.Fatalf("read after delete: %v %#v", err, got)
	}
}

// A cluster on GCP and one on Azure: created, resized in place, deleted.
func TestApplyResizeDeleteGCPAndAzure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newFakes(t)
	c := New(Options{Catalog: catalog.Default(), NewProvisioner: f.provisioner})
	defer c.Close()
	env := providers.Env{Lineage: "lin-2", Providers: fakeClouds}
	live := map[string]func() int{
		"gcp": func() int {
			n := 0
			for _, in := range f.gce.Instances() {
				if in.Status == "RUNNING" {
					n++
				}
			}
			return n
		},
		"azure": func() int { return len(f.az.VMs()) },
	}
	for cl, gpu := range map[string]string{"gcp": "L4", "azure": "T4"} {
		t.Run(cl, func(t *testing.T) {
			cfg := config(map[string]cty.Value{"gpu": cty.StringVal(gpu), "clouds": strs(cl), "nodes": cty.NumberIntVal(1)})
			null := cty.NullVal(lang.Schemas()["cluster"].StateType())
			resp, err := c.Plan(ctx, providers.PlanRequest{Address: "cluster." + cl, Prior: null, Config: cfg, Env: env})
			if err != nil {
				t.Fatal(err)
			}
			v, err := c.Apply(ctx, providers.ApplyRequest{Address: "cluster." + cl, Prior: null, Planned: resp.Planned, Env: env})
			if err != nil {
				t.Fatal(err)
			}
			if live[cl]() != 1 || str(v.GetAttr("cloud")) != cl {
				t.Fatalf("%d live after create, value %#v", live[cl](), v)
			}
			cfg3 := setAttr(cfg, "nodes", cty.NumberIntVal(3))
			resp, err = c.Plan(ctx, providers.PlanRequest{Address: "cluster." + cl, Prior: v, Config: cfg3, Env: env})
			if err != nil || len(resp.RequiresReplace) != 0 {
				t.Fatalf("plan resize: %v %v", err, resp.RequiresReplace)
			}
			v3, err := c.Apply(ctx, providers.ApplyRequest{Address: "cluster." + cl, Prior: v, Planned: resp.Planned, Env: env})
			if err != nil {
				t.Fatal(err)
			}
			ids := strList(v3.GetAttr("node_ids"))
			if live[cl]() != 3 || len(ids) != 3 || ids[0] != strList(v.GetAttr("node_ids"))[0] {
				t.Fatalf("after resize to 3: %d live, ids %v", live[cl](), ids)
			}
			resp, _ = c.Plan(ctx, providers.PlanRequest{Address: "cluster." + cl, Prior: v3, Config: cfg, Env: env})
			v1, err := c.Apply(ctx, providers.ApplyRequest{Address: "cluster." + cl, Prior: v3, Planned: resp.Planned, Env: env})
			if err != nil {
				t.Fatal(err)
			}
			if live[cl]() != 1 || len(strList(v1.GetAttr("node_ids"))) != 1 {
				t.Fatalf("after resize to 1: %d live", live[cl]())
			}
			if err := c.Delete(ctx, providers.DeleteRequest{Address: "cluster." + cl, Current: v1, Env: env}); err != nil {
				t.Fatal(err)
			}
			if live[cl]() != 0 {
				t.Fatalf("%d live after delete", live[cl]())
			}
		})
	}
}

// Refresh and apply of a cloud cluster need credentials, and say which.
func TestMissingCredentials(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(dir, "c"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "k"),
	} {
		t.Setenv(k, v)
	}
	ec2 := awsfake.New()
	defer ec2.Close()
	c := New(Options{Catalog: catalog.Default()}) // the SDKs' default credentials
	defer c.Close()
	env := providers.Env{Lineage: "lin", Providers: map[string]map[string]string{"aws": {"region": "us-east-1", "endpoint": ec2.URL}}}
	cur := stateValue(config(map[string]cty.Value{"gpu": cty.StringVal("T4")}), map[string]cty.Value{
		"cloud": cty.StringVal("aws"), "region": cty.StringVal("us-east-1"), "zone": cty.StringVal("use1-az1"),
		"instance_type": cty.StringVal("g4dn.xlarge"), "price_per_hour": numVal(1),
		"node_ids": strs("i-1"), "node_addresses": strs("10.0.0.1"), "status": cty.StringVal("running"),
	})
	_, err := c.Read(context.Background(), providers.ReadRequest{Address: "cluster.gpu", Current: cur, Env: env})
	if !errors.Is(err, cloud.ErrCredentials) || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("read without credentials: %v", err)
	}
	// Planning a new cluster needs none.
	if _, err := c.Plan(context.Background(), providers.PlanRequest{Address: "cluster.x", Prior: cty.NullVal(cur.Type()),
		Config: config(map[string]cty.Value{"gpu": cty.StringVal("T4")}), Env: env}); err != nil {
		t.Fatal(err)
	}
	if ec2.Calls("") != 0 {
		t.Errorf("%d calls reached EC2", ec2.Calls(""))
	}
}

// A Kubernetes cluster without GPUs plans offline: the kubeconfig it names
// does not even exist.
func TestPlanKubernetesOffline(t *testing.T) {
	c := New(Options{Catalog: catalog.Default()})
	env := providers.Env{Lineage: "0123456789abcdef", Providers: map[string]map[string]string{"kubernetes": {"kubeconfig": filepath.Join(t.TempDir(), "missing")}}}
	resp, err := c.Plan(context.Background(), providers.PlanRequest{
		Address: "cluster.k", Prior: cty.NullVal(lang.Schemas()["cluster"].StateType()),
		Config: config(map[string]cty.Value{"clouds": strs("kubernetes"), "nodes": cty.NumberIntVal(2)}), Env: env,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Planned
	if str(p.GetAttr("cloud")) != Kubernetes || str(p.GetAttr("region")) != "lepton-k-01234567" || resp.PricePerHour != 0 {
		t.Errorf("planned %#v", p)
	}
	// With GPUs the plan asks the API server, and says when it cannot.
	_, err = c.Plan(context.Background(), providers.PlanRequest{
		Address: "cluster.k", Prior: cty.NullVal(lang.Schemas()["cluster"].StateType()),
		Config: config(map[string]cty.Value{"clouds": strs("kubernetes"), "gpu": cty.StringVal("A100:1")}), Env: env,
	})
	if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("err = %v, want the kubeconfig named", err)
	}
}
