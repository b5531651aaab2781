package azure_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/leptonml/lepton/providers/azure"
	"github.com/leptonml/lepton/providers/azure/azurefake"
	"github.com/leptonml/lepton/providers/cloud"
)

const (
	subscription = "00000000-1111-2222-3333-444444444444"
	rg           = "lepton-rg"
	lineage      = "3f0c1c9e-8a51-4d0b-9c3e-2b7f1d0a9e11"
)

// newFixture wires the real armcompute/armnetwork clients to the SDK's fake
// servers backed by azurefake's state, with fast polling and retries.
func newFixture(t *testing.T, publicIP bool) (*azurefake.Cloud, *azure.Provisioner) {
	t.Helper()
	fake := azurefake.New(subscription)
	p, err := azure.New(context.Background(), azure.Config{
		SubscriptionID: subscription,
		ResourceGroup:  rg,
		Location:       "eastus",
		Credential:     &azfake.TokenCredential{},
		ClientOptions: arm.ClientOptions{ClientOptions: policy.ClientOptions{
			Transport: fake,
			Retry:     policy.RetryOptions{RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond},
		}},
		PublicIP:      publicIP,
		PollFrequency: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return fake, p
}

func spec(location, size string) cloud.NodeSpec {
	return cloud.NodeSpec{
		Address:      `cluster.gpu["Train-A"]`,
		Lineage:      lineage,
		Index:        1,
		ClientToken:  "apply-1/cluster.gpu/1",
		InstanceType: size,
		Region:       location,
		GPUName:      "A100-80GB",
		GPUCount:     1,
		DiskGB:       256,
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestCreateReadListDelete(t *testing.T) {
	fake, p := newFixture(t, true)
	s := spec("eastus", "Standard_NC24ads_A100_v4")
	s.Zone = "eastus-2"
	node, err := p.Create(ctx(t), s)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	want := cloud.Node{ID: azure.VMName(s.Address, 1, s.ClientToken), Address: node.Address, Region: "eastus", Zone: "2", Status: "running", Index: 1, Cluster: s.Address, InstanceType: s.InstanceType}
	if node != want || !strings.HasPrefix(node.Address, "20.51.") {
		t.Fatalf("node %+v, want %+v with a public address", node, want)
	}
	vms := fake.VMs()
	if len(vms) != 1 {
		t.Fatalf("want 1 VM, have %d", len(vms))
	}
	vm := vms[0]
	if vm.Size != "Standard_NC24ads_A100_v4" || vm.OSDiskGB != 256 || vm.Priority != "" || vm.Image != azure.DefaultImage ||
		!reflect.DeepEqual(vm.Zones, []string{"2"}) {
		t.Errorf("VM %+v", vm)
	}
	if vm.Tags[azure.TagAddress] != s.Address || vm.Tags[azure.TagLineage] != lineage || vm.Tags[azure.TagIndex] != "1" {
		t.Errorf("tags %v", vm.Tags)
	}
	if nics := fake.NICs(); !reflect.DeepEqual(nics, []string{node.ID + "-nic"}) {
		t.Errorf("NICs %v", nics)
	}
	if ips := fake.PublicIPs(); !reflect.DeepEqual(ips, []string{node.ID + "-ip"}) {
		t.Errorf("public IPs %v", ips)
	}
	if vnets := fake.VNets(); !reflect.DeepEqual(vnets, []string{"lepton-vnet-eastus"}) {
		t.Errorf("virtual networks %v", vnets)
	}

	got, found, err := p.Read(ctx(t), "eastus", "2", node.ID)
	if err != nil || !found || got != node {
		t.Fatalf("read: %+v found=%v err=%v", got, found, err)
	}
	nodes, err := p.ListByLineage(ctx(t), lineage, []string{"eastus"})
	if err != nil || len(nodes) != 1 || nodes[0].ID != node.ID || nodes[0].Status != "running" || nodes[0].Cluster != s.Address {
		t.Fatalf("list: %+v %v", nodes, err)
	}
	if nodes, _ := p.ListByLineage(ctx(t), "other", nil); len(nodes) != 0 {
		t.Fatalf("other lineage lists %+v", nodes)
	}
	if nodes, _ := p.ListByLineage(ctx(t), lineage, []string{"westeurope"}); len(nodes) != 0 {
		t.Fatalf("other region lists %+v", nodes)
	}

	if err := p.Delete(ctx(t), node); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if len(fake.VMs()) != 0 || len(fake.NICs()) != 0 || len(fake.PublicIPs()) != 0 {
		t.Fatalf("left after delete: VMs %v NICs %v IPs %v", fake.VMs(), fake.NICs(), fake.PublicIPs())
	}
	if len(fake.VNets()) != 1 {
		t.Errorf("the shared virtual network should stay")
	}
	if _, found, err := p.Read(ctx(t), "eastus", "2", node.ID); err != nil || found {
		t.Fatalf("read after delete: found=%v err=%v", found, err)
	}
	if err := p.Delete(ctx(t), node); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

func TestSpot(t *testing.T) {
	fake, p := newFixture(t, false)
	s := spec("eastus", "Standard_NC4as_T4_v3")
	s.Spot = true
	node, err := p.Create(ctx(t), s)
	if err != nil {
		t.Fatal(err)
	}
	vm := fake.VMs()[0]
	if vm.Priority != "Spot" || vm.EvictionPolicy != "Delete" || vm.MaxPrice == nil || *vm.MaxPrice != -1 {
		t.Fatalf("spot VM %+v", vm)
	}
	if !strings.HasPrefix(node.Address, "10.77.") {
		t.Fatalf("without a public IP the address is the private one, got %q", node.Address)
	}
}

func TestCapacityErrorsAreClassifiedAndCleanedUp(t *testing.T) {
	for _, code := range []string{
		azurefake.AllocationFailed,
		azurefake.ZonalAllocationFailed,
		azurefake.SkuNotAvailable,
		azurefake.QuotaExceeded,
		azurefake.OperationNotAllowedQuota,
	} {
		t.Run(code, func(t *testing.T) {
			fake, p := newFixture(t, true)
			fake.FailLocation("eastus", code)
			_, err := p.Create(ctx(t), spec("eastus", "Standard_ND96asr_v4"))
			if !errors.Is(err, cloud.ErrCapacity) {
				t.Fatalf("error %v does not wrap cloud.ErrCapacity", err)
			}
			if !strings.Contains(err.Error(), code) {
				t.Fatalf("error %q does not name %s", err, code)
			}
			if len(fake.VMs()) != 0 || len(fake.NICs()) != 0 || len(fake.PublicIPs()) != 0 {
				t.Fatalf("a failed create left VMs %v NICs %v IPs %v", fake.VMs(), fake.NICs(), fake.PublicIPs())
			}
			// The next offer, in another region, goes through.
			if _, err := p.Create(ctx(t), spec("westus2", "Standard_ND96asr_v4")); err != nil {
				t.Fatalf("other region: %v", err)
			}
		})
	}
}

func TestOtherErrorsAreNotCapacity(t *testing.T) {
	_, p := newFixture(t, false)
	s := spec("eastus", "Standard_NC6s_v3")
	s.Image = "not-an-image"
	if _, err := p.Create(ctx(t), s); err == nil || errors.Is(err, cloud.ErrCapacity) {
		t.Fatalf("bad image: %v", err)
	}
}

func TestLostCreateResponseDoesNotDuplicate(t *testing.T) {
	fake, p := newFixture(t, false)
	fake.DropCreateResponses(1)
	node, err := p.Create(ctx(t), spec("eastus", "Standard_NC24ads_A100_v4"))
	if err != nil {
		t.Fatalf("create with a lost response: %v", err)
	}
	if n := fake.Calls("VirtualMachinesClient.BeginCreateOrUpdate"); n != 2 {
		t.Fatalf("the lost create was not resent once (%d calls)", n)
	}
	// A whole Create repeated with the same token converges on the same VM.
	again, err := p.Create(ctx(t), spec("eastus", "Standard_NC24ads_A100_v4"))
	if err != nil || again.ID != node.ID {
		t.Fatalf("repeated create: %+v %v", again, err)
	}
	if len(fake.VMs()) != 1 || len(fake.NICs()) != 1 {
		t.Fatalf("VMs %v NICs %v", fake.VMs(), fake.NICs())
	}
}

func TestDrift(t *testing.T) {
	fake, p := newFixture(t, false)
	s := spec("eastus", "Standard_NC24ads_A100_v4")
	node, err := p.Create(ctx(t), s)
	if err != nil {
		t.Fatal(err)
	}
	fake.SetPowerState(rg, node.ID, "deallocated")
	if got, found, err := p.Read(ctx(t), node.Region, node.Zone, node.ID); err != nil || !found || got.Status != "stopped" {
		t.Fatalf("deallocated VM reads %+v found=%v err=%v", got, found, err)
	}
	fake.DeleteVM(rg, node.ID) // evicted or deleted outside lepton; its NIC stays
	if _, found, err := p.Read(ctx(t), node.Region, node.Zone, node.ID); err != nil || found {
		t.Fatalf("deleted VM: found=%v err=%v", found, err)
	}
	again, err := p.Create(ctx(t), s)
	if err != nil || again.ID != node.ID || len(fake.VMs()) != 1 || len(fake.NICs()) != 1 {
		t.Fatalf("recreate: %+v %v, VMs %v NICs %v", again, err, fake.VMs(), fake.NICs())
	}
}

func TestCredentialErrors(t *testing.T) {
	cred := &azfake.TokenCredential{}
	cred.SetError(errors.New("ClientSecretCredential authentication failed: AADSTS7000215: Invalid client secret provided"))
	_, err := azure.New(context.Background(), azure.Config{SubscriptionID: subscription, ResourceGroup: rg, Credential: cred})
	checkCredentialError(t, err)

	// No credential at all: only the environment credential is tried, and its
	// variables are unset.
	for _, v := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME"} {
		t.Setenv(v, "")
	}
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
	_, err = azure.New(context.Background(), azure.Config{SubscriptionID: subscription, ResourceGroup: rg})
	checkCredentialError(t, err)
}

func checkCredentialError(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, cloud.ErrCredentials) {
		t.Fatalf("error %v does not wrap cloud.ErrCredentials", err)
	}
	for _, want := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "az login"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestVMName(t *testing.T) {
	for _, addr := range []string{"cluster.gpu", `cluster.gpu["Train-A"]`, strings.Repeat("long.", 30), "", "!!"} {
		n := azure.VMName(addr, 7, "tok")
		if len(n) > 64 || strings.ContainsAny(n, "._ \"[]") || strings.HasSuffix(n, "-") {
			t.Errorf("VMName(%q) = %q", addr, n)
		}
	}
	if azure.VMName("c", 0, "a") == azure.VMName("c", 0, "b") {
		t.Error("different tokens share a name")
	}
}

func TestParallelCreatesAndDeletes(t *testing.T) {
	fake, p := newFixture(t, true)
	fake.SetLatency(time.Millisecond)
	fake.FailLocation("westeurope", azurefake.AllocationFailed)
	const n = 16
	type result struct {
		node cloud.Node
		err  error
	}
	results := make(chan result, n)
	for i := 0; i < n; i++ {
		go func() {
			location := "eastus"
			if i%4 == 0 {
				location = "westeurope" // these fail, concurrently with the others
			}
			s := spec(location, "Standard_NC24ads_A100_v4")
			s.Index = i
			s.ClientToken = "tok-" + strings.Repeat("y", i)
			node, err := p.Create(ctx(t), s)
			results <- result{node, err}
		}()
	}
	var nodes []cloud.Node
	for i := 0; i < n; i++ {
		r := <-results
		switch {
		case r.err == nil:
			nodes = append(nodes, r.node)
		case !errors.Is(r.err, cloud.ErrCapacity):
			t.Fatalf("unexpected error: %v", r.err)
		}
	}
	if len(nodes) != n-n/4 || len(fake.VMs()) != len(nodes) || len(fake.NICs()) != len(nodes) {
		t.Fatalf("%d nodes, VMs %d, NICs %d", len(nodes), len(fake.VMs()), len(fake.NICs()))
	}
	if got := fake.VNets(); !reflect.DeepEqual(got, []string{"lepton-vnet-eastus", "lepton-vnet-westeurope"}) {
		t.Fatalf("virtual networks %v, want one per location", got)
	}
	done := make(chan error, len(nodes))
	for _, node := range nodes {
		go func() { done <- p.Delete(ctx(t), node) }()
	}
	for range nodes {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if len(fake.VMs())+len(fake.NICs())+len(fake.PublicIPs()) != 0 {
		t.Fatalf("left: VMs %v NICs %v IPs %v", fake.VMs(), fake.NICs(), fake.PublicIPs())
	}
}

// BenchmarkCreate50Parallel10 creates 50 single-node clusters, 10 at a time,
// against the fakes with every call answered after 50 ms. A create is 7 round
// trips (VM get, NIC put and poll, VM put and poll, VM get, NIC get) plus one
// virtual network lookup shared by all: the ideal is 50 ms + 5 waves x 350 ms.
func BenchmarkCreate50Parallel10(b *testing.B) {
	const latency = 50 * time.Millisecond
	ideal := latency + 5*7*latency
	for i := 0; i < b.N; i++ {
		fake := azurefake.New(subscription)
		fake.SetLatency(latency)
		p, err := azure.New(context.Background(), azure.Config{
			SubscriptionID: subscription, ResourceGroup: rg, Location: "eastus",
			Credential:    &azfake.TokenCredential{},
			ClientOptions: arm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: fake}},
			PollFrequency: time.Millisecond,
		})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		sem := make(chan struct{}, 10)
		errs := make(chan error, 50)
		for n := 0; n < 50; n++ {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				s := spec("eastus", "Standard_NC24ads_A100_v4")
				s.Address = fmt.Sprintf("cluster.c%d", n)
				_, err := p.Create(context.Background(), s)
				errs <- err
			}()
		}
		for n := 0; n < 50; n++ {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(time.Since(start))/float64(ideal), "x-ideal")
	}
}

func TestConfigOptions(t *testing.T) {
	fake := azurefake.New(subscription)
	subnet := "/subscriptions/" + subscription + "/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/corp/subnets/gpu"
	p, err := azure.New(context.Background(), azure.Config{
		SubscriptionID: subscription,
		ResourceGroup:  rg,
		Location:       "eastus",
		Endpoint:       "https://arm.sovereign.example",
		SubnetID:       subnet,
		Image:          "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest",
		Credential:     &azfake.TokenCredential{},
		ClientOptions:  arm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: fake}},
		PollFrequency:  time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The configured subnet must exist; the fake checks NIC references.
	_, err = p.Create(ctx(t), spec("eastus", "Standard_NC6s_v3"))
	if err == nil || !strings.Contains(err.Error(), "InvalidResourceReference") {
		t.Fatalf("a NIC in a missing subnet: %v", err)
	}
	if vnets := fake.VNets(); len(vnets) != 0 {
		t.Fatalf("with subnet_id set no virtual network is created, got %v", vnets)
	}
	if hosts := fake.Hosts(); !reflect.DeepEqual(hosts, []string{"arm.sovereign.example"}) {
		t.Fatalf("requests went to %v", hosts)
	}

	// A per-node image override (resource ID) wins over the configured URN.
	fake2, p2 := newFixture(t, false)
	s := spec("eastus", "Standard_NC6s_v3")
	s.Image = "/subscriptions/" + subscription + "/resourceGroups/img/providers/Microsoft.Compute/images/cuda"
	if _, err := p2.Create(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	if got := fake2.VMs()[0].Image; got != s.Image {
		t.Fatalf("image %q, want %q", got, s.Image)
	}
}

func FuzzVMName(f *testing.F) {
	for _, s := range []string{"cluster.gpu", `cluster.x["ü ß"]`, strings.Repeat("ab.", 40), ""} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, address string, index int) {
		n := azure.VMName(address, index, address)
		if len(n) > 64 || !strings.HasPrefix(n, "lp-") || strings.HasSuffix(n, "-") {
			t.Fatalf("VMName(%q, %d) = %q", address, index, n)
		}
		for _, r := range n {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				t.Fatalf("VMName(%q, %d) = %q has %q", address, index, n, r)
			}
		}
	})
}

// TestOverHTTPEndpoint drives the provisioner through a plain endpoint, as
// lepton's `endpoint` provider argument does: the fake served over HTTP on
// 127.0.0.1, no credential configured.
func TestOverHTTPEndpoint(t *testing.T) {
	fake := azurefake.New(subscription)
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	p, err := azure.New(context.Background(), azure.Config{
		SubscriptionID: subscription,
		ResourceGroup:  rg,
		Location:       "eastus",
		Endpoint:       srv.URL,
		PublicIP:       true,
		ClientOptions: arm.ClientOptions{ClientOptions: policy.ClientOptions{
			Retry: policy.RetryOptions{RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond},
		}},
		PollFrequency: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	fake.DropCreateResponses(1)
	node, err := p.Create(ctx(t), spec("eastus", "Standard_NC24ads_A100_v4"))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if node.Status != "running" || !strings.HasPrefix(node.Address, "20.51.") || len(fake.VMs()) != 1 {
		t.Fatalf("node %+v, VMs %v", node, fake.VMs())
	}
	if n := fake.Calls("VirtualMachinesClient.BeginCreateOrUpdate"); n != 2 {
		t.Fatalf("the cut create answer was not resent once (%d calls)", n)
	}
	if nodes, err := p.ListByLineage(ctx(t), lineage, nil); err != nil || len(nodes) != 1 {
		t.Fatalf("list: %+v %v", nodes, err)
	}
	fake.FailLocation("westus2", azurefake.AllocationFailed)
	other := spec("westus2", "Standard_NC24ads_A100_v4")
	other.ClientToken = "apply-1/cluster.gpu/1/westus2"
	if _, err := p.Create(ctx(t), other); !errors.Is(err, cloud.ErrCapacity) || !strings.Contains(err.Error(), "AllocationFailed") {
		t.Fatalf("capacity over HTTP: %v", err)
	}
	if err := p.Delete(ctx(t), node); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if len(fake.VMs())+len(fake.NICs())+len(fake.PublicIPs()) != 0 {
		t.Fatalf("left: VMs %v NICs %v IPs %v", fake.VMs(), fake.NICs(), fake.PublicIPs())
	}
}
