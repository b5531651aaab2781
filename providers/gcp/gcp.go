// Package gcp provisions GPU instances on Google Compute Engine through the
// official client, cloud.google.com/go/compute/apiv1, for lepton's cluster
// resource. It implements cloud.Provisioner.
//
// Every instance gets labels lepton-address, lepton-lineage, lepton-index and
// lepton-token (label values encoded with LabelValue) and the exact address and
// lineage in its metadata. Idempotency comes from two things: the instance name
// is derived from the client token (names are unique per zone), and the insert
// carries a requestId derived from it, which the API deduplicates.
package gcp

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/auth/credentials"
	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/proto"

	"github.com/leptonml/lepton/providers/cloud"
)

// Defaults for Config fields left empty.
const (
	DefaultImageProject = "deeplearning-platform-release"
	// DefaultImageFamily is a Deep Learning VM family with the NVIDIA driver and
	// CUDA installed; the newest image of the family is resolved at apply time.
	DefaultImageFamily = "common-cu128-ubuntu-2204-nvidia-570"
	DefaultNetwork     = "global/networks/default"
	DefaultDiskGB      = 100
)

// computeScope is the OAuth scope the Compute API needs.
const computeScope = "https://www.googleapis.com/auth/compute"

// Config selects the project and how to reach the Compute API.
type Config struct {
	Project string // required
	Region  string // default region for ListByLineage when no regions are given

	// Endpoint overrides the API root (for example a test server's URL). A
	// loopback endpoint (127.0.0.1, ::1, localhost) implies NoAuth.
	Endpoint string
	// NoAuth sends requests without credentials; only for test servers.
	NoAuth bool
	// ClientOptions are passed to every client after the ones above (for example
	// option.WithAuthCredentialsFile). When it is empty and NoAuth is false,
	// Application Default Credentials are looked up and required.
	ClientOptions []option.ClientOption

	ImageProject string // default DefaultImageProject
	ImageFamily  string // default DefaultImageFamily
	Network      string // default DefaultNetwork
	Subnetwork   string // optional, e.g. regions/us-central1/subnetworks/gpu
	NoPublicIP   bool   // no external IP (the node is reached through the VPC)
	DiskType     string // default: pd-balanced, or hyperdisk-balanced where the family needs it

	// PollInterval between instance reads while waiting for RUNNING (default 5s).
	PollInterval time.Duration
	// Retries of a call that failed with a lost response or a 5xx (default 4),
	// RetryDelay before the first retry, doubled each time (default 2s).
	Retries    int
	RetryDelay time.Duration
}

// Provisioner is a cloud.Provisioner for one GCP project.
type Provisioner struct {
	cfg       Config
	instances *compute.InstancesClient
	images    *compute.ImagesClient

	// imageMu guards image: the family is resolved once per Provisioner (one
	// apply), so parallel creates agree on the image and skip the lookup.
	imageMu sync.Mutex
	image   string
}

var _ cloud.Provisioner = (*Provisioner)(nil)

// New connects to the Compute API. A missing Application Default Credential is
// an error wrapping cloud.ErrCredentials that says what to set.
func New(ctx context.Context, cfg Config) (*Provisioner, error) {
	if cfg.Project == "" {
		return nil, errors.New("gcp: project is required")
	}
	if cfg.ImageProject == "" {
		cfg.ImageProject = DefaultImageProject
	}
	if cfg.ImageFamily == "" {
		cfg.ImageFamily = DefaultImageFamily
	}
	if cfg.Network == "" {
		cfg.Network = DefaultNetwork
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 4
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 2 * time.Second
	}
	if cfg.Endpoint != "" && cloud.IsLoopback(cfg.Endpoint) {
		// A fake or emulator on this machine: never send it Google credentials.
		cfg.NoAuth = true
	}
	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	switch {
	case cfg.NoAuth:
		opts = append(opts, option.WithoutAuthentication())
	case len(cfg.ClientOptions) == 0:
		// Detect eagerly so a missing credential fails here, with a message
		// naming the fix, rather than on the first request of an apply.
		creds, err := credentials.DetectDefault(&credentials.DetectOptions{Scopes: []string{computeScope}})
		if err != nil {
			return nil, fmt.Errorf("%w: gcp: %v; set GOOGLE_APPLICATION_CREDENTIALS to a service account key file or run `gcloud auth application-default login`",
				cloud.ErrCredentials, err)
		}
		opts = append(opts, option.WithAuthCredentials(creds))
	}
	opts = append(opts, cfg.ClientOptions...)

	instances, err := compute.NewInstancesRESTClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcp: instances client: %w", err)
	}
	images, err := compute.NewImagesRESTClient(ctx, opts...)
	if err != nil {
		instances.Close()
		return nil, fmt.Errorf("gcp: images client: %w", err)
	}
	return &Provisioner{cfg: cfg, instances: instances, images: images}, nil
}

// Close releases the clients' connections.
func (p *Provisioner) Close() error {
	return errors.Join(p.instances.Close(), p.images.Close())
}

// retry runs call until it succeeds, fails with a non-transient error, or the
// retries are used up. Every attempt sends the same request (same requestId).
func (p *Provisioner) retry(ctx context.Context, call func() error) error {
	delay := p.cfg.RetryDelay
	var err error
	for attempt := 0; ; attempt++ {
		err = call()
		if err == nil || attempt >= p.cfg.Retries || !isTransient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// sourceImage resolves the boot image: the spec's override as given, or the
// newest image of the configured family, looked up now so no region- or
// date-specific image name is baked in.
func (p *Provisioner) sourceImage(ctx context.Context, spec cloud.NodeSpec) (string, error) {
	if spec.Image != "" {
		return spec.Image, nil
	}
	p.imageMu.Lock()
	defer p.imageMu.Unlock()
	if p.image != "" {
		return p.image, nil
	}
	var img *computepb.Image
	err := p.retry(ctx, func() error {
		var err error
		img, err = p.images.GetFromFamily(ctx, &computepb.GetFromFamilyImageRequest{
			Project: p.cfg.ImageProject,
			Family:  p.cfg.ImageFamily,
		})
		return err
	})
	if err != nil {
		return "", classify(fmt.Sprintf("image family %s/%s", p.cfg.ImageProject, p.cfg.ImageFamily), err)
	}
	p.image = img.GetSelfLink()
	if p.image == "" {
		p.image = fmt.Sprintf("projects/%s/global/images/%s", p.cfg.ImageProject, img.GetName())
	}
	return p.image, nil
}

// instanceResource builds the insert body for spec.
func (p *Provisioner) instanceResource(spec cloud.NodeSpec, name, image string) (*computepb.Instance, error) {
	zone := spec.Zone
	machineType := spec.InstanceType
	diskGB := int64(spec.DiskGB)
	if diskGB <= 0 {
		diskGB = DefaultDiskGB
	}
	diskType := p.cfg.DiskType
	if diskType == "" {
		diskType = defaultDiskType(machineType)
	}
	inst := &computepb.Instance{
		Name:        proto.String(name),
		MachineType: proto.String(fmt.Sprintf("zones/%s/machineTypes/%s", zone, machineType)),
		Labels: map[string]string{
			LabelAddress: LabelValue(spec.Address),
			LabelLineage: LabelValue(spec.Lineage),
			LabelIndex:   strconv.Itoa(spec.Index),
			LabelToken:   tokenHash(spec.ClientToken),
		},
		Metadata: &computepb.Metadata{Items: []*computepb.Items{
			{Key: proto.String("lepton-address"), Value: proto.String(spec.Address)},
			{Key: proto.String("lepton-lineage"), Value: proto.String(spec.Lineage)},
		}},
		Disks: []*computepb.AttachedDisk{{
			Boot:       proto.Bool(true),
			AutoDelete: proto.Bool(true),
			Type:       proto.String("PERSISTENT"),
			InitializeParams: &computepb.AttachedDiskInitializeParams{
				SourceImage: proto.String(image),
				DiskSizeGb:  proto.Int64(diskGB),
				DiskType:    proto.String(fmt.Sprintf("zones/%s/diskTypes/%s", zone, diskType)),
			},
		}},
		// GPU instances cannot live-migrate: host maintenance must stop them.
		Scheduling: &computepb.Scheduling{
			OnHostMaintenance: proto.String("TERMINATE"),
			AutomaticRestart:  proto.Bool(!spec.Spot),
		},
	}
	if spec.UserData != "" {
		// The guest environment runs the startup-script item at every boot;
		// the script itself makes its work happen once.
		inst.Metadata.Items = append(inst.Metadata.Items, &computepb.Items{Key: proto.String("startup-script"), Value: proto.String(spec.UserData)})
	}
	nic := &computepb.NetworkInterface{Network: proto.String(p.cfg.Network)}
	if p.cfg.Subnetwork != "" {
		nic.Subnetwork = proto.String(p.cfg.Subnetwork)
	}
	if !p.cfg.NoPublicIP {
		nic.AccessConfigs = []*computepb.AccessConfig{{
			Name: proto.String("External NAT"),
			Type: proto.String("ONE_TO_ONE_NAT"),
		}}
	}
	inst.NetworkInterfaces = []*computepb.NetworkInterface{nic}
	if spec.Spot {
		inst.Scheduling.ProvisioningModel = proto.String("SPOT")
		// A preempted node is deleted, so lepton sees it gone (drift) and recreates it.
		inst.Scheduling.InstanceTerminationAction = proto.String("DELETE")
	}
	if spec.GPUName != "" && !HasImplicitGPUs(machineType) {
		accel, err := AcceleratorType(spec.GPUName)
		if err != nil {
			return nil, err
		}
		count := spec.GPUCount
		if count <= 0 {
			count = 1
		}
		inst.GuestAccelerators = []*computepb.AcceleratorConfig{{
			AcceleratorType:  proto.String(fmt.Sprintf("zones/%s/acceleratorTypes/%s", zone, accel)),
			AcceleratorCount: proto.Int32(int32(count)),
		}}
	}
	return inst, nil
}

// Create inserts one instance and waits until it runs. A retry with the same
// ClientToken reuses the instance name and requestId, so it never makes a second one.
func (p *Provisioner) Create(ctx context.Context, spec cloud.NodeSpec) (cloud.Node, error) {
	if spec.Zone == "" {
		return cloud.Node{}, fmt.Errorf("gcp: %s node %d: a zone is required (instances are zonal)", spec.Address, spec.Index)
	}
	if spec.InstanceType == "" {
		return cloud.Node{}, fmt.Errorf("gcp: %s node %d: an instance type is required", spec.Address, spec.Index)
	}
	if spec.ClientToken == "" {
		return cloud.Node{}, fmt.Errorf("gcp: %s node %d: a client token is required for idempotent creates", spec.Address, spec.Index)
	}
	name := InstanceName(spec.Address, spec.Index, spec.ClientToken)
	where := fmt.Sprintf("insert %s in %s/%s", name, p.cfg.Project, spec.Zone)

	// Once the insert is accepted an instance may exist even if a later step
	// fails, so errors from then on carry its identity for the caller to
	// record or delete.
	pending := cloud.Node{ID: name, Zone: spec.Zone, Region: regionOf(spec.Zone), Status: "pending", Index: spec.Index, Cluster: spec.Address}

	image, err := p.sourceImage(ctx, spec)
	if err != nil {
		return cloud.Node{}, err
	}
	inst, err := p.instanceResource(spec, name, image)
	if err != nil {
		return cloud.Node{}, err
	}
	// The requestId makes a resent insert a no-op at the API. The API remembers
	// requestIds for a while, so a create repeated later with the same token (the
	// node was deleted in between) gets the old, finished operation back; the
	// instance is then missing and the insert is sent once more under a fresh id.
	for round := 0; round < 2; round++ {
		requestID := RequestID(name, spec.Zone, spec.InstanceType)
		if round > 0 {
			requestID = RequestID(name+"#"+strconv.Itoa(round)+"@"+time.Now().UTC().Format(time.RFC3339Nano), spec.Zone, spec.InstanceType)
		}
		req := &computepb.InsertInstanceRequest{
			Project:          p.cfg.Project,
			Zone:             spec.Zone,
			RequestId:        proto.String(requestID),
			InstanceResource: inst,
		}
		var op *compute.Operation
		err = p.retry(ctx, func() error {
			var err error
			op, err = p.instances.Insert(ctx, req)
			return err
		})
		switch {
		case err != nil && isAlreadyExists(err):
			// Same name: made by an earlier Create of this node (whose answer
			// was lost, or whose requestId the API has forgotten).
			inst, gerr := p.getInstance(ctx, spec.Zone, name)
			if gerr != nil {
				return cloud.Node{}, classify(where, gerr)
			}
			if inst.GetLabels()[LabelToken] != tokenHash(spec.ClientToken) {
				return cloud.Node{}, fmt.Errorf("gcp: %s: an instance named %s exists but was not created by this node's token", where, name)
			}
			return p.waitRunning(ctx, spec.Zone, name, spec.Index)
		case err != nil:
			if code, _ := apiCodes(err); code == 0 {
				// No answer from the API (cut connection, cancelled context):
				// the insert may have been carried out.
				return pending, classify(where, err)
			}
			return cloud.Node{}, classify(where, err)
		}
		if err := p.waitOp(ctx, op); err != nil {
			if errors.Is(err, cloud.ErrCapacity) || operationError(op.Proto()) != nil {
				return cloud.Node{}, classify(where, err) // the insert failed: nothing exists
			}
			return pending, classify(where, err)
		}
		node, err := p.waitRunning(ctx, spec.Zone, name, spec.Index)
		if err != nil && node.ID == "" && !isNotFound(err) {
			node = pending
		}
		if err != nil && isNotFound(err) && round == 0 {
			continue
		}
		return node, err
	}
	return cloud.Node{}, fmt.Errorf("gcp: %s: the insert finished but the instance does not exist", where)
}

// waitOp waits for a zonal operation with op.Wait and turns an operation that
// finished with errors into an error (capacity codes wrap cloud.ErrCapacity).
func (p *Provisioner) waitOp(ctx context.Context, op *compute.Operation) error {
	delay := p.cfg.RetryDelay
	for attempt := 0; ; attempt++ {
		err := op.Wait(ctx)
		// Wait reports failed operations through their HTTP error fields only; the
		// codes that matter (ZONE_RESOURCE_POOL_EXHAUSTED...) are in the error list.
		if opErr := operationError(op.Proto()); opErr != nil {
			return opErr
		}
		// Only a poll that did not get through is worth repeating.
		if err == nil || op.Done() || attempt >= p.cfg.Retries || !isTransient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(delay):
		}
		delay *= 2
	}
}

func (p *Provisioner) getInstance(ctx context.Context, zone, name string) (*computepb.Instance, error) {
	var inst *computepb.Instance
	err := p.retry(ctx, func() error {
		var err error
		inst, err = p.instances.Get(ctx, &computepb.GetInstanceRequest{Project: p.cfg.Project, Zone: zone, Instance: name})
		return err
	})
	return inst, err
}

// waitRunning reads the instance until it is RUNNING.
func (p *Provisioner) waitRunning(ctx context.Context, zone, name string, index int) (cloud.Node, error) {
	for {
		inst, err := p.getInstance(ctx, zone, name)
		if err != nil {
			return cloud.Node{}, classify("get "+name, err)
		}
		node := nodeFrom(inst, zone)
		node.Index = index
		switch node.Status {
		case "running":
			return node, nil
		case "stopped", "terminated", "stopping":
			return node, fmt.Errorf("gcp: instance %s in %s is %s (%s) instead of starting",
				name, zone, inst.GetStatus(), inst.GetStatusMessage())
		}
		select {
		case <-ctx.Done():
			return node, fmt.Errorf("gcp: waiting for %s to run: %w", name, ctx.Err())
		case <-time.After(p.cfg.PollInterval):
		}
	}
}

// Read returns the instance, or found=false when it is gone.
func (p *Provisioner) Read(ctx context.Context, region, zone, id string) (cloud.Node, bool, error) {
	inst, err := p.getInstance(ctx, zone, id)
	if isNotFound(err) {
		return cloud.Node{}, false, nil
	}
	if err != nil {
		return cloud.Node{}, false, classify(fmt.Sprintf("get %s in %s/%s", id, p.cfg.Project, zone), err)
	}
	return nodeFrom(inst, zone), true, nil
}

// Delete removes the instance (its boot disk is auto-deleted) and waits.
// An instance already gone is not an error.
func (p *Provisioner) Delete(ctx context.Context, node cloud.Node) error {
	where := fmt.Sprintf("delete %s in %s/%s", node.ID, p.cfg.Project, node.Zone)
	var op *compute.Operation
	err := p.retry(ctx, func() error {
		var err error
		op, err = p.instances.Delete(ctx, &computepb.DeleteInstanceRequest{
			Project:  p.cfg.Project,
			Zone:     node.Zone,
			Instance: node.ID,
			// No requestId: a delete is idempotent by itself (404 once gone), and a
			// fixed id would let a later delete of a same-named instance be skipped.
		})
		return err
	})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return classify(where, err)
	}
	if err := p.waitOp(ctx, op); err != nil && !isNotFound(err) {
		return classify(where, err)
	}
	return nil
}

// ListByLineage returns the instances labelled with lineage, in the given
// regions (all regions when empty), sorted by zone and name. It uses one
// aggregated list with a label filter.
func (p *Provisioner) ListByLineage(ctx context.Context, lineage string, regions []string) ([]cloud.Node, error) {
	filter := fmt.Sprintf("labels.%s = %q", LabelLineage, LabelValue(lineage))
	it := p.instances.AggregatedList(ctx, &computepb.AggregatedListInstancesRequest{
		Project: p.cfg.Project,
		Filter:  proto.String(filter),
	})
	var nodes []cloud.Node
	for {
		pair, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, classify("list instances of lineage "+lineage, err)
		}
		zone := strings.TrimPrefix(pair.Key, "zones/")
		if !inRegions(zone, regions) {
			continue
		}
		for _, inst := range pair.Value.GetInstances() {
			// The filter is applied by the API; check again so a server that
			// ignores it cannot make lepton claim another state's instances.
			if inst.GetLabels()[LabelLineage] != LabelValue(lineage) {
				continue
			}
			nodes = append(nodes, nodeFrom(inst, zone))
		}
	}
	sort.Slice(nodes, func(i, j int) bool {
		if nodes[i].Zone != nodes[j].Zone {
			return nodes[i].Zone < nodes[j].Zone
		}
		return nodes[i].ID < nodes[j].ID
	})
	return nodes, nil
}

func inRegions(zone string, regions []string) bool {
	if len(regions) == 0 {
		return true
	}
	for _, r := range regions {
		if regionOf(zone) == r {
			return true
		}
	}
	return false
}

// regionOf strips the zone letter: us-central1-a -> us-central1.
func regionOf(zone string) string {
	if i := strings.LastIndexByte(zone, '-'); i > 0 {
		return zone[:i]
	}
	return zone
}

// lastSegment returns the name at the end of a resource URL or path.
func lastSegment(s string) string {
	return s[strings.LastIndexByte(s, '/')+1:]
}

// nodeFrom converts an API instance into a cloud.Node.
func nodeFrom(inst *computepb.Instance, zone string) cloud.Node {
	if z := inst.GetZone(); z != "" {
		zone = lastSegment(z)
	}
	n := cloud.Node{
		ID:     inst.GetName(),
		Zone:   zone,
		Region: regionOf(zone),
		Status: neutralStatus(inst.GetStatus()),
	}
	if mt := inst.GetMachineType(); mt != "" {
		n.InstanceType = lastSegment(mt)
	}
	if idx, err := strconv.Atoi(inst.GetLabels()[LabelIndex]); err == nil {
		n.Index = idx
	}
	// The exact address is in metadata; the label may be an encoded form.
	for _, it := range inst.GetMetadata().GetItems() {
		if it.GetKey() == "lepton-address" {
			n.Cluster = it.GetValue()
		}
	}
	if n.Cluster == "" {
		n.Cluster = inst.GetLabels()[LabelAddress]
	}
	for _, nic := range inst.GetNetworkInterfaces() {
		for _, ac := range nic.GetAccessConfigs() {
			if ip := ac.GetNatIP(); ip != "" && n.Address == "" {
				n.Address = ip
			}
		}
	}
	if n.Address == "" && len(inst.GetNetworkInterfaces()) > 0 {
		n.Address = inst.GetNetworkInterfaces()[0].GetNetworkIP()
	}
	return n
}

// neutralStatus maps Compute Engine instance states to cloud.Node states. GCP's
// TERMINATED means stopped (the instance still exists); a deleted instance is
// simply not found.
func neutralStatus(s string) string {
	switch s {
	case "PROVISIONING", "STAGING", "REPAIRING", "PENDING":
		return "pending"
	case "RUNNING":
		return "running"
	case "STOPPING", "SUSPENDING", "PENDING_STOP":
		return "stopping"
	case "STOPPED", "SUSPENDED", "TERMINATED":
		return "stopped"
	default:
		return strings.ToLower(s)
	}
}
