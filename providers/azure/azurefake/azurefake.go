// Package azurefake is an in-memory Azure for tests, built on the Azure SDK's
// own fake servers: armcompute/v6/fake.VirtualMachinesServer and
// armnetwork/v6/fake's InterfacesServer, VirtualNetworksServer and
// PublicIPAddressesServer, answered from state this package keeps. Cloud is a
// policy.Transporter: give it to the real clients (arm.ClientOptions.Transport)
// together with an azfake.TokenCredential and they run with no network.
//
// Knobs: fail VM creates in a location with Azure's real error codes
// (AllocationFailed and ZonalAllocationFailed as failed long-running operations,
// SkuNotAvailable and QuotaExceeded as refused requests, OperationNotAllowed
// with the quota message as a raw HTTP 409), lose VM create responses, add latency.
package azurefake

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	computefake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	networkfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6/fake"
)

// Azure error codes the fake can answer VM creates with.
const (
	AllocationFailed      = "AllocationFailed"
	ZonalAllocationFailed = "ZonalAllocationFailed"
	SkuNotAvailable       = "SkuNotAvailable"
	QuotaExceeded         = "QuotaExceeded"
	// OperationNotAllowedQuota is OperationNotAllowed with the message Azure
	// sends when a create would exceed a vCPU quota.
	OperationNotAllowedQuota = "OperationNotAllowed"
)

// VM is a snapshot of one virtual machine the fake holds.
type VM struct {
	ResourceGroup, VMID                                                           string
	Name, Location, Size, Priority, EvictionPolicy, ProvisioningState, PowerState string
	MaxPrice                                                                      *float64
	Zones                                                                         []string
	Tags                                                                          map[string]string
	NICIDs                                                                        []string
	OSDiskGB                                                                      int32
	Image                                                                         string // publisher:offer:sku:version, or an image ID
	// CustomData is the VM's custom data, decoded. Azure keeps it server-side:
	// the API never returns it, and neither does this fake over ARM.
	CustomData string
}

// Causes OnTerminate reports.
const (
	CauseDeleted = "deleted" // a VM delete, or DeleteVM
	CauseEvicted = "evicted" // Evict: a Spot eviction
)

// Cloud is the in-memory Azure. Create it with New.
type Cloud struct {
	subscription string
	computeSrv   *computefake.ServerFactory
	network      *networkfake.ServerFactoryTransport

	mu         sync.Mutex
	vms        map[string]*armcompute.VirtualMachine          // rg/name
	nics       map[string]*armnetwork.Interface               // rg/name
	vnets      map[string]*armnetwork.VirtualNetwork          // rg/name
	publicIPs  map[string]*armnetwork.PublicIPAddress         // rg/name
	failures   map[string]string                              // location -> error code
	computeTr  map[string]*computefake.ServerFactoryTransport // per VM name, see computeFor
	dropCreate int
	latency    time.Duration
	calls      map[string]int
	hosts      map[string]bool
	lroMethod  map[string]string // resource path -> Begin* API name of its last long-running call
	seq        int

	customData  map[string]string // rg/name -> decoded custom data, never returned by the API
	launched    map[string]bool   // rg/name of VMs OnLaunch saw and OnTerminate has not
	onLaunch    func(VM) string
	onTerminate func(VM, string)
}

// OnLaunch sets a function called when a VM create succeeds for a VM that was
// not already running (an update of a running VM is no launch). The address it
// returns, if any, becomes the private IP of the VM's network interface and
// the address of its public IP. It is called with the fake's lock held: it
// must return quickly and must not call the Cloud.
func (c *Cloud) OnLaunch(f func(VM) (ip string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onLaunch = f
}

// OnTerminate sets a function called once when a VM OnLaunch saw is deleted or
// evicted, with the cause. Same rules as OnLaunch.
func (c *Cloud) OnTerminate(f func(vm VM, cause string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onTerminate = f
}

// Evict reclaims a Spot VM as Azure does: with eviction policy Delete the VM
// (and what was marked to go with it) is deleted, otherwise it is deallocated.
// It reports whether the VM existed and was running.
func (c *Cloud) Evict(resourceGroup, name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := resourceGroup + "/" + name
	vm, ok := c.vms[key]
	if !ok || powerState(vm) != "running" {
		return false
	}
	if p := vm.Properties; p.EvictionPolicy != nil && *p.EvictionPolicy == armcompute.VirtualMachineEvictionPolicyTypesDeallocate {
		p.InstanceView = &armcompute.VirtualMachineInstanceView{Statuses: []*armcompute.InstanceViewStatus{{Code: to.Ptr("PowerState/deallocated")}}}
		c.terminated(resourceGroup, vm, CauseEvicted)
		return true
	}
	c.terminated(resourceGroup, vm, CauseEvicted)
	c.removeVM(resourceGroup, vm)
	return true
}

// terminated calls the OnTerminate hook once per launched VM.
func (c *Cloud) terminated(rg string, vm *armcompute.VirtualMachine, cause string) {
	key := rg + "/" + str(vm.Name)
	if !c.launched[key] {
		return
	}
	delete(c.launched, key)
	if c.onTerminate != nil {
		c.onTerminate(c.snapshot(rg, vm), cause)
	}
}

// launch calls the OnLaunch hook for a VM just created and gives its network
// interface and public IP the address the hook returns.
func (c *Cloud) launch(rg string, vm *armcompute.VirtualMachine) {
	key := rg + "/" + str(vm.Name)
	if c.onLaunch == nil || c.launched[key] {
		return
	}
	c.launched[key] = true
	ip := c.onLaunch(c.snapshot(rg, vm))
	if ip == "" {
		return
	}
	for _, ref := range vm.Properties.NetworkProfile.NetworkInterfaces {
		nic, ok := c.nics[rg+"/"+lastSegment(str(ref.ID))]
		if !ok || nic.Properties == nil {
			continue
		}
		for _, ipc := range nic.Properties.IPConfigurations {
			if ipc.Properties == nil {
				continue
			}
			ipc.Properties.PrivateIPAddress = to.Ptr(ip)
			if pip := ipc.Properties.PublicIPAddress; pip != nil {
				if stored, ok := c.publicIPs[rg+"/"+lastSegment(str(pip.ID))]; ok && stored.Properties != nil {
					stored.Properties.IPAddress = to.Ptr(ip)
				}
			}
		}
	}
}

// New returns an empty cloud for subscriptionID.
func New(subscriptionID string) *Cloud {
	c := &Cloud{
		subscription: subscriptionID,
		vms:          map[string]*armcompute.VirtualMachine{},
		nics:         map[string]*armnetwork.Interface{},
		vnets:        map[string]*armnetwork.VirtualNetwork{},
		publicIPs:    map[string]*armnetwork.PublicIPAddress{},
		failures:     map[string]string{},
		calls:        map[string]int{},
		hosts:        map[string]bool{},
		lroMethod:    map[string]string{},
		computeTr:    map[string]*computefake.ServerFactoryTransport{},
		customData:   map[string]string{},
		launched:     map[string]bool{},
	}
	c.computeSrv = &computefake.ServerFactory{
		VirtualMachinesServer: computefake.VirtualMachinesServer{
			BeginCreateOrUpdate: c.vmCreate,
			Get:                 c.vmGet,
			BeginDelete:         c.vmDelete,
			NewListPager:        c.vmList,
		},
	}
	c.network = networkfake.NewServerFactoryTransport(&networkfake.ServerFactory{
		InterfacesServer: networkfake.InterfacesServer{
			BeginCreateOrUpdate: c.nicCreate,
			Get:                 c.nicGet,
			BeginDelete:         c.nicDelete,
		},
		VirtualNetworksServer: networkfake.VirtualNetworksServer{
			BeginCreateOrUpdate: c.vnetCreate,
			Get:                 c.vnetGet,
		},
		PublicIPAddressesServer: networkfake.PublicIPAddressesServer{
			BeginCreateOrUpdate: c.ipCreate,
			Get:                 c.ipGet,
			BeginDelete:         c.ipDelete,
		},
	})
	return c
}

// FailLocation makes VM creates in location fail with code (one of the
// constants above); an empty code clears it.
func (c *Cloud) FailLocation(location, code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures[location] = code
}

// DropCreateResponses makes the next n VM create requests be carried out but
// their responses lost (the client sees a connection error).
func (c *Cloud) DropCreateResponses(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropCreate = n
}

// SetLatency delays every request by d.
func (c *Cloud) SetLatency(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latency = d
}

// Calls reports how many requests reached an API method, by SDK method name
// (for example "VirtualMachinesClient.BeginCreateOrUpdate"); polls of a
// long-running operation are not counted, resent requests are.
func (c *Cloud) Calls(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[method]
}

// lroStatusSuffix is what the SDK's fake poller appends to a resource path to
// poll a long-running operation the fake servers started.
const lroStatusSuffix = "/get/fake/status"

// Handler serves the same fake over HTTP, for clients that can only be given
// an endpoint (lepton's `endpoint` provider argument): start it with
// httptest.NewServer on 127.0.0.1. Requests arriving over HTTP carry no SDK
// API name, so it is derived from the verb and path; polls of a long-running
// operation are matched to the call that started it.
func (c *Cloud) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimSuffix(r.URL.Path, lroStatusSuffix)
		name := apiName(r)
		c.mu.Lock()
		if strings.HasSuffix(r.URL.Path, lroStatusSuffix) {
			name = c.lroMethod[path]
		} else if strings.Contains(name, ".Begin") {
			c.lroMethod[path] = name
		}
		c.mu.Unlock()
		req := r.Clone(context.WithValue(r.Context(), runtime.CtxAPINameKey{}, name))
		req.URL.Scheme, req.URL.Host = "http", r.Host
		resp, err := c.Do(req)
		if err != nil {
			var rerr *azcore.ResponseError
			if errors.As(err, &rerr) && rerr.RawResponse != nil {
				resp = rerr.RawResponse
				if strings.HasSuffix(r.URL.Path, lroStatusSuffix) {
					// In process the failure travels as an error; over HTTP the
					// SDK's fake poller reads it from this header.
					resp.Header.Set("Fake-Poller-Status", "Failed")
				}
			} else {
				// A lost answer (or a fake failure) reaches the client as a cut connection.
				if hj, ok := w.(http.Hijacker); ok {
					if conn, _, herr := hj.Hijack(); herr == nil {
						conn.Close()
						return
					}
				}
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
}

// Hosts returns the hosts requests were addressed to, sorted.
func (c *Cloud) Hosts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sortedKeys(c.hosts)
}

// Do routes a request to the compute or network fake by its resource provider.
func (c *Cloud) Do(req *http.Request) (*http.Response, error) {
	method, _ := req.Context().Value(runtime.CtxAPINameKey{}).(string)
	if method == "" {
		method = apiName(req)
	}
	c.mu.Lock()
	if !strings.HasSuffix(req.URL.Path, lroStatusSuffix) {
		c.calls[method]++
	}
	c.hosts[req.URL.Host] = true
	latency := c.latency
	drop := false
	failCode := ""
	if method == "VirtualMachinesClient.BeginCreateOrUpdate" && req.Method == http.MethodPut {
		if c.dropCreate > 0 {
			c.dropCreate--
			drop = true
		}
		failCode = c.failures[locationOf(req)]
	}
	c.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	if failCode == OperationNotAllowedQuota {
		// A raw ARM error response, so the SDK builds the ResponseError (code
		// and message) from the body as it does against Azure.
		return rawError(req, http.StatusConflict, OperationNotAllowedQuota,
			"Operation could not be completed as it results in exceeding approved standardNCADSA100v4Family Cores quota. "+
				"Additional details - Deployment Model: Resource Manager, Location: "+locationOf(req)+", Current Limit: 0, Current Usage: 0, "+
				"Additional Required: 24, (Minimum) New Limit Required: 24."), nil
	}
	var resp *http.Response
	var err error
	if strings.Contains(req.URL.Path, "/providers/Microsoft.Compute/") {
		vm := vmNameOf(req.URL.Path)
		resp, err = c.computeFor(vm).Do(req)
		if err != nil {
			c.forgetCompute(vm)
		}
	} else {
		resp, err = c.network.Do(req)
	}
	if drop && err == nil {
		resp.Body.Close()
		return nil, errors.New("read tcp 127.0.0.1:50000->127.0.0.1:443: read: connection reset by peer")
	}
	return resp, err
}

// computeFor returns the SDK fake transport for one VM's requests. The fake
// transports remember each long-running operation by resource path and do not
// forget one that ended in an error, so a later create of the same name would
// be answered from the old, finished operation. One transport per VM name,
// dropped after an error, keeps operations on one VM from leaking into the next
// while operations on different VMs run concurrently.
func (c *Cloud) computeFor(vm string) *computefake.ServerFactoryTransport {
	c.mu.Lock()
	defer c.mu.Unlock()
	tr, ok := c.computeTr[vm]
	if !ok {
		tr = computefake.NewServerFactoryTransport(c.computeSrv)
		c.computeTr[vm] = tr
	}
	return tr
}

func (c *Cloud) forgetCompute(vm string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.computeTr, vm)
}

// vmNameOf returns the VM name in a virtualMachines path ("" for a list).
func vmNameOf(path string) string {
	const seg = "/virtualMachines/"
	i := strings.Index(path, seg)
	if i < 0 {
		return ""
	}
	name := path[i+len(seg):]
	if j := strings.IndexByte(name, '/'); j >= 0 {
		name = name[:j]
	}
	return name
}

// apiName names the SDK method from the provider path and verb, for requests
// that carry no API name (the poller's follow-up requests).
func apiName(req *http.Request) string {
	p := req.URL.Path
	kind := "?"
	switch {
	case strings.Contains(p, "/virtualMachines"):
		kind = "VirtualMachinesClient"
	case strings.Contains(p, "/networkInterfaces/"):
		kind = "InterfacesClient"
	case strings.Contains(p, "/virtualNetworks/"):
		kind = "VirtualNetworksClient"
	case strings.Contains(p, "/publicIPAddresses/"):
		kind = "PublicIPAddressesClient"
	}
	switch req.Method {
	case http.MethodPut:
		return kind + ".BeginCreateOrUpdate"
	case http.MethodDelete:
		return kind + ".BeginDelete"
	}
	// A list's next pages come from the fake pager's nextLink, .../fake_page_N.
	if strings.HasSuffix(p, "/virtualMachines") || strings.Contains(p, "/virtualMachines/fake_page_") {
		return kind + ".NewListPager"
	}
	return kind + ".Get"
}

// locationOf reads the location from a create request body without consuming it.
func locationOf(req *http.Request) string {
	if req.Body == nil {
		return ""
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return ""
	}
	var v struct {
		Location string `json:"location"`
	}
	_ = json.Unmarshal(body, &v)
	return v.Location
}

func rawError(req *http.Request, status int, code, message string) *http.Response {
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": message}})
	return &http.Response{
		StatusCode: status,
		Status:     fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Header:     http.Header{"Content-Type": []string{"application/json; charset=utf-8"}, "X-Ms-Error-Code": []string{code}},
		Body:       io.NopCloser(bytes.NewReader(body)),
		Request:    req,
	}
}

func (c *Cloud) id(rg, provider, kind, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s/%s", c.subscription, rg, provider, kind, name)
}

// ---- virtual machines

func (c *Cloud) vmCreate(ctx context.Context, rg, name string, vm armcompute.VirtualMachine, _ *armcompute.VirtualMachinesClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armcompute.VirtualMachinesClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	location := str(vm.Location)
	if msg := validateVM(vm); msg != "" {
		errResp.SetResponseError(http.StatusBadRequest, "InvalidParameter")
		return
	}
	for _, ref := range vm.Properties.NetworkProfile.NetworkInterfaces {
		if _, ok := c.nics[rg+"/"+lastSegment(str(ref.ID))]; !ok {
			errResp.SetResponseError(http.StatusBadRequest, "InvalidResourceReference")
			return
		}
	}
	switch code := c.failures[location]; code {
	case SkuNotAvailable, QuotaExceeded:
		errResp.SetResponseError(http.StatusConflict, code)
		return
	case AllocationFailed, ZonalAllocationFailed:
		// The VM resource is accepted, then its allocation fails: Azure leaves
		// it behind in the Failed provisioning state.
		failed := vm
		failed.ID = to.Ptr(c.id(rg, "Microsoft.Compute", "virtualMachines", name))
		failed.Name = to.Ptr(name)
		failed.Properties.ProvisioningState = to.Ptr("Failed")
		c.vms[rg+"/"+name] = &failed
		resp.AddNonTerminalResponse(http.StatusCreated, nil)
		resp.SetTerminalError(http.StatusOK, code)
		return
	}
	c.seq++
	stored := vm
	if existing, ok := c.vms[rg+"/"+name]; ok && existing.Properties.VMID != nil {
		stored.Properties.VMID = existing.Properties.VMID
	} else {
		stored.Properties.VMID = to.Ptr(fmt.Sprintf("00000000-0000-4000-8000-%012d", c.seq))
	}
	stored.ID = to.Ptr(c.id(rg, "Microsoft.Compute", "virtualMachines", name))
	stored.Name = to.Ptr(name)
	stored.Type = to.Ptr("Microsoft.Compute/virtualMachines")
	stored.Properties.ProvisioningState = to.Ptr("Succeeded")
	stored.Properties.OSProfile.AdminPassword = nil // secrets are never returned
	if cd := stored.Properties.OSProfile.CustomData; cd != nil {
		b, err := base64.StdEncoding.DecodeString(*cd)
		if err != nil {
			errResp.SetResponseError(http.StatusBadRequest, "InvalidParameter") // customData must be base64
			return
		}
		// Kept server-side only: Azure never returns custom data.
		c.customData[rg+"/"+name] = string(b)
		stored.Properties.OSProfile.CustomData = nil
	}
	c.vms[rg+"/"+name] = &stored
	c.launch(rg, &stored)
	out := stored
	resp.AddNonTerminalResponse(http.StatusCreated, nil)
	resp.SetTerminalResponse(http.StatusOK, armcompute.VirtualMachinesClientCreateOrUpdateResponse{VirtualMachine: out}, nil)
	return
}

// validateVM applies rules the real API enforces on what lepton sends.
func validateVM(vm armcompute.VirtualMachine) string {
	p := vm.Properties
	switch {
	case vm.Location == nil:
		return "location is required"
	case p == nil || p.HardwareProfile == nil || p.HardwareProfile.VMSize == nil:
		return "vmSize is required"
	case p.NetworkProfile == nil || len(p.NetworkProfile.NetworkInterfaces) == 0:
		return "a network interface is required"
	case p.StorageProfile == nil || p.StorageProfile.ImageReference == nil:
		return "an image is required"
	case p.OSProfile == nil || p.OSProfile.AdminUsername == nil:
		return "an admin user is required"
	case p.Priority != nil && *p.Priority == armcompute.VirtualMachinePriorityTypesSpot && p.EvictionPolicy == nil:
		return "spot VMs need an eviction policy"
	}
	return ""
}

func (c *Cloud) vmGet(ctx context.Context, rg, name string, opts *armcompute.VirtualMachinesClientGetOptions) (resp azfake.Responder[armcompute.VirtualMachinesClientGetResponse], errResp azfake.ErrorResponder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	vm, ok := c.vms[rg+"/"+name]
	if !ok {
		errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
		return
	}
	out := *vm
	props := *vm.Properties
	out.Properties = &props
	props.InstanceView = nil
	if opts != nil && opts.Expand != nil && *opts.Expand == armcompute.InstanceViewTypesInstanceView {
		props.InstanceView = instanceView(vm)
	}
	resp.SetResponse(http.StatusOK, armcompute.VirtualMachinesClientGetResponse{VirtualMachine: out}, nil)
	return
}

func instanceView(vm *armcompute.VirtualMachine) *armcompute.VirtualMachineInstanceView {
	state := strings.ToLower(str(vm.Properties.ProvisioningState))
	statuses := []*armcompute.InstanceViewStatus{{Code: to.Ptr("ProvisioningState/" + state)}}
	if power := powerState(vm); power != "" {
		statuses = append(statuses, &armcompute.InstanceViewStatus{Code: to.Ptr("PowerState/" + power)})
	}
	return &armcompute.VirtualMachineInstanceView{Statuses: statuses}
}

// powerState is "running" for a provisioned VM unless SetPowerState stored
// another state in the kept VM's instance view (which Get only returns on request).
func powerState(vm *armcompute.VirtualMachine) string {
	if str(vm.Properties.ProvisioningState) != "Succeeded" {
		return ""
	}
	if vm.Properties.InstanceView != nil {
		for _, s := range vm.Properties.InstanceView.Statuses {
			if code := str(s.Code); strings.HasPrefix(code, "PowerState/") {
				return strings.TrimPrefix(code, "PowerState/")
			}
		}
	}
	return "running"
}

func (c *Cloud) vmDelete(ctx context.Context, rg, name string, _ *armcompute.VirtualMachinesClientBeginDeleteOptions) (resp azfake.PollerResponder[armcompute.VirtualMachinesClientDeleteResponse], errResp azfake.ErrorResponder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := rg + "/" + name
	vm, ok := c.vms[key]
	if !ok {
		// ARM answers a delete of a missing resource with 204 No Content.
		resp.SetTerminalResponse(http.StatusNoContent, armcompute.VirtualMachinesClientDeleteResponse{}, nil)
		return
	}
	c.terminated(rg, vm, CauseDeleted)
	c.removeVM(rg, vm)
	resp.AddNonTerminalResponse(http.StatusAccepted, nil)
	resp.SetTerminalResponse(http.StatusOK, armcompute.VirtualMachinesClientDeleteResponse{}, nil)
	return
}

// removeVM deletes a VM and, as Azure does, the NICs it marked deleteOption Delete.
func (c *Cloud) removeVM(rg string, vm *armcompute.VirtualMachine) {
	delete(c.vms, rg+"/"+str(vm.Name))
	delete(c.customData, rg+"/"+str(vm.Name))
	for _, ref := range vm.Properties.NetworkProfile.NetworkInterfaces {
		if ref.Properties != nil && ref.Properties.DeleteOption != nil && *ref.Properties.DeleteOption == armcompute.DeleteOptionsDelete {
			delete(c.nics, rg+"/"+lastSegment(str(ref.ID)))
		}
	}
}

func (c *Cloud) vmList(rg string, _ *armcompute.VirtualMachinesClientListOptions) (resp azfake.PagerResponder[armcompute.VirtualMachinesClientListResponse]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var page []*armcompute.VirtualMachine
	for _, key := range sortedKeys(c.vms) {
		if strings.HasPrefix(key, rg+"/") {
			vm := *c.vms[key]
			page = append(page, &vm)
		}
	}
	// Two pages when there is more than one VM, so paging is exercised.
	half := (len(page) + 1) / 2
	resp.AddPage(http.StatusOK, armcompute.VirtualMachinesClientListResponse{VirtualMachineListResult: armcompute.VirtualMachineListResult{Value: page[:half]}}, nil)
	if half < len(page) {
		resp.AddPage(http.StatusOK, armcompute.VirtualMachinesClientListResponse{VirtualMachineListResult: armcompute.VirtualMachineListResult{Value: page[half:]}}, nil)
	}
	return
}

// ---- network

func (c *Cloud) nicCreate(ctx context.Context, rg, name string, nic armnetwork.Interface, _ *armnetwork.InterfacesClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armnetwork.InterfacesClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nic.Properties == nil || len(nic.Properties.IPConfigurations) == 0 {
		errResp.SetResponseError(http.StatusBadRequest, "InvalidRequestFormat")
		return
	}
	for _, ipc := range nic.Properties.IPConfigurations {
		if ipc.Properties == nil || ipc.Properties.Subnet == nil || !c.subnetExists(str(ipc.Properties.Subnet.ID)) {
			errResp.SetResponseError(http.StatusBadRequest, "InvalidResourceReference")
			return
		}
		if pip := ipc.Properties.PublicIPAddress; pip != nil {
			if _, ok := c.publicIPs[rg+"/"+lastSegment(str(pip.ID))]; !ok {
				errResp.SetResponseError(http.StatusBadRequest, "InvalidResourceReference")
				return
			}
		}
	}
	stored := nic
	stored.ID = to.Ptr(c.id(rg, "Microsoft.Network", "networkInterfaces", name))
	stored.Name = to.Ptr(name)
	if old, ok := c.nics[rg+"/"+name]; ok {
		stored.Properties.IPConfigurations[0].Properties.PrivateIPAddress = old.Properties.IPConfigurations[0].Properties.PrivateIPAddress
	} else {
		c.seq++
		stored.Properties.IPConfigurations[0].Properties.PrivateIPAddress = to.Ptr(fmt.Sprintf("10.77.%d.%d", c.seq/250, c.seq%250+4))
	}
	stored.Properties.ProvisioningState = to.Ptr(armnetwork.ProvisioningStateSucceeded)
	c.nics[rg+"/"+name] = &stored
	resp.AddNonTerminalResponse(http.StatusCreated, nil)
	resp.SetTerminalResponse(http.StatusOK, armnetwork.InterfacesClientCreateOrUpdateResponse{Interface: stored}, nil)
	return
}

func (c *Cloud) subnetExists(id string) bool {
	// .../virtualNetworks/VNET/subnets/SUBNET
	parts := strings.Split(id, "/")
	if len(parts) < 4 || parts[len(parts)-2] != "subnets" {
		return false
	}
	rg := ""
	for i := range parts {
		if strings.EqualFold(parts[i], "resourceGroups") && i+1 < len(parts) {
			rg = parts[i+1]
		}
	}
	vnet, ok := c.vnets[rg+"/"+parts[len(parts)-3]]
	if !ok {
		return false
	}
	for _, s := range vnet.Properties.Subnets {
		if str(s.Name) == parts[len(parts)-1] {
			return true
		}
	}
	return false
}

func (c *Cloud) nicGet(ctx context.Context, rg, name string, _ *armnetwork.InterfacesClientGetOptions) (resp azfake.Responder[armnetwork.InterfacesClientGetResponse], errResp azfake.ErrorResponder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	nic, ok := c.nics[rg+"/"+name]
	if !ok {
		errResp.SetResponseError(http.StatusNotFound, "NotFound")
		return
	}
	resp.SetResponse(http.StatusOK, armnetwork.InterfacesClientGetResponse{Interface: *nic}, nil)
	return
}

func (c *Cloud) nicDelete(ctx context.Context, rg, name string, _ *armnetwork.InterfacesClientBeginDeleteOptions) (resp azfake.PollerResponder[armnetwork.InterfacesClientDeleteResponse], errResp azfake.ErrorResponder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.id(rg, "Microsoft.Network", "networkInterfaces", name)
	for _, vm := range c.vms {
		for _, ref := range vm.Properties.NetworkProfile.NetworkInterfaces {
			if strings.EqualFold(str(ref.ID), id) {
				// Azure refuses to delete a NIC a VM still uses.
				errResp.SetResponseError(http.StatusBadRequest, "NicInUse")
				return
			}
		}
	}
	delete(c.nics, rg+"/"+name)
	resp.AddNonTerminalResponse(http.StatusAccepted, nil)
	resp.SetTerminalResponse(http.StatusOK, armnetwork.InterfacesClientDeleteResponse{}, nil)
	return
}

func (c *Cloud) vnetCreate(ctx context.Context, rg, name string, vnet armnetwork.VirtualNetwork, _ *armnetwork.VirtualNetworksClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armnetwork.VirtualNetworksClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stored := vnet
	stored.ID = to.Ptr(c.id(rg, "Microsoft.Network", "virtualNetworks", name))
	stored.Name = to.Ptr(name)
	if stored.Properties != nil {
		for _, s := range stored.Properties.Subnets {
			s.ID = to.Ptr(str(stored.ID) + "/subnets/" + str(s.Name))
		}
	}
	c.vnets[rg+"/"+name] = &stored
	resp.SetTerminalResponse(http.StatusOK, armnetwork.VirtualNetworksClientCreateOrUpdateResponse{VirtualNetwork: stored}, nil)
	return
}

func (c *Cloud) vnetGet(ctx context.Context, rg, name string, _ *armnetwork.VirtualNetworksClientGetOptions) (resp azfake.Responder[armnetwork.VirtualNetworksClientGetResponse], errResp azfake.ErrorResponder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	vnet, ok := c.vnets[rg+"/"+name]
	if !ok {
		errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
		return
	}
	resp.SetResponse(http.StatusOK, armnetwork.VirtualNetworksClientGetResponse{VirtualNetwork: *vnet}, nil)
	return
}

func (c *Cloud) ipCreate(ctx context.Context, rg, name string, ip armnetwork.PublicIPAddress, _ *armnetwork.PublicIPAddressesClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armnetwork.PublicIPAddressesClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stored := ip
	stored.ID = to.Ptr(c.id(rg, "Microsoft.Network", "publicIPAddresses", name))
	stored.Name = to.Ptr(name)
	if stored.Properties == nil {
		stored.Properties = &armnetwork.PublicIPAddressPropertiesFormat{}
	}
	if old, ok := c.publicIPs[rg+"/"+name]; ok {
		stored.Properties.IPAddress = old.Properties.IPAddress
	} else {
		c.seq++
		stored.Properties.IPAddress = to.Ptr(fmt.Sprintf("20.51.%d.%d", c.seq/250, c.seq%250+1))
	}
	c.publicIPs[rg+"/"+name] = &stored
	resp.SetTerminalResponse(http.StatusOK, armnetwork.PublicIPAddressesClientCreateOrUpdateResponse{PublicIPAddress: stored}, nil)
	return
}

func (c *Cloud) ipGet(ctx context.Context, rg, name string, _ *armnetwork.PublicIPAddressesClientGetOptions) (resp azfake.Responder[armnetwork.PublicIPAddressesClientGetResponse], errResp azfake.ErrorResponder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ip, ok := c.publicIPs[rg+"/"+name]
	if !ok {
		errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
		return
	}
	resp.SetResponse(http.StatusOK, armnetwork.PublicIPAddressesClientGetResponse{PublicIPAddress: *ip}, nil)
	return
}

func (c *Cloud) ipDelete(ctx context.Context, rg, name string, _ *armnetwork.PublicIPAddressesClientBeginDeleteOptions) (resp azfake.PollerResponder[armnetwork.PublicIPAddressesClientDeleteResponse], errResp azfake.ErrorResponder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.id(rg, "Microsoft.Network", "publicIPAddresses", name)
	for _, nic := range c.nics {
		for _, ipc := range nic.Properties.IPConfigurations {
			if pip := ipc.Properties.PublicIPAddress; pip != nil && strings.EqualFold(str(pip.ID), id) {
				errResp.SetResponseError(http.StatusBadRequest, "PublicIPAddressInUse")
				return
			}
		}
	}
	delete(c.publicIPs, rg+"/"+name)
	resp.SetTerminalResponse(http.StatusOK, armnetwork.PublicIPAddressesClientDeleteResponse{}, nil)
	return
}

// ---- inspection and out-of-band changes

// VMs returns a snapshot of every VM, sorted by name.
func (c *Cloud) VMs() []VM {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []VM{}
	for _, key := range sortedKeys(c.vms) {
		out = append(out, c.snapshot(key[:strings.IndexByte(key, '/')], c.vms[key]))
	}
	return out
}

// snapshot describes a kept VM.
func (c *Cloud) snapshot(rg string, vm *armcompute.VirtualMachine) VM {
	p := vm.Properties
	v := VM{
		ResourceGroup:     rg,
		VMID:              str(p.VMID),
		CustomData:        c.customData[rg+"/"+str(vm.Name)],
		Name:              str(vm.Name),
		Location:          str(vm.Location),
		ProvisioningState: str(p.ProvisioningState),
		PowerState:        powerState(vm),
		Tags:              map[string]string{},
	}
	if p.HardwareProfile != nil && p.HardwareProfile.VMSize != nil {
		v.Size = string(*p.HardwareProfile.VMSize)
	}
	if p.Priority != nil {
		v.Priority = string(*p.Priority)
	}
	if p.EvictionPolicy != nil {
		v.EvictionPolicy = string(*p.EvictionPolicy)
	}
	if p.BillingProfile != nil {
		v.MaxPrice = p.BillingProfile.MaxPrice
	}
	for _, z := range vm.Zones {
		v.Zones = append(v.Zones, str(z))
	}
	for k, val := range vm.Tags {
		v.Tags[k] = str(val)
	}
	for _, ref := range p.NetworkProfile.NetworkInterfaces {
		v.NICIDs = append(v.NICIDs, str(ref.ID))
	}
	if sp := p.StorageProfile; sp != nil {
		if sp.OSDisk != nil && sp.OSDisk.DiskSizeGB != nil {
			v.OSDiskGB = *sp.OSDisk.DiskSizeGB
		}
		if ir := sp.ImageReference; ir != nil {
			if ir.ID != nil {
				v.Image = *ir.ID
			} else {
				v.Image = strings.Join([]string{str(ir.Publisher), str(ir.Offer), str(ir.SKU), str(ir.Version)}, ":")
			}
		}
	}
	return v
}

// NICs returns the names of all network interfaces, sorted.
func (c *Cloud) NICs() []string { return names(&c.mu, c.nics) }

// PublicIPs returns the names of all public IP addresses, sorted.
func (c *Cloud) PublicIPs() []string { return names(&c.mu, c.publicIPs) }

// VNets returns the names of all virtual networks, sorted.
func (c *Cloud) VNets() []string { return names(&c.mu, c.vnets) }

// DeleteVM removes a VM as if deleted outside lepton, or evicted (eviction
// policy Delete); its NIC goes too only if it was marked deleteOption Delete.
func (c *Cloud) DeleteVM(resourceGroup, name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	vm, ok := c.vms[resourceGroup+"/"+name]
	if ok {
		c.terminated(resourceGroup, vm, CauseDeleted)
		c.removeVM(resourceGroup, vm)
	}
	return ok
}

// SetPowerState sets a VM's power state (running, stopped, deallocated).
func (c *Cloud) SetPowerState(resourceGroup, name, state string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	vm, ok := c.vms[resourceGroup+"/"+name]
	if ok {
		vm.Properties.InstanceView = &armcompute.VirtualMachineInstanceView{Statuses: []*armcompute.InstanceViewStatus{{Code: to.Ptr("PowerState/" + state)}}}
	}
	return ok
}

func names[T any](mu *sync.Mutex, m map[string]T) []string {
	mu.Lock()
	defer mu.Unlock()
	out := []string{}
	for _, k := range sortedKeys(m) {
		out = append(out, k[strings.IndexByte(k, '/')+1:])
	}
	return out
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func lastSegment(s string) string { return s[strings.LastIndexByte(s, '/')+1:] }

// str dereferences an optional string from the SDK models.
func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
