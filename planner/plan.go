package planner

import (
	"github.com/leptonml/lepton/providers"
	"sync"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
	"github.com/zclconf/go-cty/cty"
)

// Plan is the result of planning: data, separate from any rendering.
type Plan struct {
	Mode        Mode
	Targets     []lang.Target
	Replace     []lang.Target
	Refresh     bool
	Variables   map[string]cty.Value // final values, sensitive ones marked
	Changes     []*ResourceChange    // every instance with an action (no-ops included), by address
	Drift       []*ResourceChange    // changes found by refresh
	Outputs     []*OutputChange
	Prior       *state.State // state as read before refresh (nil when there was none)
	Refreshed   *state.State // state after refresh (what -refresh-only applies)
	Lineage     string
	Serial      uint64
	ConfigHash  string
	Errored     bool
	Diagnostics []string // warnings worth repeating with the plan
}

// ResourceChange is the planned change of one instance.
type ResourceChange struct {
	Addr     lang.Instance
	Provider string
	Action   Action
	// Before is the refreshed prior value (null when creating); After the
	// planned value (null when deleting), with unknowns and sensitive marks.
	// For an instance left as it is, both are cty.NilVal until
	// Plan.LoadValues decodes them from state (see lazy).
	Before, After cty.Value
	Type          cty.Type
	// RequiresReplace are the attribute paths forcing replacement.
	RequiresReplace []cty.Path
	ActionReason    string // Terraform's action_reason enum, or ""
	Reason          string // a human reason: "dataset.digits changed", "tainted"
	Dependencies    []string
	PricePerHour    float64 // after
	PriorPrice      float64 // before
	Detail          []string
	Compute         *providers.Compute // a run's own nodes (JSON plan: lepton.compute)
	Status          string             // prior status in state (tainted, running)
	// Private is the provider's private data for the planned object, and
	// PriorPrivate what state recorded with the prior one.
	Private, PriorPrivate []byte
	// DeposedKey names the deposed object a Delete change is for (the old
	// object of a create_before_destroy whose delete failed or was
	// interrupted); empty for an address's current object.
	DeposedKey string
	// ProviderConfig is the provider configuration the planned object uses
	// (the resource's `provider` meta-argument, "aws.west"), and
	// PriorProviderConfig the one the prior object was made with.
	ProviderConfig, PriorProviderConfig string
	// lazy is the state instance of a no-op change whose values are not
	// kept: a plan that only prints what changes need not hold thousands
	// of decoded, unchanged instances.
	lazy *instance
}

// LoadValues fills in Before and After of the no-op changes that were
// planned without keeping them. The JSON rendering, saved plans and apply
// call it; the human and Markdown renderings show no no-op values.
func (p *Plan) LoadValues() {
	for _, c := range p.Changes {
		if c.lazy != nil {
			v := c.lazy.mustValue()
			c.Before, c.After, c.lazy = v, v, nil
		}
	}
}

// Address returns the instance address as a string.
func (c *ResourceChange) Address() string { return c.Addr.String() }

// DisplayAddress is the address as shown in plans and progress lines:
// with "(deposed object KEY)" for a deposed object, as Terraform shows it.
func (c *ResourceChange) DisplayAddress() string {
	if c.DeposedKey != "" {
		return c.Addr.String() + " (deposed object " + c.DeposedKey + ")"
	}
	return c.Addr.String()
}

// key identifies the change among a plan's changes.
func (c *ResourceChange) key() string {
	if c.DeposedKey != "" {
		return c.Addr.String() + " deposed " + c.DeposedKey
	}
	return c.Addr.String()
}

// OutputChange is the planned change of a root output.
type OutputChange struct {
	Name      string
	Action    Action
	Before    cty.Value
	After     cty.Value
	Sensitive bool
}

// HasChanges reports whether applying the plan would change anything.
func (p *Plan) HasChanges() bool {
	for _, c := range p.Changes {
		if c.Action != NoOp {
			return true
		}
	}
	for _, o := range p.Outputs {
		if o.Action != NoOp {
			return true
		}
	}
	if p.Mode == RefreshOnlyMode && len(p.Drift) > 0 {
		return true
	}
	if p.Mode == DestroyMode && len(p.DeletedOutside()) > 0 {
		return true
	}
	return false
}

// pricedKinds are the kinds whose instances carry a price per hour, from the
// kinds' specs; computed once, never changed.
var pricedKinds = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for name, s := range lang.Schemas() {
		m[name] = s.Priced
	}
	return m
})

func priced(kind string) bool { return pricedKinds()[kind] }

// Counts returns how many instances are added, changed and destroyed.
func (p *Plan) Counts() (add, change, destroy int) {
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			add++
		case Update:
			change++
		case Delete:
			destroy++
		case DeleteThenCreate, CreateThenDelete:
			add++
			destroy++
		}
	}
	return
}

// Cost sums cluster prices: added per hour, removed per hour, and the total
// per hour after apply.
func (p *Plan) Cost() (add, remove, now float64, any bool) {
	for _, c := range p.Changes {
		if !priced(c.Addr.Resource.Kind) {
			continue
		}
		switch c.Action {
		case Create:
			add += c.PricePerHour
			now += c.PricePerHour
			any = true
		case Delete:
			remove += c.PriorPrice
			any = true
		case DeleteThenCreate, CreateThenDelete:
			// A replacement starts new nodes and stops the old ones.
			add += c.PricePerHour
			remove += c.PriorPrice
			any = true
			now += c.PricePerHour
		case Update:
			if c.PricePerHour != c.PriorPrice {
				add += c.PricePerHour
				remove += c.PriorPrice
				any = true
			}
			now += c.PricePerHour
		case NoOp:
			now += c.PriorPrice
		}
	}
	return
}
