package planner_test

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/planner"
)

// markdownConfig is n datasets d000..: those below from are at version v
// (their data differs per version), so two versions of it update, create
// and delete.
func markdownConfig(from, to, v int) []byte {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "dataset \"d%03d\" {\n  label = \"y\"\n  source {\n    inline = {\n", i)
		fmt.Fprintf(&b, "      x = [%d, %d, %d, %d, %d, %d, %d, %d]\n", i, v, i+1, v+1, i+2, v+2, i+3, v+3)
		b.WriteString("      y = [0, 1, 0, 1, 0, 1, 0, 1]\n    }\n  }\n}\n\n")
	}
	return []byte(b.String())
}

// TestMarkdown500 renders a 500-resource plan (400 updates, 100 creates, 100
// deletes) for a pull-request comment: it stays under 60,000 characters,
// its summary is whole, the diffs that do not fit are left out with a note,
// and no collapsible block or code fence is left open.
func TestMarkdown500(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	load := func(src []byte) *planner.Planner { return loadPlanner(t, dir, string(src)) }
	p := load(markdownConfig(0, 500, 1))
	plan, d := p.Plan(ctx, nil, planner.Options{Refresh: true, Parallelism: 4})
	if d.HasErrors() {
		t.Fatalf("plan: %v", d)
	}
	local := state.NewLocal(filepath.Join(dir, "lepton.state"))
	pers := state.NewPersister(state.Sink(ctx, local), state.New("test"))
	if _, d := p.Apply(ctx, plan, pers, planner.ApplyOptions{Parallelism: 4}); d.HasErrors() {
		t.Fatalf("apply: %v", d)
	}
	if err := pers.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := local.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// v2: d100..d499 change, d000..d099 are gone, d500..d599 are new.
	p = load(markdownConfig(100, 600, 2))
	plan, d = p.Plan(ctx, st, planner.Options{Refresh: true, Parallelism: 4})
	if d.HasErrors() {
		t.Fatalf("plan: %v", d)
	}
	add, change, destroy := plan.Counts()
	if add != 100 || change != 400 || destroy != 100 {
		t.Fatalf("plan counts %d/%d/%d, want 100/400/100", add, change, destroy)
	}
	var b strings.Builder
	planner.RenderMarkdown(&b, plan)
	md := b.String()

	if len(md) >= planner.MarkdownLimit {
		t.Errorf("the Markdown is %d characters, over %d", len(md), planner.MarkdownLimit)
	}
	if !strings.HasPrefix(md, "### lepton plan\n\n**Plan:** 100 to add, 400 to change, 100 to destroy.\n") {
		t.Errorf("the summary is not whole at the top:\n%s", md[:min(len(md), 300)])
	}
	if !strings.Contains(md, "| Action | Address | Reason | Cost |\n|---|---|---|---|\n") {
		t.Errorf("the summary table is missing")
	}
	note := regexp.MustCompile("\n_(\\d+) more resource diffs are left out to stay under 60000 characters; run `lepton show` on the saved plan to see them all._\n")
	m := note.FindStringSubmatch(md)
	if m == nil {
		t.Fatalf("no note says which diffs are left out")
	}
	shown := strings.Count(md, "<details><summary><code>")
	if fmt.Sprint(600-shown) != m[1] {
		t.Errorf("%d diffs shown and %s left out, of 600", shown, m[1])
	}
	if shown == 0 {
		t.Errorf("no diff shown at all")
	}
	if o, c := strings.Count(md, "<details>"), strings.Count(md, "</details>"); o != c {
		t.Errorf("%d <details> for %d </details>", o, c)
	}
	if n := strings.Count(md, "```"); n%2 != 0 {
		t.Errorf("an odd number of code fences (%d)", n)
	}
	t.Logf("%d characters, %d diffs shown, %s left out", len(md), shown, m[1])
	// Every change is in the table, or the table says it was cut.
	rows := strings.Count(md, "\n| ")
	if rows-1 < 600 && !strings.Contains(md, "_The table is cut short: 600 resources change in all._") {
		t.Errorf("the table has %d rows of 600 and does not say it was cut", rows-1)
	}
}
