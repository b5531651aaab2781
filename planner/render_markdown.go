package planner

import (
	"fmt"
	"io"
	"strings"
)

// MarkdownLimit bounds a Markdown plan, below GitHub's 65,536-character
// limit for a comment.
const MarkdownLimit = 60000

// RenderMarkdown writes the plan for a pull-request comment: a summary table,
// then each resource's diff in a collapsible block; resources that do not fit
// under MarkdownLimit are summarised.
func RenderMarkdown(w io.Writer, p *Plan) {
	var head strings.Builder
	add, change, destroy := p.Counts()
	head.WriteString("### lepton plan\n\n")
	if !p.HasChanges() {
		head.WriteString("**No changes.** Your infrastructure matches the configuration.\n")
		io.WriteString(w, head.String())
		return
	}
	fmt.Fprintf(&head, "**Plan:** %d to add, %d to change, %d to destroy.", add, change, destroy)
	if ca, cr, now, ok := p.Cost(); ok {
		fmt.Fprintf(&head, " **Cost:** +$%.2f/hr, -$%.2f/hr (now $%.2f/hr)", ca, cr, now)
	}
	head.WriteString("\n\n")
	if len(p.Drift) > 0 {
		fmt.Fprintf(&head, "> [!NOTE]\n> %d object(s) changed outside of lepton: %s\n\n", len(p.Drift), driftList(p))
	}
	var changed []*ResourceChange
	for _, c := range p.Changes {
		if c.Action != NoOp {
			changed = append(changed, c)
		}
	}
	var table strings.Builder
	table.WriteString("| Action | Address | Reason | Cost |\n|---|---|---|---|\n")
	for _, c := range changed {
		fmt.Fprintf(&table, "| %s %s | `%s` | %s | %s |\n", c.Action.Symbol(), c.Action, c.Address(), mdEscape(reasonText(c)), costText(c))
	}
	var outs strings.Builder
	if len(p.Outputs) > 0 {
		var b strings.Builder
		renderOutputChanges(&b, p, Colors{})
		if b.Len() > 0 {
			outs.WriteString("\n<details><summary>Changes to outputs</summary>\n\n```diff\n")
			outs.WriteString(diffLines(strings.TrimPrefix(b.String(), "\nChanges to Outputs:\n")))
			outs.WriteString("```\n\n</details>\n")
		}
	}
	budget := MarkdownLimit - head.Len() - outs.Len() - 200
	var body strings.Builder
	tableStr := table.String()
	if len(tableStr) > budget/2 {
		// Even the table is too long: keep its first rows.
		cut := strings.LastIndex(tableStr[:budget/2], "\n")
		tableStr = tableStr[:cut+1] + fmt.Sprintf("\n_The table is cut short: %d resources change in all._\n", len(changed))
	}
	budget -= len(tableStr)
	left := 0
	for i, c := range changed {
		var b strings.Builder
		renderChange(&b, c, Colors{}, false)
		block := fmt.Sprintf("\n<details><summary><code>%s</code> %s</summary>\n\n```diff\n%s```\n\n</details>\n", c.Address(), c.Action.Verb(), diffLines(b.String()))
		if body.Len()+len(block) > budget {
			left = len(changed) - i
			break
		}
		body.WriteString(block)
	}
	io.WriteString(w, head.String())
	io.WriteString(w, tableStr)
	io.WriteString(w, body.String())
	if left > 0 {
		fmt.Fprintf(w, "\n_%d more resource diffs are left out to stay under %d characters; run `lepton show` on the saved plan to see them all._\n", left, MarkdownLimit)
	}
	io.WriteString(w, outs.String())
}

// diffLines moves each line's change symbol to the first column, where the
// diff highlighter looks for it.
func diffLines(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		t := strings.TrimLeft(line, " ")
		indent := line[:len(line)-len(t)]
		switch {
		case strings.HasPrefix(t, "-/+ "), strings.HasPrefix(t, "+/- "):
			b.WriteString("!" + indent + t[1:] + "\n")
		case strings.HasPrefix(t, "+ "), strings.HasPrefix(t, "- "):
			b.WriteString(t[:1] + indent + t[1:] + "\n")
		case strings.HasPrefix(t, "~ "):
			b.WriteString("!" + indent + t[1:] + "\n")
		default:
			b.WriteString(" " + line + "\n")
		}
	}
	return b.String()
}

func reasonText(c *ResourceChange) string {
	switch {
	case c.Reason != "":
		return strings.Trim(c.Reason, "()")
	case c.ActionReason == ReasonNoResourceConfig:
		return "not in configuration"
	case c.ActionReason == ReasonCountIndex:
		return "index " + strings.TrimPrefix(c.Address(), c.Addr.Resource.String()) + " out of range for count"
	case c.ActionReason == ReasonEachKey:
		return "key " + strings.TrimPrefix(c.Address(), c.Addr.Resource.String()) + " not in for_each"
	case len(c.RequiresReplace) > 0:
		var names []string
		for _, p := range c.RequiresReplace {
			names = append(names, pathString(p))
		}
		return strings.Join(names, ", ") + " forces replacement"
	}
	return ""
}

func costText(c *ResourceChange) string {
	if !priced(c.Addr.Resource.Kind) {
		return ""
	}
	switch c.Action {
	case Delete:
		return fmt.Sprintf("-$%.2f/hr", c.PriorPrice)
	case Create:
		return fmt.Sprintf("+$%.2f/hr", c.PricePerHour)
	}
	if c.PricePerHour != c.PriorPrice {
		return fmt.Sprintf("$%.2f → $%.2f/hr", c.PriorPrice, c.PricePerHour)
	}
	return ""
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

func driftList(p *Plan) string {
	var names []string
	for i, c := range p.Drift {
		if i == 10 {
			names = append(names, fmt.Sprintf("and %d more", len(p.Drift)-10))
			break
		}
		names = append(names, "`"+c.Address()+"`")
	}
	return strings.Join(names, ", ")
}
