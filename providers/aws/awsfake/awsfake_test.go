package awsfake_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/leptonml/lepton/providers/aws/awsfake"
)

func client(fake *awsfake.Server, region string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       region,
		BaseEndpoint: awssdk.String(fake.URL),
		Credentials:  awsfake.Credentials(),
		// A rare reset of a loopback connection on a loaded machine must not
		// fail a test about the fake's answers; creates carry client tokens, so
		// a retry is idempotent.
		RetryMaxAttempts: 3,
	})
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Errors come back in EC2's shape, so the SDK decodes their codes.
func TestErrorCodes(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	c := client(fake, "eu-west-1")
	ctx := context.Background()
	img := fake.NewestDefaultImage("eu-west-1")
	run := func(mut func(*ec2.RunInstancesInput)) error {
		in := &ec2.RunInstancesInput{ImageId: awssdk.String(img), InstanceType: "g5.xlarge", MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(1)}
		mut(in)
		_, err := c.RunInstances(ctx, in)
		return err
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"zone ID of another region", run(func(in *ec2.RunInstancesInput) {
			in.Placement = &types.Placement{AvailabilityZoneId: awssdk.String("use1-az1")}
		}), "InvalidParameterValue"},
		{"zone name of another region", run(func(in *ec2.RunInstancesInput) {
			in.Placement = &types.Placement{AvailabilityZone: awssdk.String("us-east-1a")}
		}), "InvalidParameterValue"},
		{"unknown image", run(func(in *ec2.RunInstancesInput) { in.ImageId = awssdk.String("ami-0000") }), "InvalidAMIID.NotFound"},
		{"missing type", run(func(in *ec2.RunInstancesInput) { in.InstanceType = "" }), "MissingParameter"},
		{"unknown instance", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123"}})
			return err
		}(), "InvalidInstanceID.NotFound"},
		{"unknown filter", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: awssdk.String("colour"), Values: []string{"red"}}}})
			return err
		}(), "InvalidParameterValue"},
		{"terminate unknown", func() error {
			_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0123"}})
			return err
		}(), "InvalidInstanceID.NotFound"},
	}
	for _, tt := range tests {
		if got := code(tt.err); got != tt.want {
			t.Errorf("%s: code %q (%v), want %q", tt.name, got, tt.err, tt.want)
		}
	}
	if fake.Live() != 0 {
		t.Fatal("a failed call created an instance")
	}
}

// An unsigned request gets EC2's error document with HTTP 401.
func TestUnsignedRequest(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	resp, err := http.PostForm(fake.URL, url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var doc struct {
		XMLName xml.Name `xml:"Response"`
		Errors  []struct {
			Code string `xml:"Code"`
		} `xml:"Errors>Error"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil || resp.StatusCode != 401 || len(doc.Errors) != 1 || doc.Errors[0].Code != "AuthFailure" {
		t.Fatalf("status %d, body %s, err %v", resp.StatusCode, body, err)
	}
}

func TestLifecycleAndPagination(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	fake.SetPendingPolls(1)
	c := client(fake, "ap-northeast-1")
	ctx := context.Background()
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: awssdk.String(fake.NewestDefaultImage("ap-northeast-1")), InstanceType: "g5.xlarge",
		MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(12), ClientToken: awssdk.String("lifecycle-test"),
		Placement:         &types.Placement{AvailabilityZoneId: awssdk.String("apne1-az4")},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: awssdk.String("team"), Value: awssdk.String("ml")}}}},
	})
	if err != nil || len(out.Instances) != 12 {
		t.Fatalf("RunInstances: %v", err)
	}
	first := out.Instances[0]
	if first.State.Name != types.InstanceStateNamePending || awssdk.ToString(first.Placement.AvailabilityZone) != "ap-northeast-1d" {
		t.Fatalf("new instance %+v", first)
	}
	var states []string
	for i := 0; i < 2; i++ {
		d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{awssdk.ToString(first.InstanceId)}})
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, string(d.Reservations[0].Instances[0].State.Name))
	}
	if strings.Join(states, ",") != "pending,running" {
		t.Fatalf("states %v", states)
	}
	pages := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{
		Filters:    []types.Filter{{Name: awssdk.String("tag:team"), Values: []string{"m*"}}},
		MaxResults: awssdk.Int32(5),
	})
	n, calls := 0, 0
	for pages.HasMorePages() {
		p, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		calls++
		for _, r := range p.Reservations {
			n += len(r.Instances)
		}
	}
	if n != 12 || calls != 3 {
		t.Fatalf("paginated %d instances in %d pages, want 12 in 3", n, calls)
	}
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{awssdk.ToString(first.InstanceId)}}); err != nil {
		t.Fatal(err)
	}
	// Another region does not see them.
	other, err := client(fake, "us-east-1").DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil || len(other.Reservations) != 0 {
		t.Fatalf("us-east-1 sees %d reservations, %v", len(other.Reservations), err)
	}
}
