package aws_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leptonml/lepton/providers/aws"
	"github.com/leptonml/lepton/providers/aws/awsfake"
	"github.com/leptonml/lepton/providers/cloud"
)

// newProvisioner is the real EC2 client (aws-sdk-go-v2) pointed at the fake.
func newProvisioner(t testing.TB, fake *awsfake.Server, mut ...func(*aws.Config)) *aws.Provisioner {
	t.Helper()
	isolateEnv(t)
	cfg := aws.Config{
		Region:       "us-east-1",
		Endpoint:     fake.URL,
		Credentials:  awsfake.Credentials(),
		PollInterval: 5 * time.Millisecond,
		MaxBackoff:   20 * time.Millisecond,
		WaitTimeout:  10 * time.Second,
	}
	for _, m := range mut {
		m(&cfg)
	}
	p, err := aws.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// isolateEnv keeps the developer's or CI's AWS settings out of the tests, and the
// SDK away from the instance metadata service (no network in tests).
func isolateEnv(t testing.TB) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_DEFAULT_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_EC2": "",
	} {
		t.Setenv(k, v)
	}
}

func spec(address string, index int) cloud.NodeSpec {
	return cloud.NodeSpec{
		Address: address, Lineage: "lineage-1", Index: index,
		ClientToken:  fmt.Sprintf("tok-%s-%d", address, index),
		InstanceType: "p4d.24xlarge", Region: "us-east-1", Zone: "use1-az4",
		GPUName: "A100", GPUCount: 8, DiskGB: 256,
	}
}

func TestCreateReadListDelete(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	fake.SetPendingPolls(2) // the waiter must poll past "pending"
	p := newProvisioner(t, fake)
	ctx := context.Background()

	node, err := p.Create(ctx, spec("cluster.gpu", 3))
	if err != nil {
		t.Fatal(err)
	}
	if node.Status != "running" || node.Zone != "us-east-1d" || node.Region != "us-east-1" || node.Index != 3 || !strings.HasPrefix(node.Address, "54.") {
		t.Fatalf("node = %+v", node)
	}
	insts := fake.Instances()
	if len(insts) != 1 {
		t.Fatalf("%d instances", len(insts))
	}
	in := insts[0]
	if in.ID != node.ID || in.InstanceType != "p4d.24xlarge" || in.ZoneID != "use1-az4" || in.Spot || in.VolumeSizeGB != 256 || in.ClientToken != "tok-cluster.gpu-3" {
		t.Fatalf("instance = %+v", in)
	}
	// The image was looked up at apply time: the newest x86_64 Deep Learning AMI.
	if in.ImageID != fake.NewestDefaultImage("us-east-1") {
		t.Fatalf("image %s, want the newest DLAMI %s", in.ImageID, fake.NewestDefaultImage("us-east-1"))
	}
	want := map[string]string{"Name": "lepton-cluster-gpu-3", "lepton:address": "cluster.gpu", "lepton:lineage": "lineage-1", "lepton:index": "3"}
	for k, v := range want {
		if in.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, in.Tags[k], v)
		}
	}

	got, found, err := p.Read(ctx, "us-east-1", node.Zone, node.ID)
	if err != nil || !found || got.ID != node.ID || got.Status != "running" || got.Address != node.Address {
		t.Fatalf("Read = %+v, %v, %v", got, found, err)
	}

	// Another lineage's instance and one in another region are not listed.
	other := spec("cluster.other", 0)
	other.Lineage = "lineage-2"
	if _, err := p.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	west := spec("cluster.west", 0)
	west.Region, west.Zone = "us-west-2", "usw2-az1"
	if _, err := p.Create(ctx, west); err != nil {
		t.Fatal(err)
	}
	nodes, err := p.ListByLineage(ctx, "lineage-1", nil)
	if err != nil || len(nodes) != 1 || nodes[0].ID != node.ID || nodes[0].Cluster != "cluster.gpu" || nodes[0].Index != 3 {
		t.Fatalf("ListByLineage(us-east-1) = %+v, %v", nodes, err)
	}
	nodes, err = p.ListByLineage(ctx, "lineage-1", []string{"us-east-1", "us-west-2"})
	if err != nil || len(nodes) != 2 || nodes[1].Cluster != "cluster.west" || nodes[1].Region != "us-west-2" {
		t.Fatalf("ListByLineage(both) = %+v, %v", nodes, err)
	}

	if err := p.Delete(ctx, node); err != nil {
		t.Fatal(err)
	}
	if _, found, err := p.Read(ctx, "us-east-1", node.Zone, node.ID); err != nil || found {
		t.Fatalf("Read after Delete: found=%v err=%v", found, err)
	}
	if err := p.Delete(ctx, node); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if err := p.Delete(ctx, cloud.Node{ID: "i-00000000000000bad", Region: "us-east-1"}); err != nil {
		t.Fatalf("Delete of an unknown instance: %v", err)
	}
	if nodes, _ := p.ListByLineage(ctx, "lineage-1", nil); len(nodes) != 0 {
		t.Fatalf("terminated instance still listed: %+v", nodes)
	}
	if n := fake.Calls("DescribeImages"); n != 2 {
		t.Errorf("DescribeImages called %d times, want once per region (2)", n)
	}
}

func TestSpotAndAvailabilityZoneName(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	p := newProvisioner(t, fake)
	s := spec("cluster.spot", 0)
	s.Spot, s.Zone, s.DiskGB = true, "us-east-1b", 0
	node, err := p.Create(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	in := fake.Instances()[0]
	if !in.Spot || in.Zone != "us-east-1b" || node.Zone != "us-east-1b" || in.VolumeSizeGB != 75 {
		t.Fatalf("instance = %+v, node = %+v", in, node)
	}
}

func TestImageOverride(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	fake.AddImage("us-east-1", awsfake.Image{ID: "ami-0custom0000000001", Name: "my image", OwnerID: "123456789012", Architecture: "x86_64", RootDevice: "/dev/sda1"})
	p := newProvisioner(t, fake)
	s := spec("cluster.gpu", 0)
	s.Image = "ami-0custom0000000001"
	if _, err := p.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if in := fake.Instances()[0]; in.ImageID != "ami-0custom0000000001" || fake.Calls("DescribeImages") != 0 {
		t.Fatalf("image %s, DescribeImages calls %d", in.ImageID, fake.Calls("DescribeImages"))
	}
	s.Image, s.ClientToken = "ami-0000000000missing", "tok-missing"
	_, err := p.Create(context.Background(), s)
	if err == nil || errors.Is(err, cloud.ErrCapacity) || !strings.Contains(err.Error(), "InvalidAMIID.NotFound") {
		t.Fatalf("missing image: %v", err)
	}
}

func TestImageLookupFailsClearly(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	p := newProvisioner(t, fake, func(c *aws.Config) { c.ImageName = "No Such AMI*" })
	_, err := p.Create(context.Background(), spec("cluster.gpu", 0))
	if err == nil || !strings.Contains(err.Error(), `no machine image named "No Such AMI*" owned by amazon in us-east-1`) {
		t.Fatalf("err = %v", err)
	}
}

// Drift: an instance terminated outside lepton reads as not found.
func TestDriftReadsNotFound(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	p := newProvisioner(t, fake)
	node, err := p.Create(context.Background(), spec("cluster.gpu", 0))
	if err != nil {
		t.Fatal(err)
	}
	if !fake.Terminate(node.ID) {
		t.Fatal("fake does not know the instance")
	}
	if _, found, err := p.Read(context.Background(), node.Region, node.Zone, node.ID); err != nil || found {
		t.Fatalf("Read after outside termination: found=%v err=%v", found, err)
	}
	if _, found, err := p.Read(context.Background(), node.Region, node.Zone, "i-0123456789abcdef0"); err != nil || found {
		t.Fatalf("Read of an unknown instance: found=%v err=%v", found, err)
	}
}

// A RunInstances whose answer is lost after EC2 did the work is retried by the
// SDK with the same ClientToken, and EC2 hands back the same instance.
func TestLostRunInstancesResponse(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode awsfake.DropMode
	}{{"connection closed", awsfake.DropClose}, {"500", awsfake.Drop500}} {
		t.Run(mode.name, func(t *testing.T) {
			fake := awsfake.New()
			defer fake.Close()
			fake.DropResponses("RunInstances", 1, mode.mode)
			p := newProvisioner(t, fake)
			node, err := p.Create(context.Background(), spec("cluster.gpu", 0))
			if err != nil {
				t.Fatal(err)
			}
			if got := fake.Calls("RunInstances"); got != 2 {
				t.Fatalf("RunInstances called %d times, want 2 (the lost one and the retry)", got)
			}
			insts := fake.Instances()
			if len(insts) != 1 || insts[0].ID != node.ID {
				t.Fatalf("%d instances after a retried create, want 1 (%+v)", len(insts), insts)
			}
		})
	}
}

func TestCapacityErrors(t *testing.T) {
	spot := true
	for _, code := range []string{"InsufficientInstanceCapacity", "InstanceLimitExceeded", "VcpuLimitExceeded",
		"MaxSpotInstanceCountExceeded", "SpotMaxPriceTooLow", "InsufficientCapacity", "Unsupported"} {
		t.Run(code, func(t *testing.T) {
			fake := awsfake.New()
			defer fake.Close()
			fake.FailCapacity(awsfake.CapacityRule{Region: "us-east-1", Zone: "use1-az4", InstanceType: "p4d.24xlarge", Spot: &spot, Code: code})
			p := newProvisioner(t, fake)
			s := spec("cluster.gpu", 0)
			s.Spot = true
			_, err := p.Create(context.Background(), s)
			if !errors.Is(err, cloud.ErrCapacity) || !strings.Contains(err.Error(), code) {
				t.Fatalf("err = %v, want ErrCapacity naming %s", err, code)
			}
			if n := fake.Calls("RunInstances"); n != 1 {
				t.Fatalf("RunInstances called %d times: a capacity error must not be retried in place", n)
			}
			if fake.Live() != 0 {
				t.Fatal("an instance was created")
			}
			// The rule is specific: on-demand, or another zone, works.
			s.Spot, s.ClientToken = false, "tok-on-demand"
			if _, err := p.Create(context.Background(), s); err != nil {
				t.Fatalf("on-demand in the same zone: %v", err)
			}
		})
	}
}

func TestIdempotentParameterMismatchIsNotCapacity(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	p := newProvisioner(t, fake)
	s := spec("cluster.gpu", 0)
	if _, err := p.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	s.InstanceType = "p5.48xlarge" // same token, different arguments
	_, err := p.Create(context.Background(), s)
	if err == nil || errors.Is(err, cloud.ErrCapacity) || !strings.Contains(err.Error(), "IdempotentParameterMismatch") {
		t.Fatalf("err = %v", err)
	}
}

func TestCredentials(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()

	// No credentials anywhere in the default chain.
	isolateEnv(t)
	p, err := aws.New(context.Background(), aws.Config{Region: "us-east-1", Endpoint: fake.URL})
	if err != nil {
		t.Fatalf("New must not need credentials (plans run without them): %v", err)
	}
	_, err = p.Create(context.Background(), spec("cluster.gpu", 0))
	if !errors.Is(err, cloud.ErrCredentials) || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") || !strings.Contains(err.Error(), "AWS_PROFILE") {
		t.Fatalf("missing credentials: %v", err)
	}
	if _, _, err := p.Read(context.Background(), "us-east-1", "", "i-1"); !errors.Is(err, cloud.ErrCredentials) {
		t.Fatalf("Read without credentials: %v", err)
	}
	if fake.Calls("") != 0 {
		t.Fatalf("%d calls reached EC2 without credentials", fake.Calls(""))
	}

	// Credentials from the environment are found by the default chain.
	t.Setenv("AWS_ACCESS_KEY_ID", awsfake.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	p, err = aws.New(context.Background(), aws.Config{Region: "us-east-1", Endpoint: fake.URL, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(context.Background(), spec("cluster.gpu", 0)); err != nil {
		t.Fatalf("with env credentials: %v", err)
	}

	// Credentials EC2 rejects.
	fake.RejectAccessKey(awsfake.AccessKey)
	_, err = p.Create(context.Background(), spec("cluster.gpu", 1))
	if !errors.Is(err, cloud.ErrCredentials) || !strings.Contains(err.Error(), "AuthFailure") {
		t.Fatalf("rejected credentials: %v", err)
	}
}

func TestListByLineagePaginates(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	p := newProvisioner(t, fake)
	offer := cloud.Offer{Cloud: "aws", InstanceType: "g4dn.xlarge", Region: "us-east-1", Zone: "use1-az1", GPUName: "T4", GPUCount: 1}
	indexes := make([]int, 105)
	for i := range indexes {
		indexes[i] = i
	}
	created, err := cloud.CreateNodes(context.Background(), p, offer, cloud.NodeSpec{Address: "cluster.many", Lineage: "lin-many"}, "seed", indexes, 16)
	if err != nil || len(created) != 105 {
		t.Fatalf("created %d: %v", len(created), err)
	}
	nodes, err := p.ListByLineage(context.Background(), "lin-many", nil)
	if err != nil || len(nodes) != 105 {
		t.Fatalf("listed %d: %v", len(nodes), err)
	}
	seen := map[int]bool{}
	for _, n := range nodes {
		seen[n.Index] = true
	}
	if len(seen) != 105 {
		t.Fatalf("%d distinct indexes", len(seen))
	}
}

// When every attempt's answer is lost, Create fails; creating again with the same
// token (a re-run apply) must find the instance EC2 made instead of making another.
func TestCreateRetriedAcrossCallsWithSameToken(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	fake.DropResponses("RunInstances", 3, awsfake.DropClose)
	p := newProvisioner(t, fake, func(c *aws.Config) { c.MaxAttempts = 3 })
	if _, err := p.Create(context.Background(), spec("cluster.gpu", 0)); err == nil {
		t.Fatal("Create succeeded although every answer was lost")
	}
	if fake.Live() != 1 {
		t.Fatalf("%d live instances after the lost creates, want 1", fake.Live())
	}
	node, err := p.Create(context.Background(), spec("cluster.gpu", 0))
	if err != nil {
		t.Fatal(err)
	}
	if insts := fake.Instances(); len(insts) != 1 || insts[0].ID != node.ID {
		t.Fatalf("instances %+v, want just %s", insts, node.ID)
	}
}

// Spot capacity that vanishes while the instance starts is a capacity error too,
// and the instance's ID comes back so the caller can clean up.
func TestCapacityLostWhileStarting(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	fake.FailCapacity(awsfake.CapacityRule{Zone: "use1-az4", Late: true})
	p := newProvisioner(t, fake)
	s := spec("cluster.gpu", 0)
	s.Spot = true
	node, err := p.Create(context.Background(), s)
	if !errors.Is(err, cloud.ErrCapacity) || !strings.Contains(err.Error(), "ended while starting") {
		t.Fatalf("err = %v", err)
	}
	if node.ID == "" || node.ID != fake.Instances()[0].ID {
		t.Fatalf("node %+v does not name the instance EC2 made", node)
	}
	if err := p.Delete(context.Background(), node); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
}

// EC2 forgets terminated instances; a Delete whose wait finds the instance gone
// has succeeded.
func TestDeleteWhenEC2ForgetsTheInstance(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	fake.SetForgetTerminated(true)
	p := newProvisioner(t, fake)
	node, err := p.Create(context.Background(), spec("cluster.gpu", 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(context.Background(), node); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if len(fake.Instances()) != 0 {
		t.Fatalf("fake still has %+v", fake.Instances())
	}
	if _, found, err := p.Read(context.Background(), node.Region, node.Zone, node.ID); err != nil || found {
		t.Fatalf("Read after the instance vanished: found=%v err=%v", found, err)
	}
}
