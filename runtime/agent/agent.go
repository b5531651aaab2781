// Package agent is the node agent: the program a cluster node's user data
// starts (cmd/lepton-agent, or `lepton agent`). It meets lepton only in the
// run storage, through the signed URLs of its runspec.NodeConfig: it polls
// its node's Inbox, starts each run that appears there once, stops those
// that disappear, and reports through its NodeHeartbeat and each run's
// Status and log. Runs go through the same runtime code as the local
// provider's (runtime/train, runtime/rl, runtime/serve), so a training gives
// the same model, to the digest, on a node as on the user's machine.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/leptonml/lepton/internal/fsutil"
	"github.com/leptonml/lepton/internal/version"
	"github.com/leptonml/lepton/runtime/objstore/signed"
	"github.com/leptonml/lepton/runtime/runspec"
)

// Options are what a test or benchmark changes; the zero value is the
// contract's timing.
type Options struct {
	// Dir is the agent's working directory (run checkpoints, the record of
	// started runs, downloaded models).
	Dir string
	// Client makes every request (the run storage, the metadata service).
	Client *http.Client
	// Getenv reads the metadata services' variables; default os.Getenv.
	Getenv func(string) string
	// Log receives the agent's own log (default: discard).
	Log *slog.Logger
	// PollEvery, HeartbeatEvery default to the runspec's.
	PollEvery, HeartbeatEvery time.Duration

	// onLog, when set (benchmarks), sees every line a run's runtime logs.
	onLog func(run, text string)
	// failAfter replaces persistent (tests).
	failAfter time.Duration
	// lookPath, when set (tests), finds programs instead of the PATH.
	lookPath func(string) (string, error)
}

// Agent is one node's agent.
type Agent struct {
	cfg   runspec.NodeConfig
	opts  Options
	log   *slog.Logger
	start time.Time

	hostOnce chan struct{} // closed once host is known
	host     string

	mu       sync.Mutex
	urls     runspec.NodeURLs
	etag     string
	gen      int64
	inboxErr string
	hostErr  string
	// readFailures counts the inbox reads failed in a row: lepton takes an
	// error in the heartbeat as the agent's verdict, so a passing failure
	// (a 503, a reset connection) is not reported until it persists.
	readFailures int
	restarts     int
	runs         map[string]*run // by run id: every run this agent has going or has finished
	wg           sync.WaitGroup
	eps          endpoints
}

// agentVersion is what the heartbeat and a served endpoint's /v2 report.
func agentVersion() string { return "lepton-agent " + version.Version }

// New returns an agent for cfg. It refuses a configuration of another
// contract version, or one without its node URLs.
func New(cfg runspec.NodeConfig, opts Options) (*Agent, error) {
	if opts.Dir == "" {
		return nil, errors.New("agent: no working directory")
	}
	if opts.Client == nil {
		opts.Client = newClient()
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.PollEvery <= 0 {
		opts.PollEvery = runspec.PollEvery
	}
	if opts.failAfter <= 0 {
		opts.failAfter = persistent
	}
	if opts.HeartbeatEvery <= 0 {
		opts.HeartbeatEvery = runspec.HeartbeatEvery
	}
	if cfg.Inbox.URL == "" || cfg.Heartbeat.URL == "" {
		return nil, errors.New("agent: the node configuration has no inbox or heartbeat URL")
	}
	a := &Agent{cfg: cfg, opts: opts, log: opts.Log, start: time.Now().UTC(), hostOnce: make(chan struct{}),
		urls: runspec.NodeURLs{Inbox: cfg.Inbox, Heartbeat: cfg.Heartbeat}, runs: map[string]*run{}}
	return a, nil
}

// persistent is how long a failure to read the inbox or to reach the
// metadata service lasts before the heartbeat reports it.
const persistent = 5 * time.Second

// newClient is the agent's HTTP client: no overall timeout (a dataset or a
// model may take minutes), bounded connection and header waits.
func newClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Minute
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConnsPerHost = 8
	return &http.Client{Transport: t}
}

// Run polls the inbox and heartbeats until ctx ends, then stops every run
// (trainings save their checkpoint, servers drain) and returns.
func (a *Agent) Run(ctx context.Context) error {
	if err := os.MkdirAll(a.runsDir(), 0o700); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.restarts = a.countRestart()
	go a.findHost(ctx)
	versionErr := ""
	if a.cfg.Version != runspec.Version {
		versionErr = fmt.Sprintf("the node configuration is of contract version %d; this agent (%s) speaks version %d: boot the node with a matching agent", a.cfg.Version, agentVersion(), runspec.Version)
	}
	poll := time.NewTicker(a.opts.PollEvery)
	defer poll.Stop()
	beat := time.NewTicker(a.opts.HeartbeatEvery)
	defer beat.Stop()
	if versionErr == "" {
		a.pollInbox(ctx)
	}
	a.heartbeat(ctx, versionErr)
	hostFound := a.hostOnce // beat at once when the address is known: lepton waits for it
	for {
		select {
		case <-hostFound:
			hostFound = nil
			a.heartbeat(ctx, versionErr)
		case <-ctx.Done():
			a.stopAll()
			a.heartbeat(context.Background(), versionErr)
			return nil
		case <-poll.C:
			if versionErr == "" {
				a.pollInbox(ctx)
			}
		case <-beat.C:
			a.heartbeat(ctx, versionErr)
		}
	}
}

// stopAll cancels every run and waits for them to report.
func (a *Agent) stopAll() {
	a.mu.Lock()
	for _, r := range a.runs {
		r.stop(stopShutdown)
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// findHost asks the metadata service for the node's address, retrying
// (the service may answer late on a booting node); the heartbeat carries
// the error once it persists.
func (a *Agent) findHost(ctx context.Context) {
	wait := 100 * time.Millisecond
	since := time.Now()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		h, err := nodeAddress(cctx, a.opts.Client, a.cfg.Cloud, a.opts.Getenv)
		cancel()
		if err == nil {
			a.mu.Lock()
			a.host, a.hostErr = h, ""
			a.mu.Unlock()
			close(a.hostOnce)
			a.log.Info("node address", "host", h)
			return
		}
		if time.Since(since) >= a.opts.failAfter {
			a.mu.Lock()
			a.hostErr = "finding the node's address: " + err.Error()
			a.mu.Unlock()
		}
		a.log.Warn("metadata service", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// Host is the node's address once the metadata service gave it.
func (a *Agent) Host(ctx context.Context) (string, error) {
	select {
	case <-a.hostOnce:
		return a.host, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (a *Agent) hostNow() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.host
}

// heartbeat writes the node's heartbeat (best effort: the next one retries).
func (a *Agent) heartbeat(ctx context.Context, fatal string) {
	a.mu.Lock()
	hb := runspec.NodeHeartbeat{Node: a.cfg.Node, Host: a.host, Started: a.start, Updated: time.Now().UTC(),
		Agent: agentVersion(), Inbox: a.gen, Runs: []string{}, Restarts: a.restarts}
	for id, r := range a.runs {
		if r.active() {
			hb.Runs = append(hb.Runs, id)
		}
	}
	sort.Strings(hb.Runs)
	var errs []string
	for _, e := range []string{fatal, a.inboxErr, a.hostErr} {
		if e != "" {
			errs = append(errs, e)
		}
	}
	hb.Error = strings.Join(errs, "; ")
	o := a.urls.Heartbeat
	a.mu.Unlock()
	b, _ := json.Marshal(hb)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := signed.Put(cctx, a.opts.Client, o, strings.NewReader(string(b)), int64(len(b))); err != nil {
		a.log.Warn("heartbeat", "err", err)
	}
}

// pollInbox reads the inbox when it changed and reconciles the runs with it.
func (a *Agent) pollInbox(ctx context.Context) {
	a.mu.Lock()
	o, etag := a.urls.Inbox, a.etag
	a.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	b, newTag, changed, err := getIfChanged(cctx, a.opts.Client, o, etag)
	cancel()
	if ctx.Err() != nil {
		return // stopping
	}
	if err != nil {
		a.mu.Lock()
		a.readFailures++
		n := a.readFailures
		a.mu.Unlock()
		if time.Duration(n)*a.opts.PollEvery >= a.opts.failAfter {
			a.setInboxErr(fmt.Sprintf("reading the inbox: %v", err))
		} else {
			a.log.Warn("reading the inbox", "err", err)
		}
		return
	}
	a.mu.Lock()
	a.readFailures = 0
	if a.inboxErr != "" && strings.HasPrefix(a.inboxErr, "reading the inbox") {
		a.inboxErr = ""
	}
	a.mu.Unlock()
	if !changed {
		return
	}
	var in runspec.Inbox
	if err := runspec.Decode("the node's inbox", b, &in); err != nil {
		a.setInboxErr(err.Error())
		a.rememberTag(newTag) // the same bad bytes need not be read again
		return
	}
	if in.Version != runspec.Version {
		a.setInboxErr(fmt.Sprintf("the inbox is of contract version %d; this agent (%s) speaks version %d", in.Version, agentVersion(), runspec.Version))
		a.rememberTag(newTag)
		return
	}
	a.mu.Lock()
	a.inboxErr, a.gen, a.etag = "", in.Generation, newTag
	if in.Renew != nil && in.Renew.Inbox.URL != "" && in.Renew.Heartbeat.URL != "" {
		if in.Renew.Inbox.URL != a.urls.Inbox.URL {
			a.etag = "" // another URL: its first read is whole
		}
		a.urls = *in.Renew
	}
	a.mu.Unlock()
	a.reconcile(ctx, in.Runs)
}

func (a *Agent) setInboxErr(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inboxErr != s {
		a.log.Warn("inbox", "err", s)
	}
	a.inboxErr = s
}

func (a *Agent) rememberTag(tag string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.etag = tag
}

// reconcile starts the runs new to the inbox, updates the endpoints whose
// spec changed and stops the runs that left it. An endpoint run that
// replaces another of the same address takes over its server.
func (a *Agent) reconcile(ctx context.Context, want []runspec.Run) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := map[string]bool{}
	for _, w := range want {
		ids[w.ID] = true
	}
	// Runs that left the inbox. An endpoint's server is kept for the new
	// run of the same address, which swaps its model in.
	for id, r := range a.runs {
		if ids[id] || !r.active() {
			continue
		}
		replaced := r.spec.Kind == runspec.KindEndpoint && slices.ContainsFunc(want, func(w runspec.Run) bool {
			return w.Kind == runspec.KindEndpoint && w.Address == r.spec.Address
		})
		if replaced {
			a.log.Info("run replaced", "run", id, "address", r.spec.Address)
			r.stop(stopReplaced)
			continue
		}
		a.log.Info("stopping run", "run", id, "address", r.spec.Address)
		r.stop(stopRemoved)
	}
	for _, w := range want {
		if w.Node != a.cfg.Node {
			continue // not this node's (a mistake of the writer): leave it
		}
		if r := a.runs[w.ID]; r != nil {
			if r.active() && w.Kind == runspec.KindEndpoint {
				r.update(w)
			}
			continue
		}
		a.startLocked(ctx, w)
	}
}

// startLocked starts w unless this agent (or an earlier one in its
// directory) started it before.
func (a *Agent) startLocked(ctx context.Context, w runspec.Run) {
	before := a.wasStarted(w.ID)
	r := a.newRun(ctx, w)
	a.runs[w.ID] = r
	if before && w.Kind != runspec.KindEndpoint {
		// A training or batch run is started once: an agent restarted under
		// it reports it interrupted rather than start it a second time.
		if !a.wasFinished(w.ID) {
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				r.interrupted()
			}()
		} else {
			r.finished.Store(true)
		}
		return
	}
	// The record comes before the start, so that a crash in between never
	// gives a second start.
	if !before {
		if err := a.markStarted(w.ID); err != nil {
			// Reported from its own goroutine: a status write must not
			// hold a.mu.
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				r.failNow(fmt.Errorf("recording the run in %s: %w", a.runsDir(), err))
			}()
			return
		}
	}
	a.log.Info("starting run", "run", w.ID, "kind", w.Kind, "address", w.Address)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		r.execute()
		if err := a.markFinished(w.ID); err != nil {
			a.log.Error("recording a run's end", "run", w.ID, "err", err)
		}
	}()
}

func (a *Agent) runsDir() string             { return filepath.Join(a.opts.Dir, "runs") }
func (a *Agent) runDir(id string) string     { return filepath.Join(a.runsDir(), safeID(id)) }
func (a *Agent) artifactsDir() string        { return filepath.Join(a.opts.Dir, "artifacts") }
func (a *Agent) mark(id, name string) string { return filepath.Join(a.runDir(id), name) }

// safeID keeps a run id one path element.
func safeID(id string) string {
	return strings.NewReplacer("/", "_", "\\", "_", "..", "__").Replace(id)
}

func (a *Agent) markStarted(id string) error {
	return fsutil.WriteFile(a.mark(id, "started"), []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o600, fsutil.Options{MkdirAll: true})
}

func (a *Agent) markFinished(id string) error {
	return fsutil.WriteFile(a.mark(id, "finished"), []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o600, fsutil.Options{MkdirAll: true})
}

func (a *Agent) wasStarted(id string) bool {
	_, err := os.Stat(a.mark(id, "started"))
	return err == nil
}

func (a *Agent) wasFinished(id string) bool {
	_, err := os.Stat(a.mark(id, "finished"))
	return err == nil
}

// countRestart counts the agent's starts in its directory; the heartbeat
// reports the restarts.
func (a *Agent) countRestart() int {
	p := filepath.Join(a.opts.Dir, "starts")
	n := 0
	if b, err := os.ReadFile(p); err == nil {
		fmt.Sscan(string(b), &n)
	}
	if err := fsutil.WriteFile(p, []byte(fmt.Sprintln(n+1)), 0o600, fsutil.Options{}); err != nil {
		a.log.Warn("recording the agent's start", "err", err)
	}
	return n
}
