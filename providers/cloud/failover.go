package cloud

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Offer is one place a cluster can land: an instance type in a region and zone of a
// cloud, on the spot or on-demand market, at a per-node price. The optimizer
// (providers/catalog) ranks them; Provision tries them in that order.
type Offer struct {
	Cloud        string
	InstanceType string
	Region       string
	Zone         string // empty when the cloud places by region (Azure)
	Spot         bool
	GPUName      string
	GPUCount     int
	PricePerHour float64 // per node
}

func (o Offer) String() string {
	where := o.Region
	if o.Zone != "" {
		where += "/" + o.Zone
	}
	market := "on-demand"
	if o.Spot {
		market = "spot"
	}
	return fmt.Sprintf("%s %s in %s (%s, $%.4g/hr per node)", o.Cloud, o.InstanceType, where, market, o.PricePerHour)
}

// Attempt is the outcome of trying one offer.
type Attempt struct {
	Offer Offer
	Err   error // nil when the cluster landed on this offer
	// Created are the instances that existed when the attempt ended: all nodes on
	// success; on failure, those that were then deleted or, if deletion failed, leaked.
	Created    []Node
	CleanupErr error // deleting Created after a failure did not fully succeed
	Duration   time.Duration
}

// Result says where a cluster landed and how it got there. It is meaningful even
// when Provision returns an error: Attempts lists every try and Leaked the
// instances that could not be cleaned up, which the caller must record in state.
type Result struct {
	Offer    Offer
	Nodes    []Node // by Index
	Attempts []Attempt
	Leaked   []Node
}

// Request is a cluster to provision.
type Request struct {
	Offers []Offer // best first; the rest are fallbacks
	Nodes  int
	// Indexes, when set, are the node indexes to create (Nodes of them): a
	// replacement for lost nodes of a running set; default 0..Nodes-1.
	Indexes []int
	// Template carries Address, Lineage, DiskGB and Image; the per-offer and
	// per-node fields (InstanceType, Region, Zone, Spot, GPU*, Index, ClientToken)
	// are filled in by Provision.
	Template NodeSpec
	// TokenSeed makes idempotency tokens unique to this creation of the cluster
	// (for example the state lineage, serial and address). Tokens are stable across
	// retries with the same seed, so a lost create response never yields a second
	// instance, and differ when the cluster is replaced later.
	TokenSeed   string
	Parallelism int           // concurrent node creations within an offer; 0: all nodes at once
	Report      func(Attempt) // called after each attempt, in order; may be nil
	// CleanupTimeout bounds the deletion of a failed attempt's instances, which runs
	// even when ctx is cancelled so that an interrupted apply does not leak them.
	CleanupTimeout time.Duration // 0: 15 minutes
}

// Provision creates req.Nodes instances on the first offer that has capacity. On a
// capacity or quota error (ErrCapacity) it deletes whatever that offer had created,
// records the attempt and moves on to the next offer. Any other error stops it,
// after the same cleanup. Nodes of one offer are created in parallel.
func Provision(ctx context.Context, req Request, provisioners map[string]Provisioner) (Result, error) {
	var res Result
	if len(req.Offers) == 0 {
		return res, errors.New("provision: no offers to try")
	}
	if req.Nodes < 1 {
		return res, fmt.Errorf("provision: nodes = %d, want at least 1", req.Nodes)
	}
	var lastErr error
	for _, offer := range req.Offers {
		p, ok := provisioners[offer.Cloud]
		if !ok || p == nil {
			return res, fmt.Errorf("provision %s: no %s provisioner is configured (clouds the cluster may use must have credentials and a provider)", offer, offer.Cloud)
		}
		start := time.Now()
		indexes := req.Indexes
		if len(indexes) == 0 {
			indexes = make([]int, req.Nodes)
			for i := range indexes {
				indexes[i] = i
			}
		}
		nodes, err := CreateNodes(ctx, p, offer, req.Template, req.TokenSeed, indexes, req.Parallelism)
		at := Attempt{Offer: offer, Err: err, Created: nodes}
		if err == nil {
			at.Duration = time.Since(start)
			res.Attempts = append(res.Attempts, at)
			res.Offer, res.Nodes = offer, nodes
			report(req, at)
			return res, nil
		}
		if len(nodes) > 0 {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout(req))
			left, cerr := DeleteNodes(cctx, p, nodes, req.Parallelism)
			cancel()
			if cerr != nil {
				at.CleanupErr = cerr
				res.Leaked = append(res.Leaked, left...)
			}
		}
		at.Duration = time.Since(start)
		res.Attempts = append(res.Attempts, at)
		report(req, at)
		if !errors.Is(err, ErrCapacity) || ctx.Err() != nil {
			return res, fmt.Errorf("provision %s on %s: %w", req.Template.Address, offer, err)
		}
		lastErr = err
	}
	return res, fmt.Errorf("provision %s: none of %d offers had capacity; last: %w", req.Template.Address, len(req.Offers), lastErr)
}

func report(req Request, at Attempt) {
	if req.Report != nil {
		req.Report(at)
	}
}

func cleanupTimeout(req Request) time.Duration {
	if req.CleanupTimeout > 0 {
		return req.CleanupTimeout
	}
	return 15 * time.Minute
}

// ClientToken is the idempotency token of node index of a cluster on an offer. It
// is a UUID (GCP's requestId must be one; EC2 takes any string up to 64 characters)
// derived from the seed, the address, the node and the offer, because EC2 rejects a
// reused token whose parameters differ.
func ClientToken(seed, address string, index int, o Offer) string {
	key := strings.Join([]string{seed, address, fmt.Sprint(index), o.Cloud, o.InstanceType, o.Region, o.Zone, fmt.Sprint(o.Spot)}, "\x00")
	return uuid.NewSHA1(uuid.MustParse(tokenNamespace), []byte(key)).String()
}

// tokenNamespace is lepton's UUID namespace for idempotency tokens.
const tokenNamespace = "8f5c7f0e-9a43-4f3c-9d55-4c6570746f6e"

// CreateNodes creates the nodes with the given indexes on one offer, at most
// parallelism at a time (0: all at once). It waits for every creation to finish,
// even after one fails, because abandoning a create in flight could leave an
// instance nobody knows about. It returns every instance that exists afterwards
// (including ones whose wait failed), sorted by index, and the first error.
func CreateNodes(ctx context.Context, p Provisioner, offer Offer, tmpl NodeSpec, seed string, indexes []int, parallelism int) ([]Node, error) {
	if parallelism <= 0 || parallelism > len(indexes) {
		parallelism = len(indexes)
	}
	type outcome struct {
		node Node
		err  error
	}
	out := make([]outcome, len(indexes))
	sem := make(chan struct{}, parallelism)
	var wg sync.WaitGroup
	for k, idx := range indexes {
		spec := tmpl
		spec.Index = idx
		spec.InstanceType = offer.InstanceType
		spec.Region = offer.Region
		spec.Zone = offer.Zone
		spec.Spot = offer.Spot
		spec.GPUName = offer.GPUName
		spec.GPUCount = offer.GPUCount
		spec.ClientToken = ClientToken(seed, tmpl.Address, idx, offer)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[k].err = ctx.Err()
				return
			}
			defer func() { <-sem }()
			n, err := p.Create(ctx, spec)
			if n.ID != "" {
				n.Index = idx
			}
			out[k] = outcome{n, err}
		}()
	}
	wg.Wait()
	var nodes []Node
	var errs []error
	for k, o := range out {
		if o.node.ID != "" {
			nodes = append(nodes, o.node)
		}
		if o.err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", indexes[k], o.err))
		}
	}
	sort.Slice(nodes, func(a, b int) bool { return nodes[a].Index < nodes[b].Index })
	return nodes, firstError(errs)
}

// firstError prefers an error that is not a capacity error: one node failing for
// another reason (bad credentials, an invalid image) must not be hidden behind a
// sibling's capacity error, which would make Provision fail over pointlessly.
func firstError(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	for _, e := range errs {
		if !errors.Is(e, ErrCapacity) {
			return e
		}
	}
	return errs[0]
}

// DeleteNodes deletes nodes in parallel (at most parallelism at a time, 0: all) and
// returns those it could not delete with the joined errors.
func DeleteNodes(ctx context.Context, p Provisioner, nodes []Node, parallelism int) (left []Node, err error) {
	if len(nodes) == 0 {
		return nil, nil
	}
	if parallelism <= 0 || parallelism > len(nodes) {
		parallelism = len(nodes)
	}
	errs := make([]error, len(nodes))
	sem := make(chan struct{}, parallelism)
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := p.Delete(ctx, n); err != nil {
				errs[i] = fmt.Errorf("delete %s (node %d): %w", n.ID, n.Index, err)
			}
		}()
	}
	wg.Wait()
	for i, e := range errs {
		if e != nil {
			left = append(left, nodes[i])
		}
	}
	return left, errors.Join(errs...)
}

// Orphans returns the instances found by ListByLineage that state does not know
// (inState reports whether an instance ID is recorded), sorted by cluster address
// and index, for plan to report.
func Orphans(listed []Node, inState func(id string) bool) []Node {
	var out []Node
	for _, n := range listed {
		if !inState(n.ID) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Cluster != out[j].Cluster {
			return out[i].Cluster < out[j].Cluster
		}
		if out[i].Index != out[j].Index {
			return out[i].Index < out[j].Index
		}
		return out[i].ID < out[j].ID
	})
	return out
}
