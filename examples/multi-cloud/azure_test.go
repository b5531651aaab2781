package multicloud_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	azruntime "github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/leptonml/lepton/providers/azure/azurefake"
	"github.com/leptonml/lepton/providers/catalog"
)

// azureARM serves the in-memory Azure (the SDK's own fake servers behind
// azurefake.Cloud) over HTTPS on 127.0.0.1, so the binary's real ARM clients
// reach it through the provider's endpoint argument. It returns the server and
// a PEM file with its certificate for SSL_CERT_FILE. A response the fake drops
// is a closed connection.
func azureARM(t *testing.T, az *azurefake.Cloud) (*httptest.Server, string) {
	t.Helper()
	// The SDK's fake servers dispatch on the API name the client puts in the
	// request context, which does not cross HTTP: name it from the verb and
	// path, and a long-running operation's status polls after the operation
	// that started it.
	var mu sync.Mutex
	lro := map[string]string{} // resource path -> API name of its running operation
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := armAPIName(r.Method, r.URL.Path)
		mu.Lock()
		if res, ok := strings.CutSuffix(r.URL.Path, "/get/fake/status"); ok {
			name = lro[res]
		} else if r.Method == http.MethodPut || r.Method == http.MethodDelete {
			lro[r.URL.Path] = name
		}
		mu.Unlock()
		req := r.Clone(context.WithValue(r.Context(), azruntime.CtxAPINameKey{}, name))
		req.RequestURI = ""
		req.URL.Scheme, req.URL.Host = "https", r.Host
		resp, err := az.Do(req)
		if err != nil {
			t.Logf("DEBUG %s %s %s: %T %v", name, r.Method, r.URL, err, err)
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	cert := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, cert
}

// armAPIName names the SDK client method of an ARM request.
func armAPIName(method, path string) string {
	kind := "?"
	switch {
	case strings.Contains(path, "/virtualMachines"):
		kind = "VirtualMachinesClient"
	case strings.Contains(path, "/networkInterfaces"):
		kind = "InterfacesClient"
	case strings.Contains(path, "/virtualNetworks"):
		kind = "VirtualNetworksClient"
	case strings.Contains(path, "/publicIPAddresses"):
		kind = "PublicIPAddressesClient"
	}
	switch method {
	case http.MethodPut:
		return kind + ".BeginCreateOrUpdate"
	case http.MethodDelete:
		return kind + ".BeginDelete"
	}
	if strings.HasSuffix(path, "/virtualMachines") {
		return kind + ".NewListPager"
	}
	return kind + ".Get"
}

// azureIdentity is an App Service managed identity endpoint
// (IDENTITY_ENDPOINT/IDENTITY_HEADER), one of the sources
// DefaultAzureCredential tries; it returns the environment to set and how
// many tokens were issued.
func azureIdentity(t *testing.T) ([]string, *atomic.Int64) {
	t.Helper()
	issued := &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-IDENTITY-HEADER") != "lepton-secret" {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"fake-token","expires_on":"%d","resource":%q,"token_type":"Bearer"}`,
			time.Now().Add(time.Hour).Unix(), r.URL.Query().Get("resource"))
	}))
	t.Cleanup(srv.Close)
	return []string{"IDENTITY_ENDPOINT=" + srv.URL + "/msi/token", "IDENTITY_HEADER=lepton-secret"}, issued
}

const azureConfig = `
provider "azure" {
  subscription_id = "00000000-1111-2222-3333-444444444444"
  resource_group  = "ml"
  location        = "eastus"
  endpoint        = %q
}
cluster "gpu" {
  gpu     = "T4"
  regions = ["eastus", "westus2"]
  nodes   = 2
}
output "placement" {
  value = "${cluster.gpu.cloud} ${cluster.gpu.region} ${cluster.gpu.instance_type}"
}
`

// The cluster's life on Azure through the binary: DefaultAzureCredential
// (from a managed identity endpoint), the real ARM clients over HTTPS to the
// SDK's fake servers, failover from a location without allocation, drift,
// resize and destroy, with no VM or network interface left behind.
func TestClusterLifeOnAzureFake(t *testing.T) {
	const sub = "00000000-1111-2222-3333-444444444444"
	az := azurefake.New(sub)
	srv, cert := azureARM(t, az)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(fmt.Sprintf(azureConfig, srv.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	ch, err := catalog.Choose(catalog.Default(), catalog.Filter{GPU: "T4", Clouds: []string{"azure"}, Regions: []string{"eastus", "westus2"}, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	best, next := ch.Best, ch.Best
	for _, f := range ch.Fallbacks {
		if f.Region != best.Region {
			next = f
			break
		}
	}
	if next.Region == best.Region {
		t.Fatalf("the test needs a fallback in another region: %s", ch.Summary())
	}

	base := offlineEnv(t, "SSL_CERT_FILE="+cert)
	out, err := run(t, base, dir, "apply", "-auto-approve")
	if err == nil || !strings.Contains(out, "AZURE_CLIENT_ID") {
		t.Fatalf("apply without credentials: err %v, want a message naming AZURE_CLIENT_ID:\n%s", err, out)
	}
	idEnv, issued := azureIdentity(t)
	env := append(base, idEnv...)
	az.FailLocation(best.Region, azurefake.AllocationFailed)
	out = must(t, env, dir, "apply", "-auto-approve")
	if want := fmt.Sprintf("capacity error in %s (AllocationFailed); trying azure", best.Region); !strings.Contains(out, want) {
		t.Errorf("apply output lacks %q:\n%s", want, out)
	}
	vms := az.VMs()
	if len(vms) != 2 || vms[0].Location != next.Region || vms[1].Location != next.Region {
		t.Fatalf("VMs %+v, want 2 in %s:\n%s", vms, next.Region, out)
	}
	if issued.Load() == 0 {
		t.Error("no token was requested from the managed identity endpoint")
	}
	if got, want := strings.TrimSpace(must(t, env, dir, "output", "-raw", "placement")), "azure "+next.Region+" "+next.InstanceType; got != want {
		t.Errorf("placement %q, want %q", got, want)
	}
	if out := must(t, env, dir, "plan"); !strings.Contains(out, "No changes.") {
		t.Errorf("plan after apply:\n%s", out)
	}

	// One VM deleted outside lepton: the plan replaces the cluster.
	az.DeleteVM("ml", vms[0].Name)
	out = must(t, env, dir, "plan")
	if !strings.Contains(out, "cluster.gpu must be replaced") || !strings.Contains(out, "1 of 2 nodes were terminated outside lepton") {
		t.Errorf("plan after drift:\n%s", out)
	}
	must(t, env, dir, "apply", "-auto-approve")
	if n := len(az.VMs()); n != 2 {
		t.Fatalf("%d VMs after the replacement, want 2", n)
	}
	must(t, env, dir, "destroy", "-auto-approve")
	if vms, nics := az.VMs(), az.NICs(); len(vms) != 0 || len(nics) != 0 {
		t.Fatalf("after destroy: VMs %v, NICs %v", vms, nics)
	}
}
