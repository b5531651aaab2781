package planner

import (
	"fmt"
	"strings"

	"github.com/leptonml/lepton/internal/state"
)

// DeletedOutside lists the instances that refresh found gone (deleted
// outside lepton: an endpoint whose server was killed) and that the plan
// does not otherwise act on. Applying the plan drops them from state, so
// state keeps telling what exists; a destroy plan shows them and counts
// them as changes, or `destroy` would leave them in state for good.
func (p *Plan) DeletedOutside() []*ResourceChange {
	acted := map[string]bool{}
	for _, c := range p.Changes {
		if c.Action != NoOp {
			acted[c.Address()] = true
		}
	}
	var out []*ResourceChange
	for _, d := range p.Drift {
		if d.Action == Delete && !acted[d.Address()] {
			out = append(out, d)
		}
	}
	return out
}

// renderDeletedOutside is the destroy plan's note on instances already gone.
func renderDeletedOutside(b *strings.Builder, p *Plan, col Colors) {
	gone := p.DeletedOutside()
	if p.Mode != DestroyMode || len(gone) == 0 {
		return
	}
	fmt.Fprintf(b, "\n%sNote: Objects have changed outside of lepton%s\n\n", col.Bold, col.Reset)
	for _, c := range gone {
		fmt.Fprintf(b, "  %s# %s has been deleted outside of lepton%s\n", col.Bold, c.Address(), col.Reset)
	}
	b.WriteString("\nThere is nothing left to destroy of them: applying this plan removes them from the state.\n")
	b.WriteString("\n─────────────────────────────────────────────────────────────────────────────\n")
}

// dropDeletedOutside removes from state the instances refresh found gone
// that no change of the plan records anew.
func (a *applyRun) dropDeletedOutside() {
	gone := a.plan.DeletedOutside()
	if len(gone) == 0 {
		return
	}
	a.pers.Update(func(st *state.State) {
		for _, c := range gone {
			st.Remove(c.Address())
		}
	}, nil)
}
