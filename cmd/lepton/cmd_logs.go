package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers/local"
)

const logsHelp = `
Usage: lepton logs [options] ADDR

  Prints the log of a training run or an endpoint. With -f, keeps printing
  what is appended until interrupted.

Examples:
  lepton logs training.digits
  lepton logs -f endpoint.digits
`

func cmdLogs(m *meta, args []string) int {
	fs := m.flags("logs", logsHelp)
	follow := fs.Bool("f", false, "Follow the log as it grows.")
	if code, ok := parseInterleaved(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return m.errorf("logs needs exactly one address, like training.digits")
	}
	addr, err := lang.ParseInstance(fs.Arg(0))
	if err != nil {
		return m.errorf("%v", err)
	}
	abs, _ := filepath.Abs(m.dir)
	dataDir := filepath.Join(abs, ".lepton")
	var path string
	switch addr.Resource.Kind {
	case "training":
		path = local.LogPath(dataDir, addr.String())
	case "endpoint":
		path = local.EndpointLogPath(dataDir, addr.String())
	default:
		return m.errorf("%s resources have no logs: logs exist for training and endpoint resources", addr.Resource.Kind)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return m.errorf("no log for %s yet (%s): it has not run here", addr, path)
	}
	if err != nil {
		return m.errorf("%v", err)
	}
	defer f.Close()
	if _, err := io.Copy(m.stdout, f); err != nil {
		return m.errorf("%v", err)
	}
	if !*follow {
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(500 * time.Millisecond):
		}
		if _, err := io.Copy(m.stdout, f); err != nil {
			return m.errorf("%v", err)
		}
	}
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
