// Package azure provisions GPU virtual machines on Azure through the official
// SDK (azidentity, armcompute/v6, armnetwork/v6) for lepton's cluster resource.
// It implements cloud.Provisioner.
//
// Network layout, kept simple: every node gets its own network interface
// (NAME-nic) in one subnet. That subnet is Config.SubnetID when set; otherwise
// lepton uses, and creates when missing, the virtual network
// lepton-vnet-LOCATION (10.77.0.0/16) with subnet "default" (10.77.0.0/20) in the
// resource group. With Config.PublicIP each node also gets a Standard static
// public IP (NAME-ip). Delete removes the VM (its OS disk goes with it), then
// the NIC, then the public IP. The virtual network is shared and kept.
//
// Idempotency: all resource names derive from the client token, and ARM creates
// are PUTs by name, so a retried create finds or converges on the same VM.
package azure

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azcloud "github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"

	"github.com/leptonml/lepton/providers/cloud"
)

// Tag keys written on every VM (and its NIC and public IP). Azure tag values
// take any text up to 256 characters, so address and lineage are kept verbatim.
const (
	TagAddress = "lepton-address"
	TagLineage = "lepton-lineage"
	TagIndex   = "lepton-index"
	TagToken   = "lepton-token"
)

// DefaultImage is the Azure HPC/AI Ubuntu image published by the Data Science
// VM team, which ships the NVIDIA driver and CUDA (publisher:offer:sku:version).
const DefaultImage = "microsoft-dsvm:ubuntu-hpc:2204:latest"

// Config selects the subscription and where nodes go.
type Config struct {
	SubscriptionID string // required
	ResourceGroup  string // required; must exist
	Location       string // default location when a node spec names no region

	// Endpoint overrides the Resource Manager endpoint (sovereign clouds, tests).
	// A loopback endpoint (127.0.0.1, ::1, localhost) is taken for a local fake
	// or emulator: no Azure AD sign-in is attempted and plain HTTP is allowed.
	Endpoint string
	// Credential replaces DefaultAzureCredential (tests pass azfake.TokenCredential).
	Credential azcore.TokenCredential
	// ClientOptions are the base options of every client: Transport (tests pass
	// an azurefake.Cloud), Retry and so on. Endpoint, when set, overrides Cloud.
	ClientOptions arm.ClientOptions

	SubnetID      string // optional existing subnet; default: lepton-vnet-LOCATION/default
	PublicIP      bool   // give each node a public IP
	AdminUsername string // default "lepton"
	// SSHPublicKey in authorized_keys format. When empty a throwaway key is
	// generated: nodes are driven by the lepton agent, not by logins.
	SSHPublicKey string
	Image        string // publisher:offer:sku:version or an image resource ID; default DefaultImage
	DiskGB       int    // default OS disk size when a spec has none (default 128)

	// PollFrequency of long-running operations and of power-state reads
	// (default 5s; the SDK allows less than 1s only under `go test`).
	PollFrequency time.Duration
}

// Provisioner is a cloud.Provisioner for one subscription and resource group.
type Provisioner struct {
	cfg       Config
	vms       vmAPI
	nics      nicAPI
	vnets     vnetAPI
	publicIPs ipAPI

	// subnetMu serialises the lookup or creation of lepton's virtual network
	// per location, so parallel creates do not race to make it; subnets caches
	// the result for the Provisioner's life (one apply).
	subnetMu sync.Mutex
	subnets  map[string]string
}

var _ cloud.Provisioner = (*Provisioner)(nil)

// credentialHelp says what to set when no credential works.
const credentialHelp = "set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET (a service principal) or run `az login`"

// New builds the clients and checks the credential by asking for a token, so
// a missing or invalid credential fails here with cloud.ErrCredentials.
func New(ctx context.Context, cfg Config) (*Provisioner, error) {
	if cfg.SubscriptionID == "" || cfg.ResourceGroup == "" {
		return nil, errors.New("azure: subscription_id and resource_group are required")
	}
	if cfg.AdminUsername == "" {
		cfg.AdminUsername = "lepton"
	}
	if cfg.Image == "" {
		cfg.Image = DefaultImage
	}
	if cfg.DiskGB <= 0 {
		cfg.DiskGB = 128
	}
	if cfg.PollFrequency <= 0 {
		cfg.PollFrequency = 5 * time.Second
	}
	if cfg.SSHPublicKey == "" {
		key, err := throwawaySSHKey()
		if err != nil {
			return nil, err
		}
		cfg.SSHPublicKey = key
	}
	opts := cfg.ClientOptions
	if cfg.Endpoint != "" {
		c := azcloud.AzurePublic
		c.Services = map[azcloud.ServiceName]azcloud.ServiceConfiguration{
			azcloud.ResourceManager: {Endpoint: cfg.Endpoint, Audience: azcloud.AzurePublic.Services[azcloud.ResourceManager].Audience},
		}
		opts.Cloud = c
	}
	cred := cfg.Credential
	if cfg.Endpoint != "" && cloud.IsLoopback(cfg.Endpoint) {
		// A test server or emulator on this machine: no Azure AD sign-in, and a
		// placeholder bearer token may travel over plain HTTP to it.
		opts.InsecureAllowCredentialWithHTTP = true
		if cred == nil {
			cred = staticToken{}
		}
	}
	if cred == nil {
		c, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: opts.ClientOptions})
		if err != nil {
			return nil, fmt.Errorf("%w: azure: %v; %s", cloud.ErrCredentials, err, credentialHelp)
		}
		cred = c
	}
	scope := "https://management.azure.com/.default"
	if rm, ok := opts.Cloud.Services[azcloud.ResourceManager]; ok && rm.Audience != "" {
		scope = strings.TrimSuffix(rm.Audience, "/") + "/.default"
	}
	tokCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := cred.GetToken(tokCtx, policy.TokenRequestOptions{Scopes: []string{scope}}); err != nil {
		return nil, fmt.Errorf("%w: azure: %v; %s", cloud.ErrCredentials, err, credentialHelp)
	}

	p := &Provisioner{cfg: cfg, subnets: map[string]string{}}
	vms, err := armcompute.NewVirtualMachinesClient(cfg.SubscriptionID, cred, &opts)
	if err != nil {
		return nil, fmt.Errorf("azure: virtual machines client: %w", err)
	}
	p.vms = vmAPI{Get: vms.Get, BeginCreateOrUpdate: vms.BeginCreateOrUpdate, BeginDelete: vms.BeginDelete, NewListPager: vms.NewListPager}
	nics, err := armnetwork.NewInterfacesClient(cfg.SubscriptionID, cred, &opts)
	if err != nil {
		return nil, fmt.Errorf("azure: network interfaces client: %w", err)
	}
	p.nics = nicAPI{Get: nics.Get, BeginCreateOrUpdate: nics.BeginCreateOrUpdate, BeginDelete: nics.BeginDelete}
	vnets, err := armnetwork.NewVirtualNetworksClient(cfg.SubscriptionID, cred, &opts)
	if err != nil {
		return nil, fmt.Errorf("azure: virtual networks client: %w", err)
	}
	p.vnets = vnetAPI{Get: vnets.Get, BeginCreateOrUpdate: vnets.BeginCreateOrUpdate}
	ips, err := armnetwork.NewPublicIPAddressesClient(cfg.SubscriptionID, cred, &opts)
	if err != nil {
		return nil, fmt.Errorf("azure: public IP client: %w", err)
	}
	p.publicIPs = ipAPI{Get: ips.Get, BeginCreateOrUpdate: ips.BeginCreateOrUpdate, BeginDelete: ips.BeginDelete}
	return p, nil
}

// The operations the provisioner calls, as method values of the SDK's
// clients. It keeps these instead of the clients for the binary's size: a
// client stored in a field of a type that reaches an interface value keeps
// every exported method of the client in the binary (see providers/aws's
// ec2API and docs/benchmarks/size.md).
type (
	vmAPI struct {
		Get                 func(context.Context, string, string, *armcompute.VirtualMachinesClientGetOptions) (armcompute.VirtualMachinesClientGetResponse, error)
		BeginCreateOrUpdate func(context.Context, string, string, armcompute.VirtualMachine, *armcompute.VirtualMachinesClientBeginCreateOrUpdateOptions) (*runtime.Poller[armcompute.VirtualMachinesClientCreateOrUpdateResponse], error)
		BeginDelete         func(context.Context, string, string, *armcompute.VirtualMachinesClientBeginDeleteOptions) (*runtime.Poller[armcompute.VirtualMachinesClientDeleteResponse], error)
		NewListPager        func(string, *armcompute.VirtualMachinesClientListOptions) *runtime.Pager[armcompute.VirtualMachinesClientListResponse]
	}
	nicAPI struct {
		Get                 func(context.Context, string, string, *armnetwork.InterfacesClientGetOptions) (armnetwork.InterfacesClientGetResponse, error)
		BeginCreateOrUpdate func(context.Context, string, string, armnetwork.Interface, *armnetwork.InterfacesClientBeginCreateOrUpdateOptions) (*runtime.Poller[armnetwork.InterfacesClientCreateOrUpdateResponse], error)
		BeginDelete         func(context.Context, string, string, *armnetwork.InterfacesClientBeginDeleteOptions) (*runtime.Poller[armnetwork.InterfacesClientDeleteResponse], error)
	}
	vnetAPI struct {
		Get                 func(context.Context, string, string, *armnetwork.VirtualNetworksClientGetOptions) (armnetwork.VirtualNetworksClientGetResponse, error)
		BeginCreateOrUpdate func(context.Context, string, string, armnetwork.VirtualNetwork, *armnetwork.VirtualNetworksClientBeginCreateOrUpdateOptions) (*runtime.Poller[armnetwork.VirtualNetworksClientCreateOrUpdateResponse], error)
	}
	ipAPI struct {
		Get                 func(context.Context, string, string, *armnetwork.PublicIPAddressesClientGetOptions) (armnetwork.PublicIPAddressesClientGetResponse, error)
		BeginCreateOrUpdate func(context.Context, string, string, armnetwork.PublicIPAddress, *armnetwork.PublicIPAddressesClientBeginCreateOrUpdateOptions) (*runtime.Poller[armnetwork.PublicIPAddressesClientCreateOrUpdateResponse], error)
		BeginDelete         func(context.Context, string, string, *armnetwork.PublicIPAddressesClientBeginDeleteOptions) (*runtime.Poller[armnetwork.PublicIPAddressesClientDeleteResponse], error)
	}
)

// staticToken is the credential used with a loopback endpoint.
type staticToken struct{}

func (staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "lepton-local-endpoint", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// throwawaySSHKey returns a fresh ed25519 public key in authorized_keys form.
func throwawaySSHKey() (string, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("azure: generating an SSH key: %w", err)
	}
	// SSH wire format: string "ssh-ed25519", string key (RFC 8709).
	var blob []byte
	for _, part := range [][]byte{[]byte("ssh-ed25519"), pub} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(part)))
		blob = append(blob, part...)
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob) + " lepton", nil
}

// VMName is the deterministic VM name for a node: Azure's Linux VM names allow
// 64 characters of letters, digits and dashes.
func VMName(address string, index int, clientToken string) string {
	sum := sha256.Sum256([]byte(clientToken))
	h := hex.EncodeToString(sum[:])[:10]
	idx := "-" + strconv.Itoa(index) + "-"
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(address) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		} else {
			dash = true
		}
	}
	slug := b.String()
	if max := 64 - len("lp-") - len(idx) - len(h); len(slug) > max {
		slug = strings.TrimRight(slug[:max], "-")
	}
	if slug == "" {
		slug = "node"
	}
	return "lp-" + slug + idx + h
}

func nicName(vm string) string { return vm + "-nic" }
func ipName(vm string) string  { return vm + "-ip" }

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])[:16]
}

func (p *Provisioner) pollOpts() *runtime.PollUntilDoneOptions {
	return &runtime.PollUntilDoneOptions{Frequency: p.cfg.PollFrequency}
}

// location is the node's region, or the configured default.
func (p *Provisioner) location(spec cloud.NodeSpec) string {
	if spec.Region != "" {
		return spec.Region
	}
	return p.cfg.Location
}

// Create makes the NIC (and public IP) and the VM, and waits until it runs.
// On failure it removes what it made, so a failed offer leaks nothing; the
// error wraps cloud.ErrCapacity for allocation, SKU and quota errors.
func (p *Provisioner) Create(ctx context.Context, spec cloud.NodeSpec) (cloud.Node, error) {
	location := p.location(spec)
	switch {
	case location == "":
		return cloud.Node{}, fmt.Errorf("azure: %s node %d: a location is required", spec.Address, spec.Index)
	case spec.InstanceType == "":
		return cloud.Node{}, fmt.Errorf("azure: %s node %d: a VM size is required", spec.Address, spec.Index)
	case spec.ClientToken == "":
		return cloud.Node{}, fmt.Errorf("azure: %s node %d: a client token is required for idempotent creates", spec.Address, spec.Index)
	}
	name := VMName(spec.Address, spec.Index, spec.ClientToken)
	rg := p.cfg.ResourceGroup

	// A create retried after a lost response finds its VM.
	if got, err := p.vms.Get(ctx, rg, name, nil); err == nil {
		if str(got.Tags[TagToken]) != tokenHash(spec.ClientToken) {
			return cloud.Node{}, fmt.Errorf("azure: a VM named %s exists in %s but was not created by this node's token", name, rg)
		}
		if str(got.Properties.ProvisioningState) == "Succeeded" {
			return p.waitRunning(ctx, name, spec.Index)
		}
	} else if !isNotFound(err) {
		return cloud.Node{}, classify("get VM "+name, err)
	}

	node, err := p.create(ctx, spec, name, location)
	if err != nil {
		// Leave nothing behind: a VM whose allocation failed stays in the
		// Failed state in Azure, and its NIC and IP would be orphans.
		cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		defer cancel()
		if cerr := p.deleteByName(cleanCtx, name); cerr != nil {
			// Something may remain: name it so the caller records or retries the delete.
			return cloud.Node{ID: name, Region: location, Zone: zoneNumber(spec.Zone, location), Status: "pending", Index: spec.Index, Cluster: spec.Address},
				fmt.Errorf("%w (cleanup of %s also failed: %v)", err, name, cerr)
		}
		return cloud.Node{}, err
	}
	return node, nil
}

func (p *Provisioner) tags(spec cloud.NodeSpec) map[string]*string {
	return map[string]*string{
		TagAddress: to.Ptr(spec.Address),
		TagLineage: to.Ptr(spec.Lineage),
		TagIndex:   to.Ptr(strconv.Itoa(spec.Index)),
		TagToken:   to.Ptr(tokenHash(spec.ClientToken)),
	}
}

func (p *Provisioner) create(ctx context.Context, spec cloud.NodeSpec, name, location string) (cloud.Node, error) {
	rg := p.cfg.ResourceGroup
	subnetID, err := p.subnet(ctx, location)
	if err != nil {
		return cloud.Node{}, err
	}
	ipConfig := &armnetwork.InterfaceIPConfigurationPropertiesFormat{
		Subnet:                    &armnetwork.Subnet{ID: to.Ptr(subnetID)},
		PrivateIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodDynamic),
		Primary:                   to.Ptr(true),
	}
	if p.cfg.PublicIP {
		poller, err := p.publicIPs.BeginCreateOrUpdate(ctx, rg, ipName(name), armnetwork.PublicIPAddress{
			Location: to.Ptr(location),
			Tags:     p.tags(spec),
			SKU:      &armnetwork.PublicIPAddressSKU{Name: to.Ptr(armnetwork.PublicIPAddressSKUNameStandard)},
			Properties: &armnetwork.PublicIPAddressPropertiesFormat{
				PublicIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodStatic),
			},
		}, nil)
		if err != nil {
			return cloud.Node{}, classify("create public IP "+ipName(name), err)
		}
		ip, err := poller.PollUntilDone(ctx, p.pollOpts())
		if err != nil {
			return cloud.Node{}, classify("create public IP "+ipName(name), err)
		}
		ipConfig.PublicIPAddress = &armnetwork.PublicIPAddress{ID: ip.ID}
	}
	nicPoller, err := p.nics.BeginCreateOrUpdate(ctx, rg, nicName(name), armnetwork.Interface{
		Location: to.Ptr(location),
		Tags:     p.tags(spec),
		Properties: &armnetwork.InterfacePropertiesFormat{
			IPConfigurations: []*armnetwork.InterfaceIPConfiguration{{Name: to.Ptr("ipconfig1"), Properties: ipConfig}},
		},
	}, nil)
	if err != nil {
		return cloud.Node{}, classify("create network interface "+nicName(name), err)
	}
	nic, err := nicPoller.PollUntilDone(ctx, p.pollOpts())
	if err != nil {
		return cloud.Node{}, classify("create network interface "+nicName(name), err)
	}

	vm, err := p.vmResource(spec, name, location, str(nic.ID))
	if err != nil {
		return cloud.Node{}, err
	}
	where := fmt.Sprintf("create VM %s (%s in %s)", name, spec.InstanceType, location)
	vmPoller, err := p.vms.BeginCreateOrUpdate(ctx, rg, name, vm, nil)
	if err != nil {
		return cloud.Node{}, classify(where, err)
	}
	if _, err := vmPoller.PollUntilDone(ctx, p.pollOpts()); err != nil {
		return cloud.Node{}, classify(where, err)
	}
	return p.waitRunning(ctx, name, spec.Index)
}

// vmResource builds the VM body.
func (p *Provisioner) vmResource(spec cloud.NodeSpec, name, location, nicID string) (armcompute.VirtualMachine, error) {
	image, err := imageReference(spec.Image, p.cfg.Image)
	if err != nil {
		return armcompute.VirtualMachine{}, err
	}
	diskGB := spec.DiskGB
	if diskGB <= 0 {
		diskGB = p.cfg.DiskGB
	}
	props := &armcompute.VirtualMachineProperties{
		HardwareProfile: &armcompute.HardwareProfile{VMSize: to.Ptr(armcompute.VirtualMachineSizeTypes(spec.InstanceType))},
		StorageProfile: &armcompute.StorageProfile{
			ImageReference: image,
			OSDisk: &armcompute.OSDisk{
				CreateOption: to.Ptr(armcompute.DiskCreateOptionTypesFromImage),
				DiskSizeGB:   to.Ptr(int32(diskGB)),
				DeleteOption: to.Ptr(armcompute.DiskDeleteOptionTypesDelete),
				ManagedDisk:  &armcompute.ManagedDiskParameters{StorageAccountType: to.Ptr(armcompute.StorageAccountTypesPremiumLRS)},
			},
		},
		OSProfile: &armcompute.OSProfile{
			ComputerName:  to.Ptr(name),
			AdminUsername: to.Ptr(p.cfg.AdminUsername),
			LinuxConfiguration: &armcompute.LinuxConfiguration{
				DisablePasswordAuthentication: to.Ptr(true),
				SSH: &armcompute.SSHConfiguration{PublicKeys: []*armcompute.SSHPublicKey{{
					Path:    to.Ptr("/home/" + p.cfg.AdminUsername + "/.ssh/authorized_keys"),
					KeyData: to.Ptr(p.cfg.SSHPublicKey),
				}}},
			},
		},
		NetworkProfile: &armcompute.NetworkProfile{NetworkInterfaces: []*armcompute.NetworkInterfaceReference{{
			ID:         to.Ptr(nicID),
			Properties: &armcompute.NetworkInterfaceReferenceProperties{Primary: to.Ptr(true)},
		}}},
	}
	if spec.UserData != "" {
		// cloud-init runs custom data once; Azure takes it base64-encoded and
		// never returns it.
		props.OSProfile.CustomData = to.Ptr(base64.StdEncoding.EncodeToString([]byte(spec.UserData)))
	}
	if spec.Spot {
		props.Priority = to.Ptr(armcompute.VirtualMachinePriorityTypesSpot)
		// Delete on eviction: lepton then sees the node gone and recreates it.
		props.EvictionPolicy = to.Ptr(armcompute.VirtualMachineEvictionPolicyTypesDelete)
		// -1: pay up to the on-demand price, never evicted for price.
		props.BillingProfile = &armcompute.BillingProfile{MaxPrice: to.Ptr(-1.0)}
	}
	vm := armcompute.VirtualMachine{
		Location:   to.Ptr(location),
		Tags:       p.tags(spec),
		Properties: props,
	}
	if z := zoneNumber(spec.Zone, location); z != "" {
		vm.Zones = []*string{to.Ptr(z)}
	}
	return vm, nil
}

// zoneNumber accepts "2" or "eastus-2" (the catalog's spelling) and returns "2".
func zoneNumber(zone, location string) string {
	return strings.TrimPrefix(zone, location+"-")
}

// imageReference parses an image as a resource ID or a publisher:offer:sku:version URN.
func imageReference(override, fallback string) (*armcompute.ImageReference, error) {
	img := override
	if img == "" {
		img = fallback
	}
	if strings.HasPrefix(img, "/") {
		return &armcompute.ImageReference{ID: to.Ptr(img)}, nil
	}
	parts := strings.Split(img, ":")
	if len(parts) != 4 {
		return nil, fmt.Errorf("azure: image %q is neither publisher:offer:sku:version nor an image resource ID", img)
	}
	return &armcompute.ImageReference{
		Publisher: to.Ptr(parts[0]), Offer: to.Ptr(parts[1]), SKU: to.Ptr(parts[2]), Version: to.Ptr(parts[3]),
	}, nil
}

// subnet returns the subnet ID for NICs in location, creating lepton's virtual
// network there when no subnet is configured and it does not exist yet.
func (p *Provisioner) subnet(ctx context.Context, location string) (string, error) {
	if p.cfg.SubnetID != "" {
		return p.cfg.SubnetID, nil
	}
	p.subnetMu.Lock()
	defer p.subnetMu.Unlock()
	if id, ok := p.subnets[location]; ok {
		return id, nil
	}
	id, err := p.ensureSubnet(ctx, location)
	if err == nil {
		p.subnets[location] = id
	}
	return id, err
}

func (p *Provisioner) ensureSubnet(ctx context.Context, location string) (string, error) {
	rg := p.cfg.ResourceGroup
	name := "lepton-vnet-" + location
	got, err := p.vnets.Get(ctx, rg, name, nil)
	if err == nil {
		for _, s := range got.Properties.Subnets {
			if str(s.Name) == "default" && s.ID != nil {
				return *s.ID, nil
			}
		}
		return "", fmt.Errorf("azure: virtual network %s in %s has no subnet \"default\"; add one or set subnet_id", name, rg)
	}
	if !isNotFound(err) {
		return "", classify("get virtual network "+name, err)
	}
	poller, err := p.vnets.BeginCreateOrUpdate(ctx, rg, name, armnetwork.VirtualNetwork{
		Location: to.Ptr(location),
		Tags:     map[string]*string{"lepton": to.Ptr("network")},
		Properties: &armnetwork.VirtualNetworkPropertiesFormat{
			AddressSpace: &armnetwork.AddressSpace{AddressPrefixes: []*string{to.Ptr("10.77.0.0/16")}},
			Subnets: []*armnetwork.Subnet{{
				Name:       to.Ptr("default"),
				Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: to.Ptr("10.77.0.0/20")},
			}},
		},
	}, nil)
	if err != nil {
		return "", classify("create virtual network "+name, err)
	}
	vnet, err := poller.PollUntilDone(ctx, p.pollOpts())
	if err != nil {
		return "", classify("create virtual network "+name, err)
	}
	for _, s := range vnet.Properties.Subnets {
		if str(s.Name) == "default" && s.ID != nil {
			return *s.ID, nil
		}
	}
	return str(vnet.ID) + "/subnets/default", nil
}

// waitRunning reads the VM until its power state is running.
func (p *Provisioner) waitRunning(ctx context.Context, name string, index int) (cloud.Node, error) {
	for {
		node, found, err := p.read(ctx, name)
		if err != nil {
			return cloud.Node{}, err
		}
		if !found {
			return cloud.Node{}, fmt.Errorf("azure: VM %s disappeared while starting", name)
		}
		node.Index = index
		switch node.Status {
		case "running":
			return node, nil
		case "stopped", "terminated":
			return node, fmt.Errorf("azure: VM %s is %s instead of starting", name, node.Status)
		}
		select {
		case <-ctx.Done():
			return node, fmt.Errorf("azure: waiting for %s to run: %w", name, ctx.Err())
		case <-time.After(p.cfg.PollFrequency):
		}
	}
}

// Read returns the VM, or found=false when it no longer exists. region and
// zone are not needed: VMs are addressed by resource group and name.
func (p *Provisioner) Read(ctx context.Context, region, zone, id string) (cloud.Node, bool, error) {
	return p.read(ctx, id)
}

func (p *Provisioner) read(ctx context.Context, name string) (cloud.Node, bool, error) {
	got, err := p.vms.Get(ctx, p.cfg.ResourceGroup, name, &armcompute.VirtualMachinesClientGetOptions{
		Expand: to.Ptr(armcompute.InstanceViewTypesInstanceView),
	})
	if isNotFound(err) {
		return cloud.Node{}, false, nil
	}
	if err != nil {
		return cloud.Node{}, false, classify("get VM "+name, err)
	}
	node := nodeFrom(&got.VirtualMachine)
	addr, err := p.address(ctx, &got.VirtualMachine)
	if err != nil {
		return node, true, err
	}
	node.Address = addr
	return node, true, nil
}

// address is the node's public IP when it has one, else its private IP.
func (p *Provisioner) address(ctx context.Context, vm *armcompute.VirtualMachine) (string, error) {
	if vm.Properties == nil || vm.Properties.NetworkProfile == nil || len(vm.Properties.NetworkProfile.NetworkInterfaces) == 0 {
		return "", nil
	}
	nicID := str(vm.Properties.NetworkProfile.NetworkInterfaces[0].ID)
	nic, err := p.nics.Get(ctx, p.cfg.ResourceGroup, lastSegment(nicID), nil)
	if isNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", classify("get network interface "+lastSegment(nicID), err)
	}
	private := ""
	for _, ipc := range nic.Properties.IPConfigurations {
		if ipc.Properties == nil {
			continue
		}
		if pip := ipc.Properties.PublicIPAddress; pip != nil && pip.ID != nil {
			ip, err := p.publicIPs.Get(ctx, p.cfg.ResourceGroup, lastSegment(*pip.ID), nil)
			if err == nil && ip.Properties != nil && ip.Properties.IPAddress != nil {
				return *ip.Properties.IPAddress, nil
			}
			if err != nil && !isNotFound(err) {
				return "", classify("get public IP "+lastSegment(*pip.ID), err)
			}
		}
		if private == "" {
			private = str(ipc.Properties.PrivateIPAddress)
		}
	}
	return private, nil
}

func lastSegment(s string) string { return s[strings.LastIndexByte(s, '/')+1:] }

// nodeFrom converts a VM into a cloud.Node (without its address).
func nodeFrom(vm *armcompute.VirtualMachine) cloud.Node {
	n := cloud.Node{ID: str(vm.Name), Region: str(vm.Location), Status: "pending"}
	if len(vm.Zones) > 0 {
		n.Zone = str(vm.Zones[0])
	}
	if idx, err := strconv.Atoi(str(vm.Tags[TagIndex])); err == nil {
		n.Index = idx
	}
	n.Cluster = str(vm.Tags[TagAddress])
	if vm.Properties == nil {
		return n
	}
	if hp := vm.Properties.HardwareProfile; hp != nil && hp.VMSize != nil {
		n.InstanceType = string(*hp.VMSize)
	}
	state := str(vm.Properties.ProvisioningState)
	power := ""
	if iv := vm.Properties.InstanceView; iv != nil {
		for _, s := range iv.Statuses {
			if code := str(s.Code); strings.HasPrefix(code, "PowerState/") {
				power = strings.TrimPrefix(code, "PowerState/")
			}
		}
	}
	n.Status = neutralStatus(state, power)
	return n
}

// neutralStatus maps a provisioning state and power state to cloud.Node states.
func neutralStatus(provisioning, power string) string {
	switch provisioning {
	case "Deleting":
		return "stopping"
	case "Failed":
		return "terminated"
	}
	switch power {
	case "running":
		return "running"
	case "starting", "":
		return "pending"
	case "stopping", "deallocating":
		return "stopping"
	case "stopped", "deallocated":
		return "stopped"
	}
	return power
}

// Delete removes the VM (its OS disk is deleted with it), then its network
// interface and public IP. What is already gone is skipped.
func (p *Provisioner) Delete(ctx context.Context, node cloud.Node) error {
	return p.deleteByName(ctx, node.ID)
}

func (p *Provisioner) deleteByName(ctx context.Context, name string) error {
	rg := p.cfg.ResourceGroup
	if poller, err := p.vms.BeginDelete(ctx, rg, name, nil); err != nil {
		if !isNotFound(err) {
			return classify("delete VM "+name, err)
		}
	} else if _, err := poller.PollUntilDone(ctx, p.pollOpts()); err != nil && !isNotFound(err) {
		return classify("delete VM "+name, err)
	}
	// The NIC can only go once no VM uses it, and the IP once no NIC does.
	if poller, err := p.nics.BeginDelete(ctx, rg, nicName(name), nil); err != nil {
		if !isNotFound(err) {
			return classify("delete network interface "+nicName(name), err)
		}
	} else if _, err := poller.PollUntilDone(ctx, p.pollOpts()); err != nil && !isNotFound(err) {
		return classify("delete network interface "+nicName(name), err)
	}
	if !p.cfg.PublicIP {
		return nil
	}
	if poller, err := p.publicIPs.BeginDelete(ctx, rg, ipName(name), nil); err != nil {
		if !isNotFound(err) {
			return classify("delete public IP "+ipName(name), err)
		}
	} else if _, err := poller.PollUntilDone(ctx, p.pollOpts()); err != nil && !isNotFound(err) {
		return classify("delete public IP "+ipName(name), err)
	}
	return nil
}

// ListByLineage lists the resource group's VMs tagged with lineage, in the
// given regions (all when empty), sorted by name.
func (p *Provisioner) ListByLineage(ctx context.Context, lineage string, regions []string) ([]cloud.Node, error) {
	pager := p.vms.NewListPager(p.cfg.ResourceGroup, nil)
	var nodes []cloud.Node
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, classify("list VMs in "+p.cfg.ResourceGroup, err)
		}
		for _, vm := range page.Value {
			if str(vm.Tags[TagLineage]) != lineage || !inRegions(str(vm.Location), regions) {
				continue
			}
			n := nodeFrom(vm)
			if vm.Properties != nil && vm.Properties.InstanceView == nil && n.Status == "pending" &&
				str(vm.Properties.ProvisioningState) == "Succeeded" {
				// List carries no power state; a provisioned VM is reported as running.
				n.Status = "running"
			}
			nodes = append(nodes, n)
		}
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	return nodes, nil
}

func inRegions(location string, regions []string) bool {
	if len(regions) == 0 {
		return true
	}
	for _, r := range regions {
		if strings.EqualFold(r, location) {
			return true
		}
	}
	return false
}

// str dereferences an optional string from the SDK models.
func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
