package planner

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/leptonml/lepton/lang"
	"github.com/zclconf/go-cty/cty"
)

// Colors are the ANSI codes a renderer uses; the zero value renders plain.
type Colors struct {
	Green, Yellow, Red, Cyan, Bold, Reset string
}

// ANSI returns terminal colours.
func ANSI() Colors {
	return Colors{Green: "\x1b[32m", Yellow: "\x1b[33m", Red: "\x1b[31m", Cyan: "\x1b[36m", Bold: "\x1b[1m", Reset: "\x1b[0m"}
}

func (c Colors) sym(a Action) string {
	s := a.Symbol()
	switch a {
	case Create:
		return c.Green + s + c.Reset
	case Update:
		return c.Yellow + s + c.Reset
	case Delete:
		return c.Red + s + c.Reset
	case DeleteThenCreate:
		return c.Red + "-" + c.Reset + "/" + c.Green + "+" + c.Reset
	case CreateThenDelete:
		return c.Green + "+" + c.Reset + "/" + c.Red + "-" + c.Reset
	}
	return s
}

// RenderHuman writes the plan as Terraform users expect to read it.
func RenderHuman(w io.Writer, p *Plan, col Colors) {
	var b strings.Builder
	if len(p.Drift) > 0 && p.Mode != DestroyMode {
		fmt.Fprintf(&b, "\n%sNote: Objects have changed outside of lepton%s\n\n", col.Bold, col.Reset)
		b.WriteString("lepton detected the following changes made outside of lepton since the last \"lepton apply\":\n")
		for _, c := range p.Drift {
			b.WriteString("\n")
			renderChange(&b, c, col, true)
		}
		b.WriteString("\nUnless you have made equivalent changes to your configuration, or ignored the\nrelevant attributes using ignore_changes, the following plan may include\nactions to undo or respond to these changes.\n")
		b.WriteString("\n─────────────────────────────────────────────────────────────────────────────\n")
	}
	renderDeletedOutside(&b, p, col)
	if !p.HasChanges() {
		if p.Mode == RefreshOnlyMode {
			b.WriteString("\nNo changes. Your infrastructure still matches the configuration.\n")
		} else {
			b.WriteString("\nNo changes. Your infrastructure matches the configuration.\n\n")
			b.WriteString("lepton has compared your real infrastructure against your configuration and\nfound no differences, so no changes are needed.\n")
		}
		io.WriteString(w, b.String())
		return
	}
	if p.Mode == RefreshOnlyMode {
		b.WriteString("\nThis is a refresh-only plan, so lepton will not take any actions to undo\nthese. Applying it will update the lepton state to match.\n")
		io.WriteString(w, b.String())
		return
	}
	used := map[Action]bool{}
	var changed []*ResourceChange
	for _, c := range p.Changes {
		if c.Action != NoOp {
			used[c.Action] = true
			changed = append(changed, c)
		}
	}
	if len(changed) > 0 {
		b.WriteString("\nlepton used the selected providers to generate the following execution\nplan. Resource actions are indicated with the following symbols:\n")
		for _, a := range []Action{Create, Update, Delete, DeleteThenCreate, CreateThenDelete} {
			if !used[a] {
				continue
			}
			legend := map[Action]string{Create: "create", Update: "update in-place", Delete: "destroy", DeleteThenCreate: "destroy and then create replacement", CreateThenDelete: "create replacement and then destroy"}[a]
			fmt.Fprintf(&b, "%3s %s\n", col.sym(a), legend)
		}
		b.WriteString("\nlepton will perform the following actions:\n")
		for _, c := range changed {
			b.WriteString("\n")
			renderChange(&b, c, col, false)
		}
	}
	add, change, destroy := p.Counts()
	fmt.Fprintf(&b, "\n%sPlan:%s %d to add, %d to change, %d to destroy.\n", col.Bold, col.Reset, add, change, destroy)
	if ca, cr, now, ok := p.Cost(); ok {
		fmt.Fprintf(&b, "%sCost:%s +$%.2f/hr, -$%.2f/hr (now $%.2f/hr)\n", col.Bold, col.Reset, ca, cr, now)
	}
	renderOutputChanges(&b, p, col)
	io.WriteString(w, b.String())
}

func renderOutputChanges(b *strings.Builder, p *Plan, col Colors) {
	var outs []*OutputChange
	for _, o := range p.Outputs {
		if o.Action != NoOp {
			outs = append(outs, o)
		}
	}
	if len(outs) == 0 {
		return
	}
	b.WriteString("\nChanges to Outputs:\n")
	width := 0
	for _, o := range outs {
		if len(o.Name) > width {
			width = len(o.Name)
		}
	}
	for _, o := range outs {
		before, after := o.Before, o.After
		if o.Sensitive {
			before, after = before.Mark(lang.Sensitive), after.Mark(lang.Sensitive)
		}
		switch o.Action {
		case Create:
			fmt.Fprintf(b, "  %s %-*s = %s\n", col.sym(Create), width, o.Name, formatValue(after, 2))
		case Delete:
			fmt.Fprintf(b, "  %s %-*s = %s -> null\n", col.sym(Delete), width, o.Name, formatValue(before, 2))
		default:
			fmt.Fprintf(b, "  %s %-*s = %s -> %s\n", col.sym(Update), width, o.Name, formatValue(before, 2), formatValue(after, 2))
		}
	}
}

func header(c *ResourceChange, drift bool) string {
	addr := c.DisplayAddress()
	if drift {
		if c.Action == Delete {
			return fmt.Sprintf("# %s has been deleted", addr)
		}
		return fmt.Sprintf("# %s has changed", addr)
	}
	switch {
	case c.Action == Delete && c.ActionReason == ReasonNoResourceConfig:
		return fmt.Sprintf("# %s will be destroyed\n  # (because %s is not in configuration)", addr, c.Addr.Resource)
	case c.Action == Delete && c.ActionReason == ReasonCountIndex:
		return fmt.Sprintf("# %s will be destroyed\n  # (because index %s is out of range for count)", addr, strings.TrimPrefix(addr, c.Addr.Resource.String()))
	case c.Action == Delete && c.ActionReason == ReasonEachKey:
		return fmt.Sprintf("# %s will be destroyed\n  # (because key %s is not in for_each map)", addr, strings.TrimPrefix(addr, c.Addr.Resource.String()))
	case c.Action.IsReplace() && c.ActionReason == ReasonTainted:
		return fmt.Sprintf("# %s %s", addr, c.Reason)
	case c.Action.IsReplace() && c.ActionReason == ReasonRequested:
		return fmt.Sprintf("# %s %s", addr, c.Reason)
	}
	h := fmt.Sprintf("# %s %s", addr, c.Action.Verb())
	if c.Reason != "" {
		r := c.Reason
		if !strings.HasPrefix(r, "(") {
			r = "(" + r + ")"
		}
		h += "\n  # " + r
	}
	return h
}

func renderChange(b *strings.Builder, c *ResourceChange, col Colors, drift bool) {
	fmt.Fprintf(b, "  %s%s%s\n", col.Bold, header(c, drift), col.Reset)
	for _, d := range c.Detail {
		fmt.Fprintf(b, "  # %s\n", d)
	}
	act := c.Action
	fmt.Fprintf(b, "%s %s %q {\n", padSym(col, act), c.Addr.Resource.Kind, c.Addr.Resource.Name)
	// Unset arguments show their default, on both sides, as Terraform shows
	// a provider's defaults: "+ auth = true" for a new endpoint.
	defs, kind := kindDefaults(), c.Addr.Resource.Kind
	renderBody(b, defs.apply(kind, c.Before), defs.apply(kind, c.After), act, 6, col, replacePaths(c.RequiresReplace), nil)
	b.WriteString("    }\n")
}

func padSym(col Colors, a Action) string {
	s := a.Symbol()
	pad := strings.Repeat(" ", 3-len(s))
	return pad + col.sym(a)
}

func replacePaths(ps []cty.Path) map[string]bool {
	m := map[string]bool{}
	for _, p := range ps {
		m[pathString(p)] = true
	}
	return m
}

func pathString(p cty.Path) string {
	var parts []string
	for _, s := range p {
		if a, ok := s.(cty.GetAttrStep); ok {
			parts = append(parts, a.Name)
		}
	}
	return strings.Join(parts, ".")
}

// renderBody writes the attribute lines of an object (a resource or a block).
func renderBody(b *strings.Builder, before, after cty.Value, act Action, indent int, col Colors, forces map[string]bool, path []string) {
	ty := after.Type()
	if after.IsNull() {
		ty = before.Type()
	}
	if !ty.IsObjectType() {
		return
	}
	names := make([]string, 0, len(ty.AttributeTypes()))
	for n := range ty.AttributeTypes() {
		names = append(names, n)
	}
	sort.Strings(names)
	get := func(v cty.Value, n string) cty.Value {
		if v.IsNull() || !v.IsKnown() {
			if !v.IsKnown() {
				return cty.UnknownVal(ty.AttributeType(n))
			}
			return cty.NullVal(ty.AttributeType(n))
		}
		return v.GetAttr(n)
	}
	// Blocks (nested objects) go after plain attributes, as Terraform does.
	var attrs, blocks []string
	width := 0
	for _, n := range names {
		at := ty.AttributeType(n)
		bv, av := get(before, n), get(after, n)
		if bv.IsNull() && av.IsNull() {
			continue
		}
		if at.IsObjectType() && n != "inline" {
			blocks = append(blocks, n)
			continue
		}
		attrs = append(attrs, n)
		if len(n) > width {
			width = len(n)
		}
	}
	pad := strings.Repeat(" ", indent)
	unchanged := 0
	for _, n := range attrs {
		bv, av := get(before, n), get(after, n)
		p := strings.Join(append(append([]string(nil), path...), n), ".")
		force := ""
		if forces[p] {
			force = col.Red + " # forces replacement" + col.Reset
		}
		switch {
		case act == Create || (act.IsReplace() && before.IsNull()):
			fmt.Fprintf(b, "%s%s %-*s = %s\n", pad, col.sym(Create), width, n, formatValue(av, indent+2))
		case act == Delete:
			fmt.Fprintf(b, "%s%s %-*s = %s -> null\n", pad, col.sym(Delete), width, n, formatValue(bv, indent+2))
		case valuesEqualMarked(bv, av):
			unchanged++
		case bv.IsNull():
			fmt.Fprintf(b, "%s%s %-*s = %s%s\n", pad, col.sym(Create), width, n, formatValue(av, indent+2), force)
		case av.IsNull():
			fmt.Fprintf(b, "%s%s %-*s = %s -> null%s\n", pad, col.sym(Delete), width, n, formatValue(bv, indent+2), force)
		default:
			fmt.Fprintf(b, "%s%s %-*s = %s -> %s%s\n", pad, col.sym(Update), width, n, formatValue(bv, indent+2), formatValue(av, indent+2), force)
		}
	}
	for _, n := range blocks {
		bv, av := get(before, n), get(after, n)
		sub := act
		switch {
		case act == Create || act == Delete:
		case bv.IsNull():
			sub = Create
		case av.IsNull():
			sub = Delete
		case valuesEqualMarked(bv, av):
			unchanged++
			continue
		default:
			sub = Update
		}
		if act.IsReplace() && !before.IsNull() {
			if sub == act {
				sub = Update
			}
		}
		fmt.Fprintf(b, "%s%s %s {\n", pad, col.sym(sub), n)
		renderBody(b, bv, av, sub, indent+4, col, forces, append(append([]string(nil), path...), n))
		fmt.Fprintf(b, "%s  }\n", pad)
	}
	if unchanged > 0 {
		word := "attributes"
		if unchanged == 1 {
			word = "attribute"
		}
		fmt.Fprintf(b, "%s  # (%d unchanged %s hidden)\n", pad, unchanged, word)
	}
}

// valuesEqualMarked is equality where a change of sensitivity also counts.
func valuesEqualMarked(a, b cty.Value) bool {
	if a.HasMark(lang.Sensitive) != b.HasMark(lang.Sensitive) {
		return false
	}
	if !a.IsWhollyKnown() || !b.IsWhollyKnown() {
		return false
	}
	return valuesEqual(a, b)
}
