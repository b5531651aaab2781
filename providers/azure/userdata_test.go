package azure_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/leptonml/lepton/providers/azure"
	"github.com/leptonml/lepton/providers/azure/azurefake"
)

// The user data travels as osProfile.customData, base64-encoded, and like
// Azure the fake keeps it server-side: no answer carries it back. The launch
// hook's address becomes the VM's private and public IP; the terminate hook
// sees deletes and evictions.
func TestCustomDataAndHooks(t *testing.T) {
	fake := azurefake.New(subscription)
	var mu sync.Mutex
	var puts, answers []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		fake.Handler().ServeHTTP(rec, r)
		mu.Lock()
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/virtualMachines/") {
			puts = append(puts, string(body))
		}
		answers = append(answers, rec.Body.String())
		mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	launched := map[string]string{}
	causes := map[string]string{}
	fake.OnLaunch(func(vm azurefake.VM) string {
		mu.Lock()
		defer mu.Unlock()
		launched[vm.Name] = vm.CustomData
		return "127.0.0.8"
	})
	fake.OnTerminate(func(vm azurefake.VM, cause string) {
		mu.Lock()
		defer mu.Unlock()
		causes[vm.Name] += cause + ";"
	})
	p, err := azure.New(context.Background(), azure.Config{
		SubscriptionID: subscription, ResourceGroup: rg, Location: "eastus", Endpoint: srv.URL, PublicIP: true,
		ClientOptions: arm.ClientOptions{ClientOptions: policy.ClientOptions{
			Retry: policy.RetryOptions{RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond},
		}},
		PollFrequency: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/bash\necho \"node $((6*7))\" >\"$HOME/out\"\n"
	s := spec("eastus", "Standard_NC24ads_A100_v4")
	s.UserData, s.Spot = script, true
	node, err := p.Create(ctx(t), s)
	if err != nil {
		t.Fatal(err)
	}
	if node.Address != "127.0.0.8" {
		t.Errorf("address %q, want the hook's 127.0.0.8", node.Address)
	}
	vms := fake.VMs()
	encoded := base64.StdEncoding.EncodeToString([]byte(script))
	mu.Lock()
	if len(vms) != 1 || vms[0].CustomData != script || launched[node.ID] != script {
		t.Fatalf("custom data kept %q, seen at launch %q, want %q", vms[0].CustomData, launched[node.ID], script)
	}
	if len(puts) != 1 || !strings.Contains(puts[0], `"customData":"`+encoded+`"`) {
		t.Errorf("the VM PUT does not carry the base64 custom data: %v", puts)
	}
	for _, a := range answers {
		if strings.Contains(a, "customData") || strings.Contains(a, encoded) {
			t.Errorf("an answer carries the custom data back: %s", a)
		}
	}
	mu.Unlock()

	if !fake.Evict(rg, node.ID) {
		t.Fatal("Evict found no running VM")
	}
	if _, found, err := p.Read(ctx(t), node.Region, node.Zone, node.ID); err != nil || found {
		t.Fatalf("an evicted Spot VM (policy Delete) is gone: found=%v err=%v", found, err)
	}
	s2 := spec("eastus", "Standard_NC24ads_A100_v4")
	s2.Index, s2.ClientToken = 2, "apply-1/cluster.gpu/2"
	n2, err := p.Create(ctx(t), s2)
	if err != nil {
		t.Fatal(err)
	}
	if vms := fake.VMs(); len(vms) != 1 || vms[0].CustomData != "" {
		t.Errorf("a VM without user data: %+v", vms)
	}
	if err := p.Delete(ctx(t), n2); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if causes[node.ID] != azurefake.CauseEvicted+";" || causes[n2.ID] != azurefake.CauseDeleted+";" || len(launched) != 2 {
		t.Errorf("OnTerminate causes = %q, launched %q", causes, launched)
	}
}
