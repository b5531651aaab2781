package failovertest_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/leptonml/lepton/providers/aws"
	"github.com/leptonml/lepton/providers/aws/awsfake"
	"github.com/leptonml/lepton/providers/azure"
	"github.com/leptonml/lepton/providers/azure/azurefake"
	"github.com/leptonml/lepton/providers/catalog"
	"github.com/leptonml/lepton/providers/cloud"
	"github.com/leptonml/lepton/providers/gcp"
	"github.com/leptonml/lepton/providers/gcp/gcpfake"
)

// GCP's cheapest zones are exhausted: the cluster fails over zone by zone, then to
// another cloud, and lands on AWS; nothing is left behind on GCP.
func TestFailoverToAnotherCloud(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "", "AWS_REGION": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_EC2": "",
	} {
		t.Setenv(k, v)
	}
	ec2 := awsfake.New()
	defer ec2.Close()
	awsProv, err := aws.New(ctx, aws.Config{Region: "us-east-1", Endpoint: ec2.URL, Credentials: awsfake.Credentials(),
		PollInterval: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	gce := gcpfake.New()
	defer gce.Close()
	gce.AddImageFamily(gcp.DefaultImageProject, gcp.DefaultImageFamily, "common-cu128-ubuntu-2204-nvidia-570-v20261101")
	gcpProv, err := gcp.New(ctx, gcp.Config{Project: "lepton-test", Region: "us-central1", Endpoint: gce.URL, NoAuth: true,
		PollInterval: time.Millisecond, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer gcpProv.Close()

	choice, err := catalog.Choose(catalog.Default(), catalog.Filter{
		GPU: "A100:8", Clouds: []string{"gcp", "aws"}, Regions: []string{"us-central1", "us-east-1"}, Nodes: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if choice.Best.Cloud != "gcp" {
		t.Fatalf("cheapest offer %s; the test expects GCP first", choice.Best)
	}
	for _, z := range []string{"us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"} {
		gce.FailZone(z, gcpfake.ZoneExhausted)
	}

	var attempts []string
	res, err := cloud.Provision(ctx, cloud.Request{
		Offers:    choice.CloudOffers(),
		Nodes:     2,
		Template:  cloud.NodeSpec{Address: "cluster.gpu", Lineage: "lin-mc", DiskGB: 200},
		TokenSeed: "lin-mc/1",
		Report: func(a cloud.Attempt) {
			outcome := "ok"
			if a.Err != nil {
				outcome = "no capacity"
				if !errors.Is(a.Err, cloud.ErrCapacity) {
					outcome = a.Err.Error()
				}
			}
			attempts = append(attempts, fmt.Sprintf("%s %s %s: %s", a.Offer.Cloud, a.Offer.InstanceType, a.Offer.Zone, outcome))
		},
	}, map[string]cloud.Provisioner{"aws": awsProv, "gcp": gcpProv})
	if err != nil {
		t.Fatalf("%v\nattempts:\n%s", err, strings.Join(attempts, "\n"))
	}
	want := []string{
		"gcp a2-highgpu-8g us-central1-a: no capacity",
		"gcp a2-highgpu-8g us-central1-b: no capacity",
		"gcp a2-highgpu-8g us-central1-c: no capacity",
		"gcp a2-highgpu-8g us-central1-f: no capacity",
		"aws p4d.24xlarge use1-az1: ok",
	}
	if strings.Join(attempts, "\n") != strings.Join(want, "\n") {
		t.Fatalf("attempts:\n%s\nwant:\n%s", strings.Join(attempts, "\n"), strings.Join(want, "\n"))
	}
	if res.Offer.Cloud != "aws" || len(res.Nodes) != 2 || len(res.Leaked) != 0 {
		t.Fatalf("landed on %v with %d nodes, leaked %v", res.Offer, len(res.Nodes), res.Leaked)
	}
	if ec2.Live() != 2 {
		t.Fatalf("EC2 has %d live instances, want 2", ec2.Live())
	}
	for _, in := range gce.Instances() {
		switch in.Status {
		case "PROVISIONING", "STAGING", "RUNNING":
			t.Errorf("GCP instance %s (%s) left behind", in.Name, in.Status)
		}
	}
}

// Three clouds: GCP's zones are exhausted and Azure's region has no allocation
// for the size, so the cluster lands on AWS after trying offers in price order
// across all three; the attempts name each one.
func TestFailoverAcrossThreeClouds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "", "AWS_REGION": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_EC2": "",
	} {
		t.Setenv(k, v)
	}
	ec2 := awsfake.New()
	defer ec2.Close()
	awsProv, err := aws.New(ctx, aws.Config{Region: "us-east-1", Endpoint: ec2.URL, Credentials: awsfake.Credentials(),
		PollInterval: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	gce := gcpfake.New()
	defer gce.Close()
	gce.AddImageFamily(gcp.DefaultImageProject, gcp.DefaultImageFamily, "common-cu128-ubuntu-2204-nvidia-570-v20261101")
	gcpProv, err := gcp.New(ctx, gcp.Config{Project: "lepton-test", Region: "us-central1", Endpoint: gce.URL, NoAuth: true,
		PollInterval: time.Millisecond, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer gcpProv.Close()
	azr := azurefake.New("00000000-1111-2222-3333-444444444444")
	azProv, err := azure.New(ctx, azure.Config{
		SubscriptionID: "00000000-1111-2222-3333-444444444444",
		ResourceGroup:  "lepton-rg",
		Location:       "eastus",
		Credential:     &azfake.TokenCredential{},
		ClientOptions: arm.ClientOptions{ClientOptions: policy.ClientOptions{
			Transport: azr,
			Retry:     policy.RetryOptions{RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond},
		}},
		PollFrequency: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}

	choice, err := catalog.Choose(catalog.Default(), catalog.Filter{
		GPU: "A100:8", Regions: []string{"us-central1", "eastus", "us-east-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range []string{"us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"} {
		gce.FailZone(z, gcpfake.ZoneExhausted)
	}
	azr.FailLocation("eastus", azurefake.AllocationFailed)

	var attempts []string
	res, err := cloud.Provision(ctx, cloud.Request{
		Offers:    choice.CloudOffers(),
		Nodes:     1,
		Template:  cloud.NodeSpec{Address: "cluster.gpu", Lineage: "lin-3", DiskGB: 200},
		TokenSeed: "lin-3/1",
		Report: func(a cloud.Attempt) {
			outcome := "ok"
			if a.Err != nil {
				outcome = "no capacity"
				if !errors.Is(a.Err, cloud.ErrCapacity) {
					outcome = a.Err.Error()
				}
			}
			attempts = append(attempts, fmt.Sprintf("%s %s %s: %s", a.Offer.Cloud, a.Offer.InstanceType, a.Offer.Region, outcome))
		},
	}, map[string]cloud.Provisioner{"aws": awsProv, "gcp": gcpProv, "azure": azProv})
	if err != nil {
		t.Fatalf("%v\nattempts:\n%s", err, strings.Join(attempts, "\n"))
	}
	want := []string{
		"azure Standard_ND96asr_v4 eastus: no capacity",
		"gcp a2-highgpu-8g us-central1: no capacity",
		"gcp a2-highgpu-8g us-central1: no capacity",
		"gcp a2-highgpu-8g us-central1: no capacity",
		"gcp a2-highgpu-8g us-central1: no capacity",
		"azure Standard_ND96amsr_A100_v4 eastus: no capacity", // 32.77 USD/hr, just under p4d's 32.7726
		"aws p4d.24xlarge us-east-1: ok",
	}
	if strings.Join(attempts, "\n") != strings.Join(want, "\n") {
		t.Fatalf("attempts:\n%s\nwant:\n%s", strings.Join(attempts, "\n"), strings.Join(want, "\n"))
	}
	if res.Offer.Cloud != "aws" || len(res.Nodes) != 1 || len(res.Leaked) != 0 || ec2.Live() != 1 {
		t.Fatalf("landed on %v with %d nodes (EC2 live %d), leaked %v", res.Offer, len(res.Nodes), ec2.Live(), res.Leaked)
	}
}
