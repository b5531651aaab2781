package cloud_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leptonml/lepton/providers/cloud"
)

// memProvisioner is an in-memory cloud: instances are map entries. failCreate
// decides per spec whether a create fails (and whether it still leaves an
// instance behind, as a create whose wait failed does).
type memProvisioner struct {
	mu         sync.Mutex
	next       int
	live       map[string]cloud.Node
	tokens     map[string]string
	creates    []cloud.NodeSpec
	inFlight   int
	maxFlight  int
	failCreate func(cloud.NodeSpec) (leave bool, err error)
	failDelete func(cloud.Node) error
	barrier    chan struct{} // when set, each create waits for it to close
}

func newMem() *memProvisioner {
	return &memProvisioner{live: map[string]cloud.Node{}, tokens: map[string]string{}}
}

func (m *memProvisioner) Create(ctx context.Context, s cloud.NodeSpec) (cloud.Node, error) {
	m.mu.Lock()
	m.creates = append(m.creates, s)
	m.inFlight++
	if m.inFlight > m.maxFlight {
		m.maxFlight = m.inFlight
	}
	m.mu.Unlock()
	defer func() { m.mu.Lock(); m.inFlight--; m.mu.Unlock() }()
	if m.barrier != nil {
		select {
		case <-m.barrier:
		case <-ctx.Done():
			return cloud.Node{}, ctx.Err()
		}
	}
	var leave bool
	var err error
	if m.failCreate != nil {
		leave, err = m.failCreate(s)
	}
	if err != nil && !leave {
		return cloud.Node{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.tokens[s.ClientToken]; ok {
		return m.live[id], err
	}
	m.next++
	n := cloud.Node{ID: fmt.Sprintf("i-%d", m.next), Region: s.Region, Zone: s.Zone, Status: "running", Index: s.Index, Cluster: s.Address}
	m.live[n.ID] = n
	m.tokens[s.ClientToken] = n.ID
	return n, err
}

func (m *memProvisioner) Read(ctx context.Context, region, zone, id string) (cloud.Node, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.live[id]
	return n, ok, nil
}

func (m *memProvisioner) Delete(ctx context.Context, n cloud.Node) error {
	if m.failDelete != nil {
		if err := m.failDelete(n); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.live, n.ID)
	return nil
}

func (m *memProvisioner) ListByLineage(ctx context.Context, lineage string, regions []string) ([]cloud.Node, error) {
	return nil, nil
}

func (m *memProvisioner) liveCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.live)
}

var offers = []cloud.Offer{
	{Cloud: "aws", InstanceType: "p4d.24xlarge", Region: "us-east-1", Zone: "use1-az1", GPUName: "A100", GPUCount: 8, PricePerHour: 32.77},
	{Cloud: "aws", InstanceType: "p4d.24xlarge", Region: "us-west-2", Zone: "usw2-az1", GPUName: "A100", GPUCount: 8, PricePerHour: 32.77},
	{Cloud: "gcp", InstanceType: "a2-highgpu-8g", Region: "us-central1", Zone: "us-central1-a", GPUName: "A100", GPUCount: 8, PricePerHour: 29.39},
}

func capacity(region string) error {
	return fmt.Errorf("%w: api error InsufficientInstanceCapacity: no capacity in %s", cloud.ErrCapacity, region)
}

func request(nodes int, report func(cloud.Attempt)) cloud.Request {
	return cloud.Request{
		Offers:    offers,
		Nodes:     nodes,
		Template:  cloud.NodeSpec{Address: "cluster.gpu", Lineage: "lin-1", DiskGB: 256},
		TokenSeed: "lin-1/7",
		Report:    report,
	}
}

func TestProvisionFailsOverOnCapacity(t *testing.T) {
	aws, gcp := newMem(), newMem()
	aws.failCreate = func(s cloud.NodeSpec) (bool, error) { return false, capacity(s.Region) }
	var reported []cloud.Attempt
	res, err := cloud.Provision(context.Background(), request(2, func(a cloud.Attempt) { reported = append(reported, a) }),
		map[string]cloud.Provisioner{"aws": aws, "gcp": gcp})
	if err != nil {
		t.Fatal(err)
	}
	if res.Offer != offers[2] || len(res.Nodes) != 2 || res.Nodes[0].Index != 0 || res.Nodes[1].Index != 1 {
		t.Fatalf("landed on %v with nodes %+v", res.Offer, res.Nodes)
	}
	if len(res.Attempts) != 3 || len(reported) != 3 {
		t.Fatalf("attempts %d, reported %d, want 3", len(res.Attempts), len(reported))
	}
	for i, a := range res.Attempts[:2] {
		if a.Offer != offers[i] || !errors.Is(a.Err, cloud.ErrCapacity) || len(a.Created) != 0 {
			t.Errorf("attempt %d = %+v", i, a)
		}
	}
	if res.Attempts[2].Err != nil || reported[2].Offer != offers[2] {
		t.Errorf("last attempt = %+v", res.Attempts[2])
	}
	// Each node's spec carries the offer and a per-node, per-offer token.
	tokens := map[string]bool{}
	for _, s := range append(aws.creates, gcp.creates...) {
		tokens[s.ClientToken] = true
		if s.Address != "cluster.gpu" || s.DiskGB != 256 || s.GPUCount != 8 {
			t.Errorf("spec %+v lost template fields", s)
		}
	}
	if len(tokens) != 6 {
		t.Errorf("%d distinct tokens for 6 creates", len(tokens))
	}
	if gcp.liveCount() != 2 || aws.liveCount() != 0 {
		t.Errorf("live instances: gcp %d aws %d", gcp.liveCount(), aws.liveCount())
	}
}

// A multi-node cluster that half-lands on an offer is deleted before the next.
func TestProvisionCleansUpPartialCluster(t *testing.T) {
	aws, gcp := newMem(), newMem()
	aws.failCreate = func(s cloud.NodeSpec) (bool, error) {
		if s.Region == "us-east-1" && s.Index == 2 {
			return false, capacity(s.Region)
		}
		if s.Region == "us-west-2" && s.Index == 1 {
			return true, fmt.Errorf("%w: instance i-x terminated while starting: Server.InsufficientInstanceCapacity", cloud.ErrCapacity)
		}
		return false, nil
	}
	res, err := cloud.Provision(context.Background(), request(3, nil), map[string]cloud.Provisioner{"aws": aws, "gcp": gcp})
	if err != nil {
		t.Fatal(err)
	}
	if res.Offer.Cloud != "gcp" || len(res.Nodes) != 3 {
		t.Fatalf("landed %v nodes %d", res.Offer, len(res.Nodes))
	}
	if got := len(res.Attempts[0].Created); got != 2 {
		t.Errorf("first attempt created %d, want 2 (nodes 0 and 1)", got)
	}
	if got := len(res.Attempts[1].Created); got != 3 {
		t.Errorf("second attempt created %d, want 3 (node 1 exists although its wait failed)", got)
	}
	if aws.liveCount() != 0 || len(res.Leaked) != 0 {
		t.Errorf("aws still has %d instances, leaked %v", aws.liveCount(), res.Leaked)
	}
}

func TestProvisionRecordsWhatItCannotDelete(t *testing.T) {
	aws, gcp := newMem(), newMem()
	aws.failCreate = func(s cloud.NodeSpec) (bool, error) {
		if s.Index == 1 {
			return false, capacity(s.Region)
		}
		return false, nil
	}
	aws.failDelete = func(n cloud.Node) error {
		if n.Region == "us-west-2" {
			return errors.New("RequestLimitExceeded")
		}
		return nil
	}
	res, err := cloud.Provision(context.Background(), request(2, nil), map[string]cloud.Provisioner{"aws": aws, "gcp": gcp})
	if err != nil {
		t.Fatal(err)
	}
	if res.Offer.Cloud != "gcp" {
		t.Fatalf("landed on %v", res.Offer)
	}
	if len(res.Leaked) != 1 || res.Leaked[0].Region != "us-west-2" || res.Attempts[1].CleanupErr == nil {
		t.Fatalf("leaked %+v, cleanup err %v", res.Leaked, res.Attempts[1].CleanupErr)
	}
	if aws.liveCount() != 1 {
		t.Fatalf("aws has %d live, want the 1 leaked", aws.liveCount())
	}
}

func TestProvisionStopsOnOtherErrors(t *testing.T) {
	aws, gcp := newMem(), newMem()
	aws.failCreate = func(s cloud.NodeSpec) (bool, error) {
		switch s.Index {
		case 0:
			return false, nil
		case 1:
			return false, capacity(s.Region)
		default:
			return false, fmt.Errorf("%w: set AWS_PROFILE", cloud.ErrCredentials)
		}
	}
	res, err := cloud.Provision(context.Background(), request(3, nil), map[string]cloud.Provisioner{"aws": aws, "gcp": gcp})
	if !errors.Is(err, cloud.ErrCredentials) || !strings.Contains(err.Error(), "cluster.gpu") {
		t.Fatalf("err = %v, want the credentials error (not hidden by the sibling's capacity error)", err)
	}
	if len(res.Attempts) != 1 || len(gcp.creates) != 0 || aws.liveCount() != 0 {
		t.Fatalf("attempts %d, gcp creates %d, aws live %d", len(res.Attempts), len(gcp.creates), aws.liveCount())
	}
}

func TestProvisionExhausted(t *testing.T) {
	p := newMem()
	p.failCreate = func(s cloud.NodeSpec) (bool, error) { return false, capacity(s.Region) }
	res, err := cloud.Provision(context.Background(), request(1, nil), map[string]cloud.Provisioner{"aws": p, "gcp": p})
	if !errors.Is(err, cloud.ErrCapacity) || !strings.Contains(err.Error(), "none of 3 offers had capacity") {
		t.Fatalf("err = %v", err)
	}
	if len(res.Attempts) != 3 || res.Offer != (cloud.Offer{}) {
		t.Fatalf("result %+v", res)
	}
}

func TestProvisionRequestErrors(t *testing.T) {
	if _, err := cloud.Provision(context.Background(), cloud.Request{Nodes: 1}, nil); err == nil {
		t.Error("no offers: no error")
	}
	if _, err := cloud.Provision(context.Background(), cloud.Request{Offers: offers}, nil); err == nil {
		t.Error("0 nodes: no error")
	}
	_, err := cloud.Provision(context.Background(), request(1, nil), map[string]cloud.Provisioner{"gcp": newMem()})
	if err == nil || !strings.Contains(err.Error(), "no aws provisioner is configured") {
		t.Errorf("missing provisioner: %v", err)
	}
}

// Nodes of one offer are created concurrently: with no limit, all four creates
// must be in flight at once for any of them to finish (the barrier opens only
// then); with parallelism 2, never more than two are.
func TestCreateNodesParallel(t *testing.T) {
	p := newMem()
	p.barrier = make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p.mu.Lock()
			n := p.inFlight
			p.mu.Unlock()
			if n == 4 {
				close(p.barrier)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes, err := cloud.CreateNodes(ctx, p, offers[0], cloud.NodeSpec{Address: "cluster.a"}, "seed", []int{0, 1, 2, 3}, 0)
	<-done
	if err != nil || len(nodes) != 4 {
		t.Fatalf("CreateNodes = %d nodes, %v", len(nodes), err)
	}

	q := newMem()
	nodes, err = cloud.CreateNodes(context.Background(), q, offers[0], cloud.NodeSpec{Address: "cluster.b"}, "seed", []int{0, 1, 2, 3, 4, 5}, 2)
	if err != nil || len(nodes) != 6 || q.maxFlight > 2 {
		t.Fatalf("CreateNodes(parallelism 2) = %d nodes, %v, max in flight %d", len(nodes), err, q.maxFlight)
	}
}

func TestClientToken(t *testing.T) {
	a := cloud.ClientToken("seed", "cluster.gpu", 0, offers[0])
	if a != cloud.ClientToken("seed", "cluster.gpu", 0, offers[0]) {
		t.Fatal("token not stable")
	}
	spot := offers[0]
	spot.Spot = true
	for _, b := range []string{
		cloud.ClientToken("seed2", "cluster.gpu", 0, offers[0]),
		cloud.ClientToken("seed", "cluster.cpu", 0, offers[0]),
		cloud.ClientToken("seed", "cluster.gpu", 1, offers[0]),
		cloud.ClientToken("seed", "cluster.gpu", 0, offers[1]),
		cloud.ClientToken("seed", "cluster.gpu", 0, spot),
	} {
		if b == a {
			t.Fatalf("token %s not distinct", b)
		}
	}
	if len(a) != 36 || len(a) > 64 {
		t.Fatalf("token %q: want a UUID (GCP requestId) within EC2's 64 characters", a)
	}
}

func TestOrphans(t *testing.T) {
	listed := []cloud.Node{
		{ID: "i-3", Cluster: "cluster.b", Index: 0},
		{ID: "i-1", Cluster: "cluster.a", Index: 1},
		{ID: "i-2", Cluster: "cluster.a", Index: 0},
		{ID: "i-4", Cluster: "cluster.a", Index: 0},
	}
	state := map[string]bool{"i-2": true}
	got := cloud.Orphans(listed, func(id string) bool { return state[id] })
	var ids []string
	for _, n := range got {
		ids = append(ids, n.ID)
	}
	if strings.Join(ids, ",") != "i-4,i-1,i-3" {
		t.Fatalf("orphans %v", ids)
	}
}
