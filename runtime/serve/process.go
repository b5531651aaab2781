package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/leptonml/lepton/internal/fsutil"
)

// ProcessSpec configures a detached server process. Start writes it to a
// 0600 file (it holds the token) that the process reads at start and again
// on SIGHUP (see Update).
type ProcessSpec struct {
	Name            string        `json:"name"`
	Host            string        `json:"host,omitempty"` // default 127.0.0.1
	Port            int           `json:"port"`           // 0: any free port
	Token           string        `json:"token,omitempty"`
	Workers         int           `json:"workers,omitempty"` // replicas
	MaxBatchSize    int           `json:"max_batch_size,omitempty"`
	MaxBodyBytes    int64         `json:"max_body_bytes,omitempty"`
	BatchWindow     time.Duration `json:"batch_window_ns,omitempty"`
	ShutdownTimeout time.Duration `json:"shutdown_timeout_ns,omitempty"`
	Model           ModelSource   `json:"model"`
	// ReadyFile is where the process reports itself; Start sets it.
	ReadyFile string `json:"ready_file"`
}

func (p ProcessSpec) host() string {
	if p.Host == "" {
		return "127.0.0.1"
	}
	return p.Host
}

// ErrNeedsReplace is returned by Update when the change cannot be applied to
// a running process (name, host, port, body limit, batch window, shutdown
// timeout); the caller replaces the process.
var ErrNeedsReplace = errors.New("change needs a new server process")

// immutableDiff names the first field that a running process cannot change.
func immutableDiff(a, b ProcessSpec) string {
	switch {
	case a.Name != b.Name:
		return "name"
	case a.host() != b.host():
		return "host"
	case a.Port != b.Port:
		return "port"
	case a.ReadyFile != b.ReadyFile:
		return "ready_file"
	case a.MaxBodyBytes != b.MaxBodyBytes:
		return "max_body_bytes"
	case a.BatchWindow != b.BatchWindow:
		return "batch_window"
	case a.ShutdownTimeout != b.ShutdownTimeout:
		return "shutdown_timeout"
	}
	return ""
}

// ReadyInfo is what a running process writes to its ready file: where it
// listens and which spec it has applied.
type ReadyInfo struct {
	Pid          int    `json:"pid"`
	Port         int    `json:"port"`
	URL          string `json:"url"`
	Version      string `json:"version"`
	Workers      int    `json:"workers"`
	MaxBatchSize int    `json:"max_batch_size"`
	SpecDigest   string `json:"spec_digest"` // of the spec file last applied
	// ReloadError is set when the spec with digest ReloadErrorDigest could
	// not be applied; the process keeps serving the previous one.
	ReloadError       string `json:"reload_error,omitempty"`
	ReloadErrorDigest string `json:"reload_error_digest,omitempty"`
}

func specDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func readSpec(path string) (ProcessSpec, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ProcessSpec{}, "", fmt.Errorf("read server spec: %w", err)
	}
	// The digest comes back even for a bad spec, so that Update, waiting for
	// its spec to be applied, learns that it was refused.
	d := specDigest(b)
	var sp ProcessSpec
	if err := json.Unmarshal(b, &sp); err != nil {
		return ProcessSpec{}, d, fmt.Errorf("server spec %s: %w", path, err)
	}
	if sp.Name == "" || sp.ReadyFile == "" {
		return ProcessSpec{}, d, fmt.Errorf("server spec %s: name and ready_file are required", path)
	}
	return sp, d, nil
}

// Main runs a detached server process: `lepton internal-serve -spec FILE`.
// It loads the model with load, listens, writes the ready file, serves until
// SIGTERM or SIGINT (then drains requests in flight and removes the ready
// file) and applies a rewritten spec on SIGHUP without dropping requests.
// Logs go to stderr, which Start points at the endpoint's log file.
func Main(ctx context.Context, args []string, load Loader) error {
	// Catch signals before anything else (a SIGHUP's default action would
	// kill us); an update is applied once the server is up.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	fs := flag.NewFlagSet("internal-serve", flag.ContinueOnError)
	specPath := fs.String("spec", "", "server spec file (JSON)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *specPath == "" {
		return errors.New("internal-serve: -spec is required")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sp, digest, err := readSpec(*specPath)
	if err != nil {
		return err
	}
	log.Info("starting", "endpoint", sp.Name, "pid", os.Getpid(), "model", sp.Model.Artifact, "digest", sp.Model.Digest)

	// Load in the background so a SIGTERM during a slow load still stops us.
	lctx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	type loaded struct {
		m   Model
		err error
	}
	lc := make(chan loaded, 1)
	go func() {
		m, err := load(lctx, sp.Model)
		lc <- loaded{m, err}
	}()
	var m Model
	pendingHUP := false
	for m == nil {
		select {
		case l := <-lc:
			if l.err != nil {
				return fmt.Errorf("endpoint %s: load model %s: %w", sp.Name, sp.Model.Artifact, l.err)
			}
			if l.m == nil {
				return fmt.Errorf("endpoint %s: load model %s: loader returned no model", sp.Name, sp.Model.Artifact)
			}
			m = l.m
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				return fmt.Errorf("endpoint %s: %s while loading the model", sp.Name, sig)
			}
			pendingHUP = true // an update arrived early: apply it once up
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s, err := New(Config{
		Name: sp.Name, Token: sp.Token, MaxBatchSize: sp.MaxBatchSize, MaxBodyBytes: sp.MaxBodyBytes,
		Workers: sp.Workers, BatchWindow: sp.BatchWindow, ShutdownTimeout: sp.ShutdownTimeout, Logger: log,
	}, Loaded{Version: sp.Model.version(), Model: m})
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", sp.Name, err)
	}
	addr := net.JoinHostPort(sp.host(), strconv.Itoa(sp.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.Close()
		return fmt.Errorf("endpoint %s: listen on %s: %w", sp.Name, addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ready := ReadyInfo{Pid: os.Getpid(), Port: port, URL: "http://" + net.JoinHostPort(sp.host(), strconv.Itoa(port)), SpecDigest: digest}
	writeReady := func() error {
		cur := s.Current()
		ready.Version, ready.Workers, ready.MaxBatchSize = cur.Version, s.Workers(), s.MaxBatchSize()
		b, _ := json.MarshalIndent(ready, "", "  ")
		return fsutil.WriteFile(sp.ReadyFile, append(b, '\n'), 0o644, fsutil.Options{})
	}

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- s.Serve(sctx, ln) }()
	if err := writeReady(); err != nil {
		stop()
		<-served
		return fmt.Errorf("endpoint %s: write ready file: %w", sp.Name, err)
	}
	defer os.Remove(sp.ReadyFile)
	if pendingHUP {
		select {
		case sigs <- syscall.SIGHUP:
		default: // one is already pending
		}
	}
	// A traffic line a minute (when there was traffic) makes `lepton logs`
	// useful without logging every request.
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	var last TrafficCounts

	for {
		select {
		case <-tick.C:
			if c := s.Counts(); c != last {
				log.Info("traffic", "requests", c.Requests-last.Requests, "client_errors", c.ClientErrors-last.ClientErrors,
					"server_errors", c.ServerErrors-last.ServerErrors, "rows", c.Rows-last.Rows, "version", s.Current().Version)
				last = c
			}
		case err := <-served:
			return err
		case <-ctx.Done():
			log.Info("context cancelled, draining")
			stop()
			return <-served
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				log.Info("signal received, draining", "signal", sig.String())
				stop()
				return <-served
			}
			next, nd, err := readSpec(*specPath)
			if err == nil {
				err = applySpec(ctx, s, sp, next, load)
			}
			if err != nil {
				log.Error("reload failed; still serving the previous spec", "err", err)
				ready.ReloadError, ready.ReloadErrorDigest = err.Error(), nd
			} else {
				sp, ready.SpecDigest, ready.ReloadError, ready.ReloadErrorDigest = next, nd, "", ""
				log.Info("reloaded", "version", s.Current().Version, "workers", s.Workers(), "max_batch_size", s.MaxBatchSize())
			}
			if err := writeReady(); err != nil {
				log.Error("write ready file", "err", err)
			}
		}
	}
}

// applySpec moves a running server from cur to next: a new model is loaded
// before the swap, so requests keep being served by the old one meanwhile.
func applySpec(ctx context.Context, s *Server, cur, next ProcessSpec, load Loader) error {
	if f := immutableDiff(cur, next); f != "" {
		return fmt.Errorf("%s changed: %w", f, ErrNeedsReplace)
	}
	if next.Model != cur.Model {
		m, err := load(ctx, next.Model)
		if err != nil {
			return fmt.Errorf("load model %s: %w", next.Model.Artifact, err)
		}
		if err := s.Swap(Loaded{Version: next.Model.version(), Model: m}); err != nil {
			return err
		}
	}
	mb, w := next.MaxBatchSize, next.Workers
	if mb <= 0 {
		mb = defaultMaxBatch
	}
	if w <= 0 {
		w = runtime.GOMAXPROCS(0)
	}
	s.SetMaxBatchSize(mb)
	s.SetWorkers(w)
	s.SetToken(next.Token)
	return nil
}

// StartSpec says how to start a detached server process.
type StartSpec struct {
	Binary string   // executable, normally os.Executable() of lepton
	Args   []string // arguments before "-spec FILE", e.g. ["internal-serve"]
	Env    []string // extra environment (KEY=VALUE) on top of os.Environ()
	// Dir holds the process's spec.json, ready.json and server.log, e.g.
	// .lepton/endpoints/NAME. It is created if missing.
	Dir          string
	Spec         ProcessSpec
	ReadyTimeout time.Duration // default 60s
}

// Process identifies a running server; the provider keeps it in state.
type Process struct {
	Pid      int    `json:"pid"`
	Port     int    `json:"port"`
	URL      string `json:"url"`
	SpecPath string `json:"spec_path"`
	LogPath  string `json:"log_path"`
	// ReadyPath is the ready file the process maintains.
	ReadyPath string `json:"ready_path"`
}

// Start spawns a server process in its own session (so it outlives the CLI
// and its terminal) with stdin from /dev/null and output appended to
// Dir/server.log, then waits until it reports ready and answers
// /v2/health/ready. If it exits or does not become ready in time, Start
// kills it and returns an error quoting the end of its log.
func Start(ctx context.Context, st StartSpec) (Process, error) {
	if st.Binary == "" || st.Dir == "" {
		return Process{}, errors.New("serve: StartSpec needs Binary and Dir")
	}
	if st.ReadyTimeout <= 0 {
		st.ReadyTimeout = 60 * time.Second
	}
	// Absolute paths, so a later command run from another directory (and
	// Alive's command-line check) still finds the files.
	dir, err := filepath.Abs(st.Dir)
	if err != nil {
		return Process{}, fmt.Errorf("endpoint %s: %w", st.Spec.Name, err)
	}
	st.Dir = dir
	if err := os.MkdirAll(st.Dir, 0o700); err != nil {
		return Process{}, fmt.Errorf("endpoint %s: %w", st.Spec.Name, err)
	}
	p := Process{SpecPath: filepath.Join(st.Dir, "spec.json"), LogPath: filepath.Join(st.Dir, "server.log"),
		ReadyPath: filepath.Join(st.Dir, "ready.json")}
	st.Spec.ReadyFile = p.ReadyPath
	b, _ := json.MarshalIndent(st.Spec, "", "  ")
	if err := fsutil.WriteFile(p.SpecPath, append(b, '\n'), 0o600, fsutil.Options{}); err != nil {
		return Process{}, fmt.Errorf("endpoint %s: write spec: %w", st.Spec.Name, err)
	}
	if err := os.Remove(p.ReadyPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Process{}, fmt.Errorf("endpoint %s: remove stale ready file: %w", st.Spec.Name, err)
	}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return Process{}, fmt.Errorf("endpoint %s: open log: %w", st.Spec.Name, err)
	}
	cmd := exec.Command(st.Binary, append(append([]string{}, st.Args...), "-spec", p.SpecPath)...)
	cmd.Env = append(os.Environ(), st.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	logf.Close()
	if err != nil {
		return Process{}, fmt.Errorf("endpoint %s: start %s: %w", st.Spec.Name, st.Binary, err)
	}
	p.Pid = cmd.Process.Pid
	// Reap the child if it exits while we are still running; once we exit
	// it is re-parented and its new parent reaps it.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	fail := func(why string) (Process, error) {
		cmd.Process.Kill()
		return Process{}, fmt.Errorf("endpoint %s: server process %d %s; last log lines:\n%s", st.Spec.Name, p.Pid, why, tail(p.LogPath, 15))
	}
	deadline := time.NewTimer(st.ReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return Process{}, fmt.Errorf("endpoint %s: server process %d exited before it was ready (%v); last log lines:\n%s", st.Spec.Name, p.Pid, err, tail(p.LogPath, 15))
		case <-ctx.Done():
			return fail("was abandoned: " + ctx.Err().Error())
		case <-deadline.C:
			return fail(fmt.Sprintf("was not ready after %s", st.ReadyTimeout))
		case <-tick.C:
		}
		info, err := ReadReady(p.ReadyPath)
		if err != nil || info.Pid != p.Pid {
			continue
		}
		p.Port, p.URL = info.Port, info.URL
		if Health(ctx, p.URL) == nil {
			return p, nil
		}
	}
}

// ReadReady reads a process's ready file.
func ReadReady(path string) (ReadyInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ReadyInfo{}, err
	}
	var info ReadyInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return ReadyInfo{}, fmt.Errorf("ready file %s: %w", path, err)
	}
	return info, nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Health returns nil when the server at url answers GET /v2/health/ready
// with 200 within a few seconds.
func Health(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+"/v2/health/ready", nil)
	if err != nil {
		return fmt.Errorf("health check %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health check %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return fmt.Errorf("health check %s: %s %s", url, resp.Status, strings.TrimSpace(b.String()))
	}
	return nil
}

// Alive reports whether p's process is running and is still the server
// started with p's spec (a recycled pid belonging to something else is not).
func Alive(p Process) bool {
	if p.Pid <= 0 {
		return false
	}
	if err := syscall.Kill(p.Pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid))
	if err != nil {
		// No procfs (not Linux): the signal check is all we have.
		return !errors.Is(err, os.ErrNotExist) || !procfs()
	}
	// The state follows the parenthesised command name; Z is a zombie.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid))
	return err == nil && (p.SpecPath == "" || bytes.Contains(cmdline, []byte(p.SpecPath)))
}

func procfs() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// Status is what a refresh learns about a server process.
type Status struct {
	Running      bool   // the process exists
	Ready        bool   // and answers its readiness check
	Version      string // model version it serves
	Workers      int
	MaxBatchSize int
	Detail       string // why it is not running or not ready
}

// Check inspects p for a refresh: an endpoint whose process died or stopped
// answering shows up as not Running or not Ready.
func Check(ctx context.Context, p Process) Status {
	if !Alive(p) {
		return Status{Detail: fmt.Sprintf("server process %d is not running", p.Pid)}
	}
	st := Status{Running: true}
	if info, err := ReadReady(p.ReadyPath); err == nil && info.Pid == p.Pid {
		st.Version, st.Workers, st.MaxBatchSize = info.Version, info.Workers, info.MaxBatchSize
	}
	if err := Health(ctx, p.URL); err != nil {
		st.Detail = err.Error()
		return st
	}
	st.Ready = true
	return st
}

// Update applies spec to a running process in place: it rewrites the spec
// file, signals SIGHUP and waits until the process reports that it applied
// it. A new model is loaded before the switch and requests keep flowing
// throughout. Model, workers (replicas), max batch size and token (auth on
// or off) change in place; other changes return ErrNeedsReplace without
// touching the process.
func Update(ctx context.Context, p Process, spec ProcessSpec) error {
	cur, _, err := readSpec(p.SpecPath)
	if err != nil {
		return err
	}
	spec.ReadyFile = p.ReadyPath
	if cur.Port == 0 && spec.Port != 0 {
		// The server was started on any free port and bound this one:
		// asking for the port it has is no change.
		if info, err := ReadReady(p.ReadyPath); err == nil && info.Port == spec.Port {
			spec.Port = 0
		}
	}
	if f := immutableDiff(cur, spec); f != "" {
		return fmt.Errorf("endpoint %s: %s changed: %w", cur.Name, f, ErrNeedsReplace)
	}
	if !Alive(p) {
		return fmt.Errorf("endpoint %s: server process %d is not running", cur.Name, p.Pid)
	}
	b, _ := json.MarshalIndent(spec, "", "  ")
	b = append(b, '\n')
	if err := fsutil.WriteFile(p.SpecPath, b, 0o600, fsutil.Options{}); err != nil {
		return fmt.Errorf("endpoint %s: write spec: %w", cur.Name, err)
	}
	want := specDigest(b)
	if err := syscall.Kill(p.Pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("endpoint %s: signal server process %d: %w", cur.Name, p.Pid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := ReadReady(p.ReadyPath)
		switch {
		case err == nil && info.SpecDigest == want:
			return nil
		case err == nil && info.ReloadErrorDigest == want:
			return fmt.Errorf("endpoint %s: server kept its previous spec: %s", cur.Name, info.ReloadError)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("endpoint %s: waiting for server process %d to apply the update: %w", cur.Name, p.Pid, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop asks p to shut down (SIGTERM: it stops accepting and drains requests
// in flight) and waits up to grace (default 30s) before killing it. A
// process that is already gone is not an error.
func Stop(ctx context.Context, p Process, grace time.Duration) error {
	if grace <= 0 {
		grace = 30 * time.Second
	}
	if !Alive(p) {
		return nil
	}
	if err := syscall.Kill(p.Pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("stop server process %d: %w", p.Pid, err)
	}
	if waitGone(ctx, p, grace) {
		return nil
	}
	if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill server process %d: %w", p.Pid, err)
	}
	if !waitGone(context.WithoutCancel(ctx), p, 10*time.Second) {
		return fmt.Errorf("server process %d survived SIGKILL", p.Pid)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("server process %d killed before it drained: %w", p.Pid, ctx.Err())
	}
	return fmt.Errorf("server process %d did not drain within %s and was killed", p.Pid, grace)
}

func waitGone(ctx context.Context, p Process, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for Alive(p) {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return !Alive(p)
		case <-tick.C:
		}
	}
	return true
}

// NewToken returns a random bearer token for an endpoint.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
