// Package providers is the seam between the planner and what really exists: per
// resource kind, a provider plans a change, applies it, reads the real object
// and deletes it. The planner knows kinds and addresses; providers know where
// things live (this machine, or a cloud).
package providers

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/zclconf/go-cty/cty"
)

// Env is what every provider call may need beyond its own arguments.
type Env struct {
	Dir     string // working directory
	DataDir string // .lepton under the working directory
	Lineage string // state lineage, tagged on cloud resources
	// Lookup returns another resource instance's current value (its applied
	// attributes during apply, its planned value during plan).
	Lookup func(address string) (cty.Value, bool)
	// Log receives progress lines for long operations (already prefixed by the
	// planner with the address).
	Log func(format string, args ...any)
	// Progress receives progress output of long operations (a progress bar
	// when ProgressTTY); nil for none.
	Progress    io.Writer
	ProgressTTY bool
	// Providers holds the evaluated provider blocks by provider name
	// ("aws": {"region": "us-east-1"}); a configured cloud appears here even
	// with an empty block.
	Providers map[string]map[string]string
	// Reread, during apply, reads another instance again (its provider's
	// Read, as a refresh does) and records the value in state and for
	// Lookup: an apply that changed another instance's real object (a
	// training that replaced a lost node of its named cluster) has that
	// instance's state follow at once, so the next plan finds no drift.
	// nil outside apply.
	Reread func(ctx context.Context, address string) error
}

// PlanRequest asks for the planned new value of an instance.
type PlanRequest struct {
	Address string
	Prior   cty.Value // the refreshed prior value; null when the instance is new
	Config  cty.Value // the decoded arguments
	// PriorPrivate is the private data recorded with the prior object in
	// state, also when the plan is to create it again (an interrupted run
	// whose job id was recorded).
	PriorPrivate []byte
	Env          Env
}

// PlanResponse is a provider's plan for one instance.
type PlanResponse struct {
	// Planned is the whole new value (the kind's state type), with unknown
	// values where the result is known only after apply.
	Planned cty.Value
	// RequiresReplace lists changed attributes that cannot change in place.
	RequiresReplace []cty.Path
	// Reason explains a replacement that no attribute shows (e.g. a consumed
	// dataset changed); shown under the resource header.
	Reason string
	// Cost figures for clusters, per hour in USD (0 when not applicable).
	PricePerHour float64
	// Detail lines shown with the plan (chosen offer, fallbacks).
	Detail []string
	// Compute is the offer a run's own nodes land on (a training's
	// resources block): the JSON plan carries it under "lepton".
	Compute *Compute
	// Unchanged says Planned is the request's Prior as given: the object is
	// up to date, and the planner need not compare the two.
	Unchanged bool
	// Private is the provider's own data for the planned object (as
	// Terraform's PlannedPrivate): carried through saved plans to Apply.
	Private []byte
	// Warnings are shown with the plan without failing it (an ArgError
	// points at its argument).
	Warnings []error
}

// Compute is the offer chosen for the nodes of one run.
type Compute struct {
	Cloud        string  `json:"cloud"`
	Region       string  `json:"region"`
	Zone         string  `json:"zone,omitempty"`
	InstanceType string  `json:"instance_type"`
	Spot         bool    `json:"spot"`
	Nodes        int     `json:"nodes"`
	PricePerHour float64 `json:"price_per_hour"` // all nodes, while the run goes
	Fallbacks    int     `json:"fallbacks"`
}

// ErrLeftRunning is wrapped by an Apply error that leaves the work going
// (a run whose status could not be read): like an interrupted apply, the
// instance stays marked running with its private data, so the next apply
// finds it again instead of starting it over.
var ErrLeftRunning = errors.New("left running")

// ApplyRequest asks to create or update an instance.
type ApplyRequest struct {
	Address string
	Prior   cty.Value // null when creating
	Planned cty.Value
	// Private is the plan's PlanResponse.Private.
	Private []byte
	// Record durably records private data (a job id, an instance id) for
	// the instance before a long wait: once it returns without error, a
	// killed apply leaves the data in state, and the next plan passes it
	// back as PriorPrivate, so the work is found again instead of being
	// started twice. The last data recorded stays with the object unless
	// Apply's response says otherwise. Never nil.
	Record func(ctx context.Context, private []byte) error
	Env    Env
}

// ReadRequest asks for the real object behind an instance.
type ReadRequest struct {
	Address string
	Current cty.Value
	Private []byte // recorded with the object in state
	Env     Env
}

// DeleteRequest asks to delete an instance.
type DeleteRequest struct {
	Address string
	Current cty.Value
	Private []byte // recorded with the object in state
	Env     Env
}

// CurrentReader is implemented by a resource whose Read returns the current
// value as given (a local dataset is checked at plan time instead, by its
// digest): the planner then skips the read and the comparison with state.
type CurrentReader interface {
	ReadsCurrent() bool
}

// ArgsDetermined is implemented by a resource whose planned value depends on
// nothing but its arguments for the given configuration (an inline dataset:
// its content is an argument), and which has no price. When the arguments
// equal those in state, the instance is up to date: the planner then neither
// decodes the state nor calls Plan.
type ArgsDetermined interface {
	DeterminedByArgs(config cty.Value) bool
}

// Resource manages one kind of resource in one place.
type Resource interface {
	Plan(ctx context.Context, req PlanRequest) (PlanResponse, error)
	// Apply creates (Prior null) or updates the instance and returns its new
	// value, fully known. On error it may return a partial value (for example a
	// created instance that failed to become ready) to be recorded as tainted.
	Apply(ctx context.Context, req ApplyRequest) (cty.Value, error)
	// Read returns the current value, or a null value when the object is gone.
	Read(ctx context.Context, req ReadRequest) (cty.Value, error)
	Delete(ctx context.Context, req DeleteRequest) error
}

// Provider is a named set of resource kinds. The CLI configures each
// provider once per command, before any resource call, and closes it at the
// end, as Terraform's provider protocol does.
type Provider interface {
	Name() string
	Resource(kind string) (Resource, bool)
	// Configure hands the provider the evaluated provider blocks of the
	// configuration. It is called once, before any resource call.
	Configure(ctx context.Context, req ConfigureRequest) error
	// Close releases what the provider holds (SDK clients, connections).
	Close() error
}

// ConfigureRequest carries the evaluated provider blocks.
type ConfigureRequest struct {
	// Blocks are the provider blocks by address: "aws" for the default
	// configuration of aws, "aws.west" for an aliased one.
	Blocks map[string]map[string]string
	Env    Env
}

// Resumable is implemented by resources whose Apply is long and can be
// picked up again after an interruption (a training, an instance being
// provisioned): the planner marks the instance running in state before
// Apply, and an interrupted apply leaves it so for the next one to resume.
type Resumable interface {
	Resumable() bool
}

// Registry chooses the provider of each resource.
type Registry struct {
	providers map[string]Provider
	order     []string
	// Default is the provider used when a resource names no other.
	Default string
}

// NewRegistry returns a registry of the given providers; the first is the default.
func NewRegistry(ps ...Provider) *Registry {
	r := &Registry{providers: map[string]Provider{}}
	for i, p := range ps {
		if i == 0 {
			r.Default = p.Name()
		}
		r.providers[p.Name()] = p
		r.order = append(r.order, p.Name())
	}
	return r
}

// Configure configures every provider with the configuration's blocks.
func (r *Registry) Configure(ctx context.Context, req ConfigureRequest) error {
	for _, name := range r.order {
		if err := r.providers[name].Configure(ctx, req); err != nil {
			return fmt.Errorf("configuring provider %q: %w", name, err)
		}
	}
	return nil
}

// Close closes every provider, reporting every error.
func (r *Registry) Close() error {
	var errs []error
	for _, name := range r.order {
		if err := r.providers[name].Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing provider %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// For returns the provider name and resource implementation for a kind.
func (r *Registry) For(kind, provider string) (string, Resource, error) {
	if provider == "" {
		provider = r.Default
	}
	p, ok := r.providers[provider]
	if !ok {
		return "", nil, fmt.Errorf("provider %q is not available", provider)
	}
	res, ok := p.Resource(kind)
	if !ok {
		return "", nil, fmt.Errorf("provider %q does not manage %s resources", provider, kind)
	}
	return provider, res, nil
}

// OrphansRequest asks a resource kind for real objects this state made but no
// longer records.
type OrphansRequest struct {
	// Instances are the state's instances of the kind by address (including
	// tainted and interrupted ones), as recorded in state.
	Instances map[string]cty.Value
	Env       Env // Lineage is the state's
}

// OrphanFinder is implemented by resources whose objects carry the state
// lineage (cloud instances tagged with it). The planner calls it once per
// plan and shows each line it returns as a warning; an error is a warning
// too, since finding orphans must not block a plan.
type OrphanFinder interface {
	FindOrphans(ctx context.Context, req OrphansRequest) ([]string, error)
}
