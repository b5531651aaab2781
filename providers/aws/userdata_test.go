package aws_test

import (
	"context"
	"encoding/base64"
	"sync"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/leptonml/lepton/providers/aws/awsfake"
)

// The user data reaches EC2 as RunInstances' base64 UserData and reads back
// through DescribeInstanceAttribute userData, byte for byte; the fake's launch
// hook gives the instance its address and the terminate hooks see the cause.
func TestUserDataAndHooks(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	var mu sync.Mutex
	launched := map[string]string{}
	causes := map[string]string{}
	fake.OnLaunch(func(in awsfake.Instance) string {
		mu.Lock()
		defer mu.Unlock()
		launched[in.ID] = in.UserData
		return "127.0.0.9"
	})
	fake.OnTerminate(func(in awsfake.Instance, cause string) {
		mu.Lock()
		defer mu.Unlock()
		causes[in.ID] += cause + ";"
	})
	p := newProvisioner(t, fake)
	ctx := context.Background()

	script := "#!/bin/bash\necho 'héllo' > \"$HOME/out\"\nprintf '\\x00\\xff'\n"
	s := spec("cluster.gpu", 0)
	s.UserData = script
	s.Spot = true
	node, err := p.Create(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if node.Address != "127.0.0.9" {
		t.Errorf("address %q, want the hook's 127.0.0.9", node.Address)
	}
	c := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: awssdk.String(fake.URL), Credentials: awsfake.Credentials()})
	attr, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: awssdk.String(node.ID), Attribute: types.InstanceAttributeNameUserData})
	if err != nil {
		t.Fatal(err)
	}
	got, err := base64.StdEncoding.DecodeString(awssdk.ToString(attr.UserData.Value))
	if err != nil || string(got) != script {
		t.Fatalf("userData attribute = %q (%v), want %q", got, err, script)
	}
	desc, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{node.ID}})
	if err != nil {
		t.Fatal(err)
	}
	inst := desc.Reservations[0].Instances[0]
	if awssdk.ToString(inst.PrivateIpAddress) != "127.0.0.9" || awssdk.ToString(inst.PublicIpAddress) != "127.0.0.9" {
		t.Errorf("private %v public %v, want the hook's address for both", awssdk.ToString(inst.PrivateIpAddress), awssdk.ToString(inst.PublicIpAddress))
	}

	// A spot interruption: shutting-down, then terminated, with EC2's reason.
	if !fake.Interrupt(node.ID) {
		t.Fatal("Interrupt found no running instance")
	}
	if fake.Interrupt(node.ID) {
		t.Error("a second Interrupt of the same instance reported success")
	}
	if _, found, err := p.Read(ctx, "us-east-1", node.Zone, node.ID); err != nil || found {
		t.Fatalf("Read after interruption: found=%v err=%v", found, err)
	}
	desc, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{node.ID}})
	if err != nil {
		t.Fatal(err)
	}
	inst = desc.Reservations[0].Instances[0]
	if inst.State.Name != types.InstanceStateNameTerminated || awssdk.ToString(inst.StateReason.Code) != "Server.SpotInstanceTermination" {
		t.Errorf("after interruption: state %s reason %+v", inst.State.Name, inst.StateReason)
	}

	// A plain terminate, and an instance without user data.
	s2 := spec("cluster.gpu", 1)
	n2, err := p.Create(ctx, s2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, n2); err != nil {
		t.Fatal(err)
	}
	attr, err = c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: awssdk.String(n2.ID), Attribute: types.InstanceAttributeNameUserData})
	if err != nil || attr.UserData != nil && awssdk.ToString(attr.UserData.Value) != "" {
		t.Errorf("instance without user data: %+v, %v", attr.UserData, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if launched[node.ID] != script || len(launched) != 2 {
		t.Errorf("OnLaunch saw %q", launched)
	}
	if causes[node.ID] != awsfake.CausePreempted+";" || causes[n2.ID] != awsfake.CauseTerminated+";" {
		t.Errorf("OnTerminate causes = %q", causes)
	}
}

// A create retried under the same client token with other user data (URLs
// signed at another time) is the same node: the running instance is adopted,
// never doubled; a terminated one is returned for the caller to replace.
func TestSameTokenOtherUserData(t *testing.T) {
	fake := awsfake.New()
	defer fake.Close()
	p := newProvisioner(t, fake)
	ctx := context.Background()
	s := spec("cluster.gpu", 0)
	s.ClientToken = "tok-0"
	s.UserData = "#!/bin/bash\n# signed at 10:00\n"
	first, err := p.Create(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	s.UserData = "#!/bin/bash\n# signed at 10:05\n"
	again, err := p.Create(ctx, s)
	if err != nil {
		t.Fatalf("retry with other user data: %v", err)
	}
	if again.ID != first.ID || len(fake.Instances()) != 1 {
		t.Fatalf("retry made %s (first %s), %d instances", again.ID, first.ID, len(fake.Instances()))
	}
	fake.Terminate(first.ID)
	s.UserData = "#!/bin/bash\n# signed at 11:00\n"
	gone, err := p.Create(ctx, s)
	if err == nil || gone.ID != first.ID || gone.Status != "terminated" {
		t.Fatalf("create after termination: %+v, %v; want the terminated instance and an error", gone, err)
	}
}
