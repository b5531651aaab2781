// Package aws provisions lepton cluster nodes as EC2 instances through the
// official SDK (github.com/aws/aws-sdk-go-v2/service/ec2). It implements
// cloud.Provisioner: RunInstances with a GPU machine image looked up at apply time,
// a ClientToken for idempotency, lepton tags, spot through InstanceMarketOptions
// and the root volume size; waiting until running; DescribeInstances for refresh
// and orphan listing; TerminateInstances on delete.
package aws

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/leptonml/lepton/providers/cloud"
)

// Tag keys lepton puts on every instance it creates.
const (
	TagAddress = "lepton:address"
	TagLineage = "lepton:lineage"
	TagIndex   = "lepton:index"
)

// Default image lookup: the AWS Deep Learning Base AMI (NVIDIA driver, CUDA) on
// Ubuntu 22.04, published by Amazon in every region under a dated name. The newest
// x86_64 one is used; a cluster's `image` argument overrides it.
const (
	DefaultImageName  = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04)*"
	DefaultImageOwner = "amazon"
)

// Config configures the provisioner. The zero value works: credentials and the
// default region come from the SDK's default chain (environment, shared config
// and credentials files, SSO, container and instance roles).
type Config struct {
	Region   string // default region for ListByLineage when none is given; default: the SDK's (AWS_REGION)
	Profile  string // shared config profile; default: AWS_PROFILE or "default"
	Endpoint string // override of the EC2 endpoint URL (tests, proxies); sets o.BaseEndpoint

	ImageName  string // name filter for the machine image lookup; default DefaultImageName
	ImageOwner string // owner of the machine image; default DefaultImageOwner

	PollInterval time.Duration // shortest delay between state checks while waiting; default 5s
	WaitTimeout  time.Duration // how long to wait for running or terminated; default 20m
	MaxAttempts  int           // SDK attempts per call, retries included; default 3 (the SDK's)
	MaxBackoff   time.Duration // longest delay between SDK retries; default 20s (the SDK's)

	// Credentials, when set, replaces the default chain (tests use static ones).
	Credentials awssdk.CredentialsProvider
}

// Provisioner manages EC2 instances for lepton clusters. It is safe for concurrent
// use; clients and image lookups are cached per region.
type Provisioner struct {
	cfg  Config
	base awssdk.Config

	mu      sync.Mutex
	clients map[string]ec2API
	images  map[string]*imageLookup
}

// ec2API is the part of the EC2 client the provisioner calls, as method values.
// The provisioner keeps these instead of the *ec2.Client: lepton's binary links
// libraries that call reflect.Value.Method, after which the Go linker keeps every
// exported method of every type that can be reached from an interface value, and
// for *ec2.Client that is about 800 API operations (37 MB of binary). No
// *ec2.Client may therefore be stored in a field or converted to an interface
// (waiters and paginators get describeInstancesFunc): see docs/benchmarks/size.md.
type ec2API struct {
	DescribeImages     func(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DescribeInstances  describeInstancesFunc
	RunInstances       func(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	TerminateInstances func(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
}

// describeInstancesFunc is ec2.DescribeInstancesAPIClient for waiters and
// paginators, without handing them the whole client (see ec2API).
type describeInstancesFunc func(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)

func (f describeInstancesFunc) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return f(ctx, in, opts...)
}

// imageLookup is one region's image, looked up by the first caller while
// concurrent callers wait (fifty nodes created at once make one DescribeImages
// call, not fifty). A failed lookup is not kept.
type imageLookup struct {
	mu             sync.Mutex
	done           bool
	id, rootDevice string
}

var _ cloud.Provisioner = (*Provisioner)(nil)

// New loads the SDK configuration. It reads environment and files but makes no
// network call and does not need credentials: those are checked at the first
// API call, so planning works without them.
func New(ctx context.Context, cfg Config) (*Provisioner, error) {
	if cfg.ImageName == "" {
		cfg.ImageName = DefaultImageName
	}
	if cfg.ImageOwner == "" {
		cfg.ImageOwner = DefaultImageOwner
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 20 * time.Minute
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() awssdk.Retryer { return newRetryer(cfg) }),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	base, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws: load configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = base.Region
	}
	return &Provisioner{cfg: cfg, base: base, clients: map[string]ec2API{}, images: map[string]*imageLookup{}}, nil
}

// isCapacityCode tells EC2 errors after which another zone, region or cloud may
// succeed: shortages and quotas.
func isCapacityCode(code string) bool {
	switch code {
	case "InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
		"InsufficientReservedInstanceCapacity", "InstanceLimitExceeded", "VcpuLimitExceeded",
		"MaxSpotInstanceCountExceeded", "SpotMaxPriceTooLow",
		"Unsupported": // the instance type is not offered in this zone
		return true
	}
	return false
}

// isCredentialCode tells errors that mean the request's credentials were rejected.
func isCredentialCode(code string) bool {
	switch code {
	case "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken",
		"RequestExpired", "UnrecognizedClientException":
		return true
	}
	return false
}

// newRetryer is the SDK's standard retryer, except that capacity errors are not
// retried: EC2 reports some of them as server errors (HTTP 500), which the SDK
// would otherwise retry against the same full zone instead of failing over.
func newRetryer(cfg Config) awssdk.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) awssdk.Ternary {
			var ae smithy.APIError
			if errors.As(err, &ae) && isCapacityCode(ae.ErrorCode()) {
				return awssdk.FalseTernary
			}
			return awssdk.UnknownTernary
		})}, o.Retryables...)
		if cfg.MaxAttempts > 0 {
			o.MaxAttempts = cfg.MaxAttempts
		}
		if cfg.MaxBackoff > 0 {
			o.MaxBackoff = cfg.MaxBackoff
		}
	})
}

func (p *Provisioner) client(region string) (ec2API, error) {
	if region == "" {
		region = p.cfg.Region
	}
	if region == "" {
		return ec2API{}, errors.New("aws: no region: set the cluster's regions, or AWS_REGION")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[region]; ok {
		return c, nil
	}
	c := ec2.NewFromConfig(p.base, func(o *ec2.Options) {
		o.Region = region
		if p.cfg.Endpoint != "" {
			o.BaseEndpoint = awssdk.String(p.cfg.Endpoint)
		}
	})
	api := ec2API{
		DescribeImages:     c.DescribeImages,
		DescribeInstances:  c.DescribeInstances,
		RunInstances:       c.RunInstances,
		TerminateInstances: c.TerminateInstances,
	}
	p.clients[region] = api
	return api, nil
}

// checkCredentials turns "the default chain found nothing" into ErrCredentials
// naming what to set. The chain caches what it finds, so this is cheap after the
// first call.
func (p *Provisioner) checkCredentials(ctx context.Context) error {
	if p.base.Credentials == nil {
		return fmt.Errorf("%w: aws: no credential source; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE", cloud.ErrCredentials)
	}
	if _, err := p.base.Credentials.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: aws: no credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE for a profile in ~/.aws/config): %v", cloud.ErrCredentials, err)
	}
	return nil
}

// classify wraps EC2 errors into the seam's sentinels, keeping the EC2 code and
// message in the text.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch {
		case isCapacityCode(ae.ErrorCode()):
			return fmt.Errorf("%w: aws %s: %s: %s", cloud.ErrCapacity, op, ae.ErrorCode(), ae.ErrorMessage())
		case isCredentialCode(ae.ErrorCode()):
			return fmt.Errorf("%w: aws %s: %s: %s (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)", cloud.ErrCredentials, op, ae.ErrorCode(), ae.ErrorMessage())
		}
	}
	return fmt.Errorf("aws %s: %w", op, err)
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// Image returns the machine image Create uses in region: the newest available
// x86_64 image owned by the configured owner whose name matches the configured
// filter. It is looked up once per region and provisioner.
func (p *Provisioner) Image(ctx context.Context, region string) (id, rootDevice string, err error) {
	p.mu.Lock()
	l, ok := p.images[region]
	if !ok {
		l = &imageLookup{}
		p.images[region] = l
	}
	p.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return l.id, l.rootDevice, nil
	}
	c, err := p.client(region)
	if err != nil {
		return "", "", err
	}
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{p.cfg.ImageOwner},
		Filters: []types.Filter{
			{Name: awssdk.String("name"), Values: []string{p.cfg.ImageName}},
			{Name: awssdk.String("state"), Values: []string{"available"}},
			{Name: awssdk.String("architecture"), Values: []string{"x86_64"}},
		},
	})
	if err != nil {
		return "", "", classify("DescribeImages", err)
	}
	imgs := out.Images
	if len(imgs) == 0 {
		return "", "", fmt.Errorf("aws: no machine image named %q owned by %s in %s; set the cluster's image", p.cfg.ImageName, p.cfg.ImageOwner, region)
	}
	// CreationDate is RFC 3339 in UTC, so the newest sorts last as a string; ties
	// are broken by ID for a stable choice.
	sort.Slice(imgs, func(i, j int) bool {
		a, b := awssdk.ToString(imgs[i].CreationDate), awssdk.ToString(imgs[j].CreationDate)
		if a != b {
			return a > b
		}
		return awssdk.ToString(imgs[i].ImageId) < awssdk.ToString(imgs[j].ImageId)
	})
	l.id, l.rootDevice = awssdk.ToString(imgs[0].ImageId), awssdk.ToString(imgs[0].RootDeviceName)
	if l.rootDevice == "" {
		l.rootDevice = "/dev/sda1"
	}
	l.done = true
	return l.id, l.rootDevice, nil
}

// zoneIsID tells an AZ ID (use1-az1, the catalog's form) from an AZ name (us-east-1a).
func zoneIsID(zone string) bool { return strings.Contains(zone, "-az") }

// Create runs one instance and waits until it is running. If the instance was
// created but the wait fails, the returned Node carries its ID along with the
// error, so the caller can delete it.
func (p *Provisioner) Create(ctx context.Context, spec cloud.NodeSpec) (cloud.Node, error) {
	if err := p.checkCredentials(ctx); err != nil {
		return cloud.Node{}, err
	}
	c, err := p.client(spec.Region)
	if err != nil {
		return cloud.Node{}, err
	}
	imageID, rootDevice := spec.Image, "/dev/sda1"
	if imageID == "" {
		if imageID, rootDevice, err = p.Image(ctx, spec.Region); err != nil {
			return cloud.Node{}, err
		}
	}
	name := fmt.Sprintf("lepton-%s-%d", strings.ReplaceAll(spec.Address, ".", "-"), spec.Index)
	tags := []types.Tag{
		{Key: awssdk.String("Name"), Value: awssdk.String(name)},
		{Key: awssdk.String(TagAddress), Value: awssdk.String(spec.Address)},
		{Key: awssdk.String(TagLineage), Value: awssdk.String(spec.Lineage)},
		{Key: awssdk.String(TagIndex), Value: awssdk.String(strconv.Itoa(spec.Index))},
	}
	in := &ec2.RunInstancesInput{
		ImageId:      awssdk.String(imageID),
		InstanceType: types.InstanceType(spec.InstanceType),
		MinCount:     awssdk.Int32(1),
		MaxCount:     awssdk.Int32(1),
		ClientToken:  optional(spec.ClientToken),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: tags},
			{ResourceType: types.ResourceTypeVolume, Tags: tags},
		},
	}
	if spec.Zone != "" {
		if zoneIsID(spec.Zone) {
			in.Placement = &types.Placement{AvailabilityZoneId: awssdk.String(spec.Zone)}
		} else {
			in.Placement = &types.Placement{AvailabilityZone: awssdk.String(spec.Zone)}
		}
	}
	if spec.DiskGB > 0 {
		in.BlockDeviceMappings = []types.BlockDeviceMapping{{
			DeviceName: awssdk.String(rootDevice),
			Ebs: &types.EbsBlockDevice{
				VolumeSize:          awssdk.Int32(int32(spec.DiskGB)),
				VolumeType:          types.VolumeTypeGp3,
				DeleteOnTermination: awssdk.Bool(true),
			},
		}}
	}
	if spec.UserData != "" {
		// EC2 takes user data base64-encoded (the SDK does not encode it).
		in.UserData = awssdk.String(base64.StdEncoding.EncodeToString([]byte(spec.UserData)))
	}
	if spec.Spot {
		in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{
			MarketType: types.MarketTypeSpot,
			SpotOptions: &types.SpotMarketOptions{
				SpotInstanceType:             types.SpotInstanceTypeOneTime,
				InstanceInterruptionBehavior: types.InstanceInterruptionBehaviorTerminate,
			},
		}
	}
	out, err := c.RunInstances(ctx, in)
	if err != nil && spec.ClientToken != "" && isCode(err, "IdempotentParameterMismatch") {
		// The token was used with other arguments: the user data of an
		// earlier attempt held URLs signed at another time. The instance that
		// attempt made, of the same type, is this node (adopted, or, when terminated, left to
		// the caller to create again under another token).
		if prev, ferr := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: awssdk.String("client-token"), Values: []string{spec.ClientToken}}}}); ferr == nil {
			// Only when it is the same kind of machine: other arguments that
			// matter stay a mismatch.
			if inst, ok := first(prev); ok && string(inst.InstanceType) == spec.InstanceType {
				out, err = &ec2.RunInstancesOutput{Instances: []types.Instance{inst}}, nil
			}
		}
	}
	if err != nil {
		return cloud.Node{}, classify("RunInstances "+spec.InstanceType+" in "+where(spec.Region, spec.Zone), err)
	}
	if len(out.Instances) != 1 {
		return cloud.Node{}, fmt.Errorf("aws RunInstances: %d instances in the answer, want 1", len(out.Instances))
	}
	id := awssdk.ToString(out.Instances[0].InstanceId)
	created := toNode(spec.Region, out.Instances[0])
	created.Index = spec.Index

	w := ec2.NewInstanceRunningWaiter(c.DescribeInstances, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay = p.cfg.PollInterval
		if o.MaxDelay < o.MinDelay {
			o.MaxDelay = o.MinDelay
		}
	})
	desc, err := w.WaitForOutput(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, p.cfg.WaitTimeout)
	if err != nil {
		return created, p.waitError(ctx, c, spec, id, err)
	}
	inst, ok := first(desc)
	if !ok {
		return created, fmt.Errorf("aws: instance %s is running but DescribeInstances did not return it", id)
	}
	node := toNode(spec.Region, inst)
	node.Index = spec.Index
	return node, nil
}

// waitError explains a failed wait: a spot or capacity termination right after
// launch is a capacity error (the next offer may work); anything else is not.
func (p *Provisioner) waitError(ctx context.Context, c ec2API, spec cloud.NodeSpec, id string, werr error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("aws: waiting for %s to run: %w", id, ctx.Err())
	}
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err == nil {
		if inst, ok := first(out); ok && inst.StateReason != nil {
			code := awssdk.ToString(inst.StateReason.Code)
			if strings.Contains(code, "InsufficientInstanceCapacity") || strings.Contains(code, "SpotInstanceTermination") {
				return fmt.Errorf("%w: aws: instance %s in %s ended while starting: %s", cloud.ErrCapacity, id, where(spec.Region, spec.Zone), awssdk.ToString(inst.StateReason.Message))
			}
			return fmt.Errorf("aws: instance %s did not reach running (%s: %s): %w", id, code, awssdk.ToString(inst.StateReason.Message), werr)
		}
	}
	return fmt.Errorf("aws: waiting for instance %s to run: %w", id, werr)
}

// Read returns the instance, or found=false when it no longer exists or is
// shutting down or terminated (EC2 lists terminated instances for about an hour).
func (p *Provisioner) Read(ctx context.Context, region, zone, id string) (cloud.Node, bool, error) {
	if err := p.checkCredentials(ctx); err != nil {
		return cloud.Node{}, false, err
	}
	c, err := p.client(region)
	if err != nil {
		return cloud.Node{}, false, err
	}
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if isCode(err, "InvalidInstanceID.NotFound") {
		return cloud.Node{}, false, nil
	}
	if err != nil {
		return cloud.Node{}, false, classify("DescribeInstances "+id, err)
	}
	inst, ok := first(out)
	if !ok {
		return cloud.Node{}, false, nil
	}
	n := toNode(region, inst)
	if n.Status == "terminated" {
		return n, false, nil
	}
	return n, true, nil
}

// Delete terminates the instance (its root volume goes with it) and waits until
// it is terminated. An instance that is already gone is not an error.
func (p *Provisioner) Delete(ctx context.Context, node cloud.Node) error {
	if err := p.checkCredentials(ctx); err != nil {
		return err
	}
	c, err := p.client(node.Region)
	if err != nil {
		return err
	}
	_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{node.ID}})
	if isCode(err, "InvalidInstanceID.NotFound") {
		return nil
	}
	if err != nil {
		return classify("TerminateInstances "+node.ID, err)
	}
	w := ec2.NewInstanceTerminatedWaiter(c.DescribeInstances, func(o *ec2.InstanceTerminatedWaiterOptions) {
		o.MinDelay = p.cfg.PollInterval
		if o.MaxDelay < o.MinDelay {
			o.MaxDelay = o.MinDelay
		}
	})
	err = w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{node.ID}}, p.cfg.WaitTimeout)
	if err != nil && !isCode(err, "InvalidInstanceID.NotFound") { // gone is terminated
		return fmt.Errorf("aws: waiting for %s to terminate: %w", node.ID, err)
	}
	return nil
}

// ListByLineage returns the instances tagged with lineage that are not shutting
// down or terminated, in the given regions (default: the configured region).
func (p *Provisioner) ListByLineage(ctx context.Context, lineage string, regions []string) ([]cloud.Node, error) {
	if err := p.checkCredentials(ctx); err != nil {
		return nil, err
	}
	if len(regions) == 0 {
		regions = []string{p.cfg.Region}
	}
	var nodes []cloud.Node
	for _, region := range regions {
		c, err := p.client(region)
		if err != nil {
			return nil, err
		}
		pages := ec2.NewDescribeInstancesPaginator(c.DescribeInstances, &ec2.DescribeInstancesInput{
			Filters: []types.Filter{
				{Name: awssdk.String("tag:" + TagLineage), Values: []string{lineage}},
				{Name: awssdk.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
			},
			MaxResults: awssdk.Int32(100),
		})
		for pages.HasMorePages() {
			out, err := pages.NextPage(ctx)
			if err != nil {
				return nil, classify("DescribeInstances in "+region, err)
			}
			for _, r := range out.Reservations {
				for _, inst := range r.Instances {
					n := toNode(region, inst)
					for _, t := range inst.Tags {
						switch awssdk.ToString(t.Key) {
						case TagAddress:
							n.Cluster = awssdk.ToString(t.Value)
						case TagIndex:
							n.Index, _ = strconv.Atoi(awssdk.ToString(t.Value))
						}
					}
					nodes = append(nodes, n)
				}
			}
		}
	}
	return nodes, nil
}

func first(out *ec2.DescribeInstancesOutput) (types.Instance, bool) {
	if out == nil {
		return types.Instance{}, false
	}
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			return inst, true
		}
	}
	return types.Instance{}, false
}

func toNode(region string, inst types.Instance) cloud.Node {
	n := cloud.Node{ID: awssdk.ToString(inst.InstanceId), Region: region, InstanceType: string(inst.InstanceType)}
	if inst.Placement != nil {
		n.Zone = awssdk.ToString(inst.Placement.AvailabilityZone)
	}
	n.Address = awssdk.ToString(inst.PublicIpAddress)
	if n.Address == "" {
		n.Address = awssdk.ToString(inst.PrivateIpAddress)
	}
	if inst.State != nil {
		n.Status = status(inst.State.Name)
	}
	return n
}

// status maps EC2 states to the seam's cloud-neutral ones.
func status(s types.InstanceStateName) string {
	switch s {
	case types.InstanceStateNamePending:
		return "pending"
	case types.InstanceStateNameRunning:
		return "running"
	case types.InstanceStateNameStopping:
		return "stopping"
	case types.InstanceStateNameStopped:
		return "stopped"
	default: // shutting-down, terminated
		return "terminated"
	}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return awssdk.String(s)
}

func where(region, zone string) string {
	if zone == "" {
		return region
	}
	return region + "/" + zone
}
