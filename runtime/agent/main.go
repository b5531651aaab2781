package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/leptonml/lepton/runtime/runspec"
)

const usage = `Usage: lepton-agent -config agent.json [-dir DIR]

  The node agent: a cluster node's user data starts it (lepton writes that
  user data; users do not run it by hand). It reads the node configuration,
  asks the cloud's metadata service for the node's address, and runs what
  lepton puts in the node's inbox in the run storage (trainings, batch
  inference, endpoints), reporting through signed URLs only. It runs until
  SIGTERM or SIGINT, then stops its runs (trainings keep their checkpoint,
  endpoints drain requests in flight). The full lepton binary runs the same
  agent as "lepton agent".

Example:
  lepton-agent -config /var/lib/lepton/agent.json

Options:
`

// Main is the agent's command line (cmd/lepton-agent and `lepton agent`).
// It logs to stderr.
func Main(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("lepton-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", "agent.json", "The node configuration (JSON) that the node's user data wrote.")
	dir := fs.String("dir", "", "The working directory (run checkpoints, the record of started runs); default $"+runspec.NodeDirEnv+", else the configuration's directory.")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see -help)", fs.Arg(0))
	}
	b, err := os.ReadFile(*cfgPath)
	if err != nil {
		return fmt.Errorf("reading the node configuration: %w", err)
	}
	var cfg runspec.NodeConfig
	if err := runspec.Decode("the node configuration "+*cfgPath, b, &cfg); err != nil {
		return err
	}
	if *dir == "" {
		*dir = os.Getenv(runspec.NodeDirEnv)
	}
	if *dir == "" {
		*dir = filepath.Dir(*cfgPath)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("node", cfg.Node, "cluster", cfg.Address)
	a, err := New(cfg, Options{Dir: *dir, Log: log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log.Info("agent starting", "version", agentVersion(), "cloud", cfg.Cloud, "dir", *dir)
	err = a.Run(ctx)
	log.Info("agent stopped")
	return err
}
