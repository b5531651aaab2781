package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/version"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

const stateHelp = `
Usage: lepton state <subcommand> [options] [args]

  Inspect and edit the state.

Subcommands:
  list [ADDR...]     List resources in state (optionally only those matching).
  show ADDR          Show one resource's attributes (sensitive ones hidden).
  rm ADDR...         Forget resources: lepton stops managing them; nothing is destroyed.
  pull               Print the raw state JSON.
  push [-force] FILE Replace the state with FILE (same lineage, serial not lower, unless -force).

Examples:
  lepton state list
  lepton state show dataset.digits
  lepton state rm 'dataset.shard[3]'
  lepton state pull > backup.json && lepton state push backup.json
`

func cmdState(m *meta, args []string) int {
	if len(args) == 0 || args[0] == "-help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(m.stdout, strings.TrimLeft(stateHelp, "\n"))
		if len(args) == 0 {
			return 1
		}
		return 0
	}
	switch args[0] {
	case "list":
		return stateList(m, args[1:])
	case "show":
		return stateShow(m, args[1:])
	case "rm":
		return stateRm(m, args[1:])
	case "pull":
		return statePull(m, args[1:])
	case "push":
		return statePush(m, args[1:])
	}
	return m.errorf("unknown state subcommand %q: want list, show, rm, pull or push", args[0])
}

// readState reads the state with the backend the configuration names (the
// configuration may be absent or invalid: state commands still work).
func (m *meta) readState() (state.Backend, *state.State, bool) {
	cfg, _ := lang.Load(m.dir)
	be, err := m.backend(cfg)
	if err != nil {
		m.errorf("%v", err)
		return nil, nil, false
	}
	st, err := be.Read(context.Background())
	if err != nil {
		m.errorf("%v", err)
		return nil, nil, false
	}
	return be, st, true
}

// stateQuiet reads the state for what it may add to a command that works
// without it; nil when there is none or it cannot be read.
func (m *meta) stateQuiet() *state.State {
	cfg, _ := lang.Load(m.dir)
	be, err := m.backend(cfg)
	if err != nil {
		return nil
	}
	st, err := be.Read(context.Background())
	if err != nil {
		return nil
	}
	return st
}

func stateList(m *meta, args []string) int {
	fs := m.flags("state list", "Usage: lepton state list [ADDR...]\n\n  Lists resource instances in state.\n\nExample:\n  lepton state list dataset.shard\n")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	var targets []lang.Target
	for _, a := range fs.Args() {
		t, err := lang.ParseTarget(a)
		if err != nil {
			return m.errorf("%v", err)
		}
		targets = append(targets, t)
	}
	_, st, ok := m.readState()
	if !ok {
		return 1
	}
	if st == nil {
		return 0
	}
	enc, _ := st.Encode() // sorted
	sorted, _ := state.Parse(enc)
	for _, r := range sorted.Resources {
		if len(targets) > 0 {
			addr, err := lang.ParseInstance(r.Address)
			if err != nil {
				continue
			}
			match := false
			for _, t := range targets {
				match = match || t.Matches(addr)
			}
			if !match {
				continue
			}
		}
		fmt.Fprintln(m.stdout, r.Address)
	}
	return 0
}

func stateShow(m *meta, args []string) int {
	fs := m.flags("state show", "Usage: lepton state show ADDR\n\n  Shows one resource instance's attributes; sensitive values are hidden.\n\nExample:\n  lepton state show 'dataset.shard[0]'\n")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return m.errorf("state show needs exactly one address")
	}
	_, st, ok := m.readState()
	if !ok {
		return 1
	}
	if st == nil {
		return m.errorf("no state: nothing has been applied here yet")
	}
	r := st.Find(fs.Arg(0))
	if r == nil {
		return m.errorf("no resource %s in state", fs.Arg(0))
	}
	text, err := planner.DescribeInstance(r)
	if err != nil {
		return m.errorf("%v", err)
	}
	fmt.Fprint(m.stdout, text)
	return 0
}

func stateRm(m *meta, args []string) int {
	var lf lockFlags
	fs := m.flags("state rm", "Usage: lepton state rm [options] ADDR...\n\n  Removes instances from state: lepton forgets them, nothing is destroyed.\n\nExample:\n  lepton state rm dataset.old\n")
	lf.register(fs)
	dry := fs.Bool("dry-run", false, "Only list what would be removed.")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return m.errorf("state rm needs at least one address")
	}
	cfg, _ := lang.Load(m.dir)
	be, err := m.backend(cfg)
	if err != nil {
		return m.errorf("%v", err)
	}
	unlock, ok := m.lock(context.Background(), be, lf, "state rm")
	if !ok {
		return 1
	}
	defer unlock()
	st, err := be.Read(context.Background())
	if err != nil {
		return m.errorf("%v", err)
	}
	if st == nil {
		return m.errorf("no state: nothing to remove")
	}
	removed := 0
	for _, a := range fs.Args() {
		t, err := lang.ParseTarget(a)
		if err != nil {
			return m.errorf("%v", err)
		}
		var keep []*state.Resource
		for _, r := range st.Resources {
			addr, err := lang.ParseInstance(r.Address)
			if err == nil && t.Matches(addr) {
				fmt.Fprintf(m.stdout, "Removed %s\n", r.Address)
				removed++
				continue
			}
			keep = append(keep, r)
		}
		st.Resources = keep
	}
	if removed == 0 {
		return m.errorf("no matching resources in state")
	}
	if *dry {
		return 0
	}
	st.Serial++
	if err := state.Write(context.Background(), be, st, state.WriteOptions{}); err != nil {
		return m.errorf("%v", err)
	}
	fmt.Fprintf(m.stdout, "Successfully removed %d resource instance(s).\n", removed)
	return 0
}

func statePull(m *meta, args []string) int {
	fs := m.flags("state pull", "Usage: lepton state pull\n\n  Prints the state JSON.\n\nExample:\n  lepton state pull > backup.json\n")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	_, st, ok := m.readState()
	if !ok {
		return 1
	}
	if st == nil {
		return 0
	}
	b, err := st.Encode()
	if err != nil {
		return m.errorf("%v", err)
	}
	m.stdout.Write(b)
	return 0
}

func statePush(m *meta, args []string) int {
	var lf lockFlags
	fs := m.flags("state push", "Usage: lepton state push [options] FILE\n\n  Replaces the state with FILE. The lineage must match and the serial must not\n  be lower than the current one, unless -force.\n\nExample:\n  lepton state push backup.json\n")
	lf.register(fs)
	force := fs.Bool("force", false, "Push even when lineage or serial say the file is older or unrelated.")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return m.errorf("state push needs exactly one file")
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return m.errorf("%v", err)
	}
	in, err := state.Parse(b)
	if err != nil {
		return m.errorf("%s: %v", fs.Arg(0), err)
	}
	cfg, _ := lang.Load(m.dir)
	be, err := m.backend(cfg)
	if err != nil {
		return m.errorf("%v", err)
	}
	unlock, ok := m.lock(context.Background(), be, lf, "state push")
	if !ok {
		return 1
	}
	defer unlock()
	cur, err := be.Read(context.Background())
	if err != nil && !*force {
		return m.errorf("%v", err)
	}
	if cur != nil && !*force {
		if cur.Lineage != in.Lineage {
			return m.errorf("cannot push: the file's lineage %s differs from the current state's %s (use -force to overwrite)", in.Lineage, cur.Lineage)
		}
		if in.Serial < cur.Serial {
			return m.errorf("cannot push: the file's serial %d is lower than the current %d, so it is older (use -force to overwrite)", in.Serial, cur.Serial)
		}
	}
	if cur != nil && in.Serial <= cur.Serial {
		in.Serial = cur.Serial + 1
	}
	if err := state.Write(context.Background(), be, in, state.WriteOptions{Force: *force}); err != nil {
		return m.errorf("%v", err)
	}
	return 0
}

func cmdForceUnlock(m *meta, args []string) int {
	fs := m.flags("force-unlock", "Usage: lepton force-unlock LOCK_ID\n\n  Clears a stale state lock. The local backend's lock is an OS lock that is\n  released when its holder exits (pg's advisory lock too); this clears what is\n  left of it. On s3, gcs and azurerm a killed holder's lock stays until this\n  removes it, whoever holds it: make sure that command is not running.\n\nExample:\n  lepton force-unlock 3f6c1f5e-2c1b-4f55-9a59-1d9e1d8c2a10\n")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return m.errorf("force-unlock needs the lock ID (shown in the lock error)")
	}
	cfg, _ := lang.Load(m.dir)
	be, err := m.backend(cfg)
	if err != nil {
		return m.errorf("%v", err)
	}
	if err := be.ForceUnlock(context.Background(), fs.Arg(0)); err != nil {
		return m.errorf("%v", err)
	}
	fmt.Fprintln(m.stdout, "lepton state has been successfully unlocked!")
	return 0
}

// outputText renders an output value as `lepton output` prints it.
func outputText(o state.Output, reveal bool) string {
	if o.Sensitive && !reveal {
		return "<sensitive>"
	}
	ty, err := ctyjson.UnmarshalType(o.Type)
	if err != nil {
		return string(o.Value)
	}
	v, err := ctyjson.Unmarshal(o.Value, ty)
	if err != nil {
		return string(o.Value)
	}
	return planner.FormatValue(v)
}

func stateJSON(m *meta, st *state.State) int {
	if st == nil {
		fmt.Fprintf(m.stdout, "{\"format_version\":\"1.0\",\"terraform_version\":%q}\n", version.Version)
		return 0
	}
	if err := planner.RenderStateJSON(m.stdout, st, version.Version); err != nil {
		return m.errorf("%v", err)
	}
	return 0
}

var _ = json.Marshal
