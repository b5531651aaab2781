package gcp_test

import (
	"sync"
	"testing"

	"github.com/leptonml/lepton/providers/gcp/gcpfake"
)

// The user data travels as the instance's startup-script metadata item, byte
// for byte; the launch hook gives the instance its address (internal and
// external) and the terminate hook sees deletes and preemptions.
func TestStartupScriptAndHooks(t *testing.T) {
	fake, p := newFixture(t)
	var mu sync.Mutex
	scripts := map[string]string{}
	causes := map[string]string{}
	fake.OnLaunch(func(in gcpfake.Instance) string {
		mu.Lock()
		defer mu.Unlock()
		scripts[in.Name] = in.Metadata["startup-script"]
		return "127.0.0.7"
	})
	fake.OnTerminate(func(in gcpfake.Instance, cause string) {
		mu.Lock()
		defer mu.Unlock()
		causes[in.Name] += cause + ";"
	})
	script := "#!/bin/bash\nset -eu\necho \"it's $((1+1))\" >\"$HOME/out\"\n"
	s := spec("us-central1-a", "a2-highgpu-1g", "", 0)
	s.UserData = script
	s.Spot = true
	node, err := p.Create(ctx(t), s)
	if err != nil {
		t.Fatal(err)
	}
	if node.Address != "127.0.0.7" {
		t.Errorf("address %q, want the hook's 127.0.0.7", node.Address)
	}
	insts := fake.Instances()
	if len(insts) != 1 || insts[0].Metadata["startup-script"] != script {
		t.Fatalf("startup-script = %q, want %q", insts[0].Metadata["startup-script"], script)
	}
	if insts[0].Metadata["lepton-address"] != s.Address {
		t.Errorf("the other metadata items went missing: %v", insts[0].Metadata)
	}

	if !fake.Preempt(project, "us-central1-a", node.ID) {
		t.Fatal("Preempt found no running instance")
	}
	if _, found, err := p.Read(ctx(t), node.Region, node.Zone, node.ID); err != nil || found {
		t.Fatalf("a preempted Spot VM (termination action DELETE) is gone: found=%v err=%v", found, err)
	}

	s2 := spec("us-central1-a", "a2-highgpu-1g", "", 0)
	s2.Index, s2.ClientToken = 1, "apply-1/cluster.gpu/1"
	n2, err := p.Create(ctx(t), s2)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fake.Instances()[0].Metadata["startup-script"]; ok {
		t.Error("an instance without user data has a startup-script item")
	}
	if err := p.Delete(ctx(t), n2); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if scripts[node.ID] != script || len(scripts) != 2 {
		t.Errorf("OnLaunch saw %q", scripts)
	}
	if causes[node.ID] != gcpfake.CausePreempted+";" || causes[n2.ID] != gcpfake.CauseDeleted+";" {
		t.Errorf("OnTerminate causes = %q", causes)
	}
}
