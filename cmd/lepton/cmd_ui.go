package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/hcl/v2"
	"github.com/leptonml/lepton/internal/promsd"
	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/ui"
	"github.com/leptonml/lepton/internal/version"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/planner"
)

const uiHelp = `
Usage: lepton ui [options]

  Serves a read-only dashboard of this project on 127.0.0.1: the resource
  graph (status, kind and cost per hour of each instance), the current plan
  with its reasons and the last apply, training curves (live while a run
  goes on), confusion matrices and model layers, dataset schemas, histograms
  and preprocessing steps, endpoint traffic (requests per second, p50/p99
  latency, error rate, read from each endpoint's /metrics) and the logs of
  any run, following. Pages update without reloading.

  The URL it prints carries a token: open it as printed (the token becomes a
  cookie). Every page and API call needs it. Nothing is fetched from outside
  this machine, and the state is never written. Stop it with Ctrl-C.

Examples:
  lepton ui
  lepton ui -port 8765
  lepton -chdir=examples/quickstart ui -var 'epochs=5'
`

func cmdUI(m *meta, args []string) int {
	fs := m.flags("ui", uiHelp)
	port := fs.Int("port", 0, "Port to listen on, on 127.0.0.1 (0: a free one).")
	var vf varFlags
	vf.register(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return m.errorf("ui takes no arguments")
	}
	if *port < 0 || *port > 65535 {
		return m.errorf("-port must be between 0 (a free port) and 65535, got %d", *port)
	}
	abs, err := filepath.Abs(m.dir)
	if err != nil {
		return m.errorf("%v", err)
	}
	// The state is read where every command reads it (the configured
	// backend, decrypted when a passphrase is set).
	cfg, _ := lang.Load(m.dir)
	be, err := m.backend(cfg)
	if err != nil {
		return m.errorf("%v", err)
	}
	token, err := newUIToken()
	if err != nil {
		return m.errorf("making a token: %v", err)
	}
	srv, err := ui.New(ui.Options{Dir: abs, DataDir: filepath.Join(abs, ".lepton"), State: be, Token: token,
		Plan: func(ctx context.Context) (*planner.Plan, error) { return m.uiPlan(ctx, vf) }, Log: m.stderr})
	if err != nil {
		return m.errorf("%v", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		return m.errorf("listening on 127.0.0.1:%d: %v", *port, err)
	}
	url := fmt.Sprintf("http://%s/?token=%s", ln.Addr(), token)
	fmt.Fprintf(m.stdout, "lepton ui is serving %s read-only at:\n\n    %s\n\nPress Ctrl-C to stop.\n", abs, url)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx, ln); err != nil {
		return m.errorf("%v", err)
	}
	return 0
}

func newUIToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// uiPlan is what `lepton plan` would do now, for the dashboard: the lock is
// held only while the state is read (so a plan never runs against a state
// an apply is halfway through writing, and never keeps an apply waiting),
// and nothing is written.
func (m *meta) uiPlan(ctx context.Context, vf varFlags) (*planner.Plan, error) {
	q := *m
	var msgs bytes.Buffer
	q.stdout, q.stderr, q.color, q.files, q.registries = &msgs, &msgs, false, map[string]*hcl.File{}, nil
	defer q.closeProviders()
	fail := func() error { return errors.New(strings.TrimSpace(msgs.String())) }
	cfg, ok := q.loadConfig()
	if !ok {
		return nil, fail()
	}
	vars, ok := q.variables(cfg, vf, false)
	if !ok {
		return nil, fail()
	}
	be, err := q.backend(cfg)
	if err != nil {
		return nil, err
	}
	info, err := be.Lock(ctx, state.LockInfo{Operation: "ui", Version: version.Version}, 0)
	if err != nil {
		var le *state.LockError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("the state is locked by %s (%s since %s): the plan is computed again once it is released", le.Info.Who, le.Info.Operation, le.Info.Created.Format("15:04:05"))
		}
		return nil, err
	}
	prior, err := be.Read(ctx)
	be.Unlock(context.Background(), info.ID)
	if err != nil {
		return nil, err
	}
	p, d := q.newPlanner(cfg, vars).Plan(ctx, prior, planner.Options{Mode: planner.NormalMode, Refresh: true, Parallelism: 10})
	if d.HasErrors() {
		q.diags(d)
		return nil, fail()
	}
	return p, nil
}

// afterApply records what an apply did for `lepton ui` and writes the
// Prometheus targets of the endpoints now live. Neither fails the apply: a
// warning says what could not be written.
func (m *meta) afterApply(opName string, rec *ui.Recorder, res planner.ApplyResult, d hcl.Diagnostics, final *state.State) {
	abs, _ := filepath.Abs(m.dir)
	dataDir := filepath.Join(abs, ".lepton")
	var errs []string
	for _, x := range d {
		if x.Severity == hcl.DiagError {
			errs = append(errs, strings.TrimSpace(x.Summary+": "+x.Detail))
		}
	}
	if rec != nil {
		if err := ui.WriteLastApply(dataDir, rec.Record(opName, res, errs)); err != nil {
			fmt.Fprintf(m.stderr, "Warning: %v\n", err)
		}
	}
	if err := promsd.Write(dataDir, final, m.servesMetrics); err != nil {
		fmt.Fprintf(m.stderr, "Warning: %v\n", err)
	}
}
