// Package cloud is the seam between lepton's cluster resource and the GPU clouds:
// the offer a cluster is placed on, and a Provisioner per cloud that creates,
// reads and deletes the instances behind it through the cloud's official SDK.
package cloud

import (
	"context"
	"errors"
	"net"
	"net/url"
)

// ErrCapacity marks errors after which the next offer should be tried: no capacity
// in the zone or region, or a quota that the request would exceed. Provisioners wrap
// the cloud's own error so the message keeps the cloud's code:
//
//	fmt.Errorf("%w: %s", cloud.ErrCapacity, apiErr)
var ErrCapacity = errors.New("no capacity for this offer")

// ErrCredentials marks a missing or invalid credential; the message must name what
// the user should set (for example AWS_PROFILE or AWS_ACCESS_KEY_ID).
var ErrCredentials = errors.New("cloud credentials missing or invalid")

// NodeSpec is one instance to create.
type NodeSpec struct {
	Address      string // lepton address of the cluster, e.g. cluster.gpu
	Lineage      string // state lineage, tagged on the instance so orphans can be found
	Index        int    // node index within the cluster
	ClientToken  string // stable across retries of the same create (idempotency)
	InstanceType string
	Region       string
	Zone         string
	Spot         bool
	GPUName      string
	GPUCount     int
	DiskGB       int
	Image        string // optional machine image override; empty: find a GPU image at apply time
	// UserData is the script the instance runs once at first boot: AWS user
	// data, GCP's startup-script metadata item, Azure's custom data. It must
	// hold no long-lived credential (see runtime/runspec.Bootstrap).
	UserData string
}

// Node is an instance as the cloud reports it.
type Node struct {
	ID      string
	Address string // public IP, or private when there is none
	Region  string
	Zone    string
	Status  string // cloud-neutral: pending, running, stopping, stopped, terminated
	Index   int
	// Cluster is the lepton address from the instance's tags or labels
	// (lepton:address), filled by ListByLineage so orphans can be named.
	Cluster string
	// InstanceType is the instance's type as the cloud reports it ("" when
	// unknown): a cluster adopting a replacement node that failed over to
	// another offer records it (providers/clusters).
	InstanceType string
}

// Provisioner manages instances in one cloud account/project/subscription.
type Provisioner interface {
	// Create starts one instance and waits until it runs. Retrying with the same
	// ClientToken must not create a second instance.
	Create(ctx context.Context, spec NodeSpec) (Node, error)
	// Read returns the instance, or found=false when it no longer exists.
	Read(ctx context.Context, region, zone, id string) (node Node, found bool, err error)
	// Delete removes the instance (and what was created with it) and waits.
	Delete(ctx context.Context, node Node) error
	// ListByLineage returns instances tagged with this state lineage.
	ListByLineage(ctx context.Context, lineage string, regions []string) ([]Node, error)
}

// IsLoopback reports whether endpoint's host is 127.0.0.0/8, ::1 or
// localhost: a fake or emulator on this machine, which gets no real
// credentials and may be spoken to over plain HTTP.
func IsLoopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
