package planner

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers"
	"github.com/zclconf/go-cty/cty"
)

// findOrphans asks each kind whose resource is a providers.OrphanFinder, once,
// for real objects tagged with this state's lineage that the state does not
// record (left by an interrupted apply or a lost state write), and reports
// them as warnings.
func (r *run) findOrphans(ctx context.Context) hcl.Diagnostics {
	if r.st == nil || r.st.Lineage == "" || !r.opts.Refresh {
		return nil
	}
	schemas := lang.Schemas()
	kinds := make([]string, 0, len(schemas))
	for k := range schemas {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var diags hcl.Diagnostics
	for _, kind := range kinds {
		_, res, err := r.p.Providers.For(kind, "")
		if err != nil {
			continue
		}
		f, ok := res.(providers.OrphanFinder)
		if !ok {
			continue
		}
		inst := map[string]cty.Value{}
		for _, rs := range r.prior.order {
			if rs.Kind != kind {
				continue
			}
			for _, in := range r.prior.byRes[rs] {
				v, _ := in.mustValue().UnmarkDeep()
				inst[in.res.Address] = v
			}
		}
		// A deposed object is in state too: its objects are not orphans.
		for _, d := range r.st.Deposed {
			schema := schemas[d.Kind]
			if d.Kind != kind || schema == nil {
				continue
			}
			res, err := upgradeResource(&d.Resource, schema)
			if err != nil {
				continue
			}
			if v, err := decodeInstance(res, schema.StateType()); err == nil {
				v, _ = v.UnmarkDeep()
				inst[d.Address+" (deposed object "+d.Key+")"] = v
			}
		}
		lines, err := f.FindOrphans(ctx, providers.OrphansRequest{Instances: inst, Env: r.env()})
		if len(lines) > 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  fmt.Sprintf("%d %s instance(s) tagged with this state's lineage are not in state", len(lines), kind),
				Detail: "  " + strings.Join(lines, "\n  ") + "\n\nThey may be left from an interrupted apply (the next apply of that " + kind +
					" resumes and adopts its own) or from a lost state; otherwise delete them in the cloud's console: they cost money.",
			})
		}
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Could not look for orphaned " + kind + " instances", Detail: err.Error()})
		}
	}
	return diags
}
