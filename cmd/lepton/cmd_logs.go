package main

import (
	"context"
	"errors"
	"flag"
	"io"
	iofs "io/fs"
	"os"
	"os/signal"

	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers"
)

const logsHelp = `
Usage: lepton logs [options] ADDR

  Prints the log of a training run or an endpoint. With -f, keeps printing
  what is appended until interrupted. A run on a cluster keeps one log per
  node: -node N prints node N's (node 0's by default); a training with a
  run block logs there everything its program prints.

Examples:
  lepton logs training.digits
  lepton logs -f endpoint.digits
  lepton logs training.ddp -node 1
`

func cmdLogs(m *meta, args []string) int {
	fs := m.flags("logs", logsHelp)
	follow := fs.Bool("f", false, "Follow the log as it grows.")
	node := fs.Int("node", 0, "The cluster node whose log to print (0 is the first).")
	if code, ok := parseInterleaved(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return m.errorf("logs needs exactly one address, like training.digits")
	}
	if *node < 0 {
		return m.errorf("-node %d: nodes are numbered from 0", *node)
	}
	addr, err := lang.ParseInstance(fs.Arg(0))
	if err != nil {
		return m.errorf("%v", err)
	}
	lr, ok := m.resource(addr.Resource.Kind, "").(logReader)
	if !ok {
		return m.errorf("%s resources have no logs: logs exist for %s resources", addr.Resource.Kind,
			m.kindsWith(func(r providers.Resource) bool { _, ok := r.(logReader); return ok }))
	}
	ctx := context.Background()
	if *follow {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
	}
	// Logs are not read from state: a run interrupted before its state was
	// written has a log too.
	view := providers.InstanceView{Address: addr.String(), Env: m.providerEnv()}
	if st := m.stateQuiet(); st != nil {
		if r := st.Find(addr.String()); r != nil {
			view = m.view(r) // a remote run's log is found through its private data
		}
	}
	view.Node = *node
	rc, err := lr.Logs(ctx, view, *follow)
	var pe *iofs.PathError
	if errors.Is(err, iofs.ErrNotExist) && errors.As(err, &pe) {
		return m.errorf("no log for %s yet (%s): it has not run here", addr, pe.Path)
	}
	if err != nil {
		return m.errorf("%v", err)
	}
	defer rc.Close()
	if _, err := io.Copy(m.stdout, rc); err != nil {
		return m.errorf("%v", err)
	}
	return 0
}

// parseInterleaved parses flags that may follow positional arguments
// (lepton logs ADDR -f), as users type them.
func parseInterleaved(fs *flag.FlagSet, args []string) (int, bool) {
	var pos []string
	for {
		if code, ok := parse(fs, args); !ok {
			return code, false
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	// Leave the positional arguments where fs.Args() finds them.
	if err := fs.Parse(append([]string{"--"}, pos...)); err != nil {
		return 1, false
	}
	return 0, true
}
