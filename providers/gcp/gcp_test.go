package gcp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/option"

	"github.com/leptonml/lepton/providers/cloud"
	"github.com/leptonml/lepton/providers/gcp"
	"github.com/leptonml/lepton/providers/gcp/gcpfake"
)

const (
	project = "lepton-test"
	lineage = "3f0c1c9e-8a51-4d0b-9c3e-2b7f1d0a9e11"
)

// newFixture starts a fake Compute API and a Provisioner that talks to it
// through the real client, with waits shortened for tests.
func newFixture(t *testing.T) (*gcpfake.Server, *gcp.Provisioner) {
	t.Helper()
	fake := gcpfake.New()
	t.Cleanup(fake.Close)
	fake.AddImageFamily(gcp.DefaultImageProject, gcp.DefaultImageFamily, "common-cu128-ubuntu-2204-nvidia-570-v20261101")
	p, err := gcp.New(context.Background(), gcp.Config{
		Project:      project,
		Region:       "us-central1",
		Endpoint:     fake.URL,
		NoAuth:       true,
		PollInterval: time.Millisecond,
		RetryDelay:   time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return fake, p
}

func spec(zone, machine, gpu string, count int) cloud.NodeSpec {
	return cloud.NodeSpec{
		Address:      `cluster.gpu["Train-A"]`,
		Lineage:      lineage,
		Index:        0,
		ClientToken:  "apply-1/cluster.gpu/0",
		InstanceType: machine,
		Region:       zone[:strings.LastIndexByte(zone, '-')],
		Zone:         zone,
		GPUName:      gpu,
		GPUCount:     count,
		DiskGB:       256,
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestCreateReadListDelete(t *testing.T) {
	fake, p := newFixture(t)
	s := spec("us-central1-a", "n1-standard-8", "T4", 2)
	node, err := p.Create(ctx(t), s)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if node.Status != "running" || node.Zone != "us-central1-a" || node.Region != "us-central1" || node.Address == "" {
		t.Fatalf("unexpected node %+v", node)
	}
	insts := fake.Instances()
	if len(insts) != 1 {
		t.Fatalf("want 1 instance, have %d", len(insts))
	}
	in := insts[0]
	checks := []struct{ name, got, want string }{
		{"name", in.Name, node.ID},
		{"machine type", in.MachineType, "n1-standard-8"},
		{"on host maintenance", in.OnHostMaintenance, "TERMINATE"},
		{"provisioning model", in.ProvisioningModel, ""},
		{"lineage label", in.Labels[gcp.LabelLineage], lineage},
		{"address label", in.Labels[gcp.LabelAddress], gcp.LabelValue(s.Address)},
		{"address metadata", in.Metadata["lepton-address"], s.Address},
		{"image", in.SourceImage, fake.URL + "/compute/v1/projects/deeplearning-platform-release/global/images/common-cu128-ubuntu-2204-nvidia-570-v20261101"},
		{"request id", in.RequestID, gcp.RequestID(node.ID, s.Zone, s.InstanceType)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if n := fake.Calls(gcpfake.CallInsert); n != 1 {
		t.Errorf("%d inserts for one create", n)
	}
	if in.Accelerators["nvidia-tesla-t4"] != 2 || in.DiskSizeGB != 256 {
		t.Errorf("accelerators %v disk %d", in.Accelerators, in.DiskSizeGB)
	}

	got, found, err := p.Read(ctx(t), "us-central1", "us-central1-a", node.ID)
	if err != nil || !found || got.ID != node.ID || got.Status != "running" {
		t.Fatalf("read: %+v %v %v", got, found, err)
	}

	nodes, err := p.ListByLineage(ctx(t), lineage, []string{"us-central1"})
	if err != nil || len(nodes) != 1 || nodes[0].ID != node.ID || nodes[0].Cluster != s.Address || nodes[0].Index != s.Index {
		t.Fatalf("list: %+v %v", nodes, err)
	}
	if nodes, _ := p.ListByLineage(ctx(t), "another-lineage", nil); len(nodes) != 0 {
		t.Fatalf("another lineage lists %+v", nodes)
	}
	if nodes, _ := p.ListByLineage(ctx(t), lineage, []string{"europe-west4"}); len(nodes) != 0 {
		t.Fatalf("another region lists %+v", nodes)
	}

	if err := p.Delete(ctx(t), node); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if n := len(fake.Instances()); n != 0 {
		t.Fatalf("%d instances left after delete", n)
	}
	if _, found, err := p.Read(ctx(t), "us-central1", "us-central1-a", node.ID); err != nil || found {
		t.Fatalf("read after delete: found=%v err=%v", found, err)
	}
	// Deleting what is already gone is not an error (destroy after drift).
	if err := p.Delete(ctx(t), node); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

func TestMachineTypesWithImplicitGPUs(t *testing.T) {
	tests := []struct {
		machine, gpu string
		count        int
		wantAccel    map[string]int
	}{
		{"a2-highgpu-8g", "A100", 8, map[string]int{}},
		{"a2-ultragpu-1g", "A100-80GB", 1, map[string]int{}},
		{"a3-highgpu-8g", "H100", 8, map[string]int{}},
		{"g2-standard-4", "L4", 1, map[string]int{}},
		{"n1-standard-16", "V100", 4, map[string]int{"nvidia-tesla-v100": 4}},
	}
	for _, tt := range tests {
		t.Run(tt.machine, func(t *testing.T) {
			fake, p := newFixture(t)
			if _, err := p.Create(ctx(t), spec("us-central1-b", tt.machine, tt.gpu, tt.count)); err != nil {
				t.Fatal(err)
			}
			in := fake.Instances()[0]
			if len(in.Accelerators) != len(tt.wantAccel) {
				t.Fatalf("accelerators %v, want %v", in.Accelerators, tt.wantAccel)
			}
			for k, v := range tt.wantAccel {
				if in.Accelerators[k] != v {
					t.Fatalf("accelerators %v, want %v", in.Accelerators, tt.wantAccel)
				}
			}
			if in.OnHostMaintenance != "TERMINATE" {
				t.Fatalf("onHostMaintenance %q", in.OnHostMaintenance)
			}
		})
	}
}

func TestSpot(t *testing.T) {
	fake, p := newFixture(t)
	s := spec("us-central1-a", "g2-standard-8", "L4", 1)
	s.Spot = true
	if _, err := p.Create(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	in := fake.Instances()[0]
	if in.ProvisioningModel != "SPOT" || in.TerminationAction != "DELETE" || in.AutomaticRestart == nil || *in.AutomaticRestart {
		t.Fatalf("spot scheduling: model %q action %q restart %v", in.ProvisioningModel, in.TerminationAction, in.AutomaticRestart)
	}
}

func TestDrift(t *testing.T) {
	fake, p := newFixture(t)
	s := spec("us-central1-a", "n1-standard-8", "T4", 1)
	node, err := p.Create(ctx(t), s)
	if err != nil {
		t.Fatal(err)
	}
	// Stopped outside lepton: still there, not running.
	fake.SetStatus(project, node.Zone, node.ID, "TERMINATED")
	got, found, err := p.Read(ctx(t), node.Region, node.Zone, node.ID)
	if err != nil || !found || got.Status != "stopped" {
		t.Fatalf("stopped instance reads %+v found=%v err=%v", got, found, err)
	}
	// Deleted outside lepton (or preempted): gone.
	fake.DeleteOutOfBand(project, node.Zone, node.ID)
	if _, found, err := p.Read(ctx(t), node.Region, node.Zone, node.ID); err != nil || found {
		t.Fatalf("deleted instance: found=%v err=%v", found, err)
	}
	// Recreating with the same token works even though the API remembers the
	// first insert's requestId.
	again, err := p.Create(ctx(t), s)
	if err != nil {
		t.Fatalf("recreate: %v", err)
	}
	if again.ID != node.ID || len(fake.Instances()) != 1 {
		t.Fatalf("recreate gave %+v, %d instances", again, len(fake.Instances()))
	}
}

func TestCapacityErrorsAreClassified(t *testing.T) {
	tests := []struct {
		failure  gcpfake.Failure
		wantCode string
	}{
		{gcpfake.ZoneExhausted, "ZONE_RESOURCE_POOL_EXHAUSTED"},
		{gcpfake.ZoneExhaustedWithDetails, "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"},
		{gcpfake.OperationQuotaExceeded, "QUOTA_EXCEEDED"},
		{gcpfake.HTTPQuotaExceeded, "quotaExceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.wantCode, func(t *testing.T) {
			fake, p := newFixture(t)
			fake.FailZone("us-central1-a", tt.failure)
			_, err := p.Create(ctx(t), spec("us-central1-a", "a2-highgpu-1g", "A100", 1))
			if !errors.Is(err, cloud.ErrCapacity) {
				t.Fatalf("error %v does not wrap cloud.ErrCapacity", err)
			}
			if !strings.Contains(err.Error(), tt.wantCode) {
				t.Fatalf("error %q does not name %s", err, tt.wantCode)
			}
			if n := len(fake.Instances()); n != 0 {
				t.Fatalf("%d instances after a failed insert", n)
			}
			// Another zone has capacity: the failover target works.
			if _, err := p.Create(ctx(t), spec("us-central1-b", "a2-highgpu-1g", "A100", 1)); err != nil {
				t.Fatalf("other zone: %v", err)
			}
		})
	}
}

func TestLostInsertResponseDoesNotDuplicate(t *testing.T) {
	fake, p := newFixture(t)
	fake.DropResponses(gcpfake.CallInsert, 2)
	node, err := p.Create(ctx(t), spec("us-central1-c", "n1-standard-8", "T4", 1))
	if err != nil {
		t.Fatalf("create with lost responses: %v", err)
	}
	if got := fake.Calls(gcpfake.CallInsert); got != 3 {
		t.Fatalf("insert called %d times, want 3 (2 lost + 1 answered)", got)
	}
	insts := fake.Instances()
	if len(insts) != 1 || insts[0].Name != node.ID {
		t.Fatalf("want exactly one instance, have %+v", insts)
	}
	// A whole Create repeated with the same token finds the same instance.
	again, err := p.Create(ctx(t), spec("us-central1-c", "n1-standard-8", "T4", 1))
	if err != nil || again.ID != node.ID || len(fake.Instances()) != 1 {
		t.Fatalf("repeated create: %+v %v, %d instances", again, err, len(fake.Instances()))
	}
}

func TestCreateThatStopsReportsTheInstance(t *testing.T) {
	fake, p := newFixture(t)
	fake.SetBootReads(1000) // never reaches RUNNING on its own
	c, cancel := context.WithCancel(ctx(t))
	go func() {
		// Let the insert land, then stop waiting.
		for len(fake.Instances()) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	node, err := p.Create(c, spec("us-central1-a", "n1-standard-8", "T4", 1))
	if err == nil {
		t.Fatal("create returned no error after its context was cancelled")
	}
	// The instance exists, so the caller must learn its ID to record or delete it.
	if insts := fake.Instances(); len(insts) != 1 || node.ID != insts[0].Name {
		t.Fatalf("node %+v after a cancelled wait; instances %+v", node, insts)
	}
}

func TestInvalidRequestIsNotRetriedOrCapacity(t *testing.T) {
	_, p := newFixture(t)
	_, err := p.Create(ctx(t), spec("us-central1-a", "n1-standard-8", "NOT-A-GPU", 1))
	if err == nil || errors.Is(err, cloud.ErrCapacity) {
		t.Fatalf("unknown GPU: %v", err)
	}
	s := spec("us-central1-a", "n1-standard-8", "T4", 1)
	s.Zone = ""
	if _, err := p.Create(ctx(t), s); err == nil || !strings.Contains(err.Error(), "zone") {
		t.Fatalf("missing zone: %v", err)
	}
}

func TestMissingCredentials(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", t.TempDir()+"/missing.json")
	_, err := gcp.New(context.Background(), gcp.Config{Project: project})
	if !errors.Is(err, cloud.ErrCredentials) {
		t.Fatalf("error %v does not wrap cloud.ErrCredentials", err)
	}
	for _, want := range []string{"GOOGLE_APPLICATION_CREDENTIALS", "gcloud auth application-default login"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestParallelCreates(t *testing.T) {
	fake, p := newFixture(t)
	fake.SetLatency(2 * time.Millisecond)
	const n = 24
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			s := spec("us-central1-a", "a2-highgpu-1g", "A100", 1)
			s.Index = i
			s.ClientToken = "tok-" + strings.Repeat("x", i)
			_, err := p.Create(ctx(t), s)
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := len(fake.Instances()); got != n {
		t.Fatalf("%d instances, want %d", got, n)
	}
	// The image family is looked up once for all of them.
	if got := fake.Calls(gcpfake.CallGetFromFamily); got != 1 {
		t.Fatalf("image family looked up %d times", got)
	}
	nodes, err := p.ListByLineage(ctx(t), lineage, nil)
	if err != nil || len(nodes) != n {
		t.Fatalf("list: %d nodes, %v", len(nodes), err)
	}
}

func TestUnauthenticatedIsCredentialError(t *testing.T) {
	fake := gcpfake.New()
	t.Cleanup(fake.Close)
	fake.RequireAuth(true)
	// Credentials given explicitly (none), so no Application Default Credentials lookup.
	p, err := gcp.New(context.Background(), gcp.Config{
		Project: project, Endpoint: fake.URL, ClientOptions: []option.ClientOption{option.WithoutAuthentication()},
		RetryDelay: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, _, err = p.Read(ctx(t), "us-central1", "us-central1-a", "lp-x")
	if !errors.Is(err, cloud.ErrCredentials) || !strings.Contains(err.Error(), "GOOGLE_APPLICATION_CREDENTIALS") {
		t.Fatalf("error %v is not a credential error naming GOOGLE_APPLICATION_CREDENTIALS", err)
	}
}

// BenchmarkCreate50Parallel10 creates 50 single-node clusters, 10 at a time,
// against a fake that answers every call after 50 ms. With instances RUNNING on
// their first read, a create is 3 round trips (insert, operation poll, get),
// plus one image-family lookup shared by all: the ideal is 50 ms + 5 waves x 150 ms.
func BenchmarkCreate50Parallel10(b *testing.B) {
	const latency = 50 * time.Millisecond
	ideal := latency + 5*3*latency
	for i := 0; i < b.N; i++ {
		fake := gcpfake.New()
		fake.AddImageFamily(gcp.DefaultImageProject, gcp.DefaultImageFamily, "img")
		fake.SetLatency(latency)
		fake.SetBootReads(0)
		p, err := gcp.New(context.Background(), gcp.Config{Project: project, Endpoint: fake.URL, NoAuth: true, PollInterval: time.Millisecond})
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
				s := spec("us-central1-a", "a2-highgpu-1g", "A100", 1)
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
		p.Close()
		fake.Close()
	}
}

func TestImageOverrideSkipsFamilyLookup(t *testing.T) {
	fake, p := newFixture(t)
	s := spec("us-central1-a", "g2-standard-8", "L4", 1)
	s.Image = "projects/my-proj/global/images/my-cuda-image"
	if _, err := p.Create(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	if got := fake.Instances()[0].SourceImage; got != s.Image {
		t.Fatalf("image %q, want %q", got, s.Image)
	}
	if n := fake.Calls(gcpfake.CallGetFromFamily); n != 0 {
		t.Fatalf("family looked up %d times despite an override", n)
	}
}

func TestMissingImageFamilyIsAClearError(t *testing.T) {
	fake := gcpfake.New()
	t.Cleanup(fake.Close)
	p, err := gcp.New(context.Background(), gcp.Config{Project: project, Endpoint: fake.URL, NoAuth: true, ImageFamily: "no-such-family"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Create(ctx(t), spec("us-central1-a", "g2-standard-8", "L4", 1))
	if err == nil || !strings.Contains(err.Error(), "no-such-family") || errors.Is(err, cloud.ErrCapacity) {
		t.Fatalf("error %v", err)
	}
}

func TestLoopbackEndpointNeedsNoCredentials(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", t.TempDir()+"/missing.json")
	fake := gcpfake.New()
	t.Cleanup(fake.Close)
	fake.AddImageFamily(gcp.DefaultImageProject, gcp.DefaultImageFamily, "img")
	p, err := gcp.New(context.Background(), gcp.Config{Project: project, Endpoint: fake.URL, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatalf("a loopback endpoint should not need Application Default Credentials: %v", err)
	}
	defer p.Close()
	if _, err := p.Create(ctx(t), spec("us-central1-f", "g2-standard-4", "L4", 1)); err != nil {
		t.Fatal(err)
	}
}
