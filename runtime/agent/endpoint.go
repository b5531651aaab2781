package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/objstore/signed"
	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/serve"
)

// server is a model server of an endpoint on this node. It belongs to the
// endpoint's address rather than to one run: a new run of the same
// endpoint (a new version) takes it over and swaps its model in.
type server struct {
	srv     *serve.Server
	spec    serve.ProcessSpec // as applied (Host filled in)
	url     string
	version string
	stop    context.CancelFunc
	done    chan error
}

// endpoints are the agent's servers by endpoint address.
type endpoints struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
	by    map[string]*server
}

// lock serialises the runs of one endpoint address while they start,
// swap or stop its server.
func (e *endpoints) lock(address string) func() {
	e.mu.Lock()
	if e.locks == nil {
		e.locks, e.by = map[string]*sync.Mutex{}, map[string]*server{}
	}
	l := e.locks[address]
	if l == nil {
		l = &sync.Mutex{}
		e.locks[address] = l
	}
	e.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (e *endpoints) get(address string) *server {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.by[address]
}

func (e *endpoints) set(address string, s *server) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s == nil {
		delete(e.by, address)
	} else {
		e.by[address] = s
	}
}

// serveEndpoint serves the run's model until the run is stopped, applying
// changed specs (a new model is swapped in without dropping a request).
func (r *run) serveEndpoint() (*runspec.Result, error) {
	host, err := r.a.Host(r.ctx)
	if err != nil {
		return nil, fmt.Errorf("the node's address is unknown: %w", err)
	}
	spec := r.spec
	res, err := r.applyEndpoint(spec, host)
	if err != nil {
		return nil, err
	}
	r.setState(runspec.StateServing, res, "")
	for {
		select {
		case <-r.ctx.Done():
			if stopReason(r.reason.Load()) == stopReplaced {
				return res, nil // the new run keeps the server
			}
			unlock := r.a.eps.lock(spec.Address)
			defer unlock()
			if s := r.a.eps.get(spec.Address); s != nil {
				r.logf("draining the server at %s", s.url)
				s.stop()
				if err := <-s.done; err != nil {
					r.logf("%v", err)
				}
				r.a.eps.set(spec.Address, nil)
			}
			return res, nil
		case next := <-r.updates:
			r.mu.Lock()
			r.spec.Status, r.spec.Log = next.Status, next.Log
			r.mu.Unlock()
			nres, err := r.applyEndpoint(next, host)
			if err != nil {
				// The server keeps serving what it served.
				r.logf("updating the endpoint: %v", err)
				r.setState(runspec.StateFailed, res, fmt.Sprintf("updating the endpoint: %v (still serving %s)", err, res.ModelVersion))
				continue
			}
			r.mu.Lock()
			r.spec = next
			r.mu.Unlock()
			res = nres
			r.setState(runspec.StateServing, res, "")
		}
	}
}

// applyEndpoint makes the address's server serve w: it starts one, or
// changes the running one in place (model, workers, batch size, token), or
// replaces it when what it listens on changed.
func (r *run) applyEndpoint(w runspec.Run, host string) (*runspec.Result, error) {
	ep := w.Endpoint
	if ep == nil {
		return nil, errors.New("the endpoint run has no endpoint")
	}
	sp := ep.Server
	sp.Host = host
	version := sp.Model.Version
	if version == "" {
		version = ep.Model.Digest
	}
	if version == "" {
		version = sp.Model.Digest
	}
	unlock := r.a.eps.lock(w.Address)
	defer unlock()
	cur := r.a.eps.get(w.Address)
	if cur != nil && !sameListener(cur.spec, sp) {
		r.logf("the server's address or limits changed: replacing the server at %s", cur.url)
		cur.stop()
		<-cur.done
		r.a.eps.set(w.Address, nil)
		cur = nil
	}
	if cur != nil {
		if cur.version != version {
			m, err := r.loadModel(ep.Model)
			if err != nil {
				return nil, err
			}
			if err := cur.srv.Swap(serve.Loaded{Version: version, Model: m}); err != nil {
				return nil, err
			}
			r.logf("swapped the model: %s -> %s", cur.version, version)
			cur.version = version
		}
		cur.srv.SetWorkers(orDefault(sp.Workers, runtime.GOMAXPROCS(0)))
		if sp.MaxBatchSize > 0 {
			cur.srv.SetMaxBatchSize(sp.MaxBatchSize)
		}
		cur.srv.SetToken(sp.Token)
		cur.spec = sp
		return &runspec.Result{URL: cur.url, ModelVersion: cur.version}, nil
	}
	m, err := r.loadModel(ep.Model)
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(logWriter{r}, nil))
	srv, err := serve.New(serve.Config{Name: sp.Name, Token: sp.Token, MaxBatchSize: sp.MaxBatchSize, MaxBodyBytes: sp.MaxBodyBytes,
		Workers: sp.Workers, BatchWindow: sp.BatchWindow, ShutdownTimeout: sp.ShutdownTimeout, ServerVersion: agentVersion(), Logger: logger},
		serve.Loaded{Version: version, Model: m})
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", sp.Name, err)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(sp.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("endpoint %s: listen on %s: %w", sp.Name, addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	// The server outlives this run when a newer run takes it over.
	sctx, stop := context.WithCancel(context.Background())
	s := &server{srv: srv, spec: sp, url: "http://" + net.JoinHostPort(host, strconv.Itoa(port)), version: version, stop: stop, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(sctx, ln) }()
	r.a.eps.set(w.Address, s)
	r.logf("serving %s at %s", version, s.url)
	return &runspec.Result{URL: s.url, ModelVersion: version}, nil
}

// sameListener reports whether a running server can take b in place: the
// fields serve.Update also refuses to change (a port of 0 keeps the port
// the server bound).
func sameListener(a, b serve.ProcessSpec) bool {
	return a.Name == b.Name && a.Host == b.Host && a.Port == b.Port && a.MaxBodyBytes == b.MaxBodyBytes &&
		a.BatchWindow == b.BatchWindow && a.ShutdownTimeout == b.ShutdownTimeout
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// loadModel downloads a model artifact (checked against its digest) and
// decodes it for serving.
func (r *run) loadModel(o runspec.Object) (*artifact.Model, error) {
	start := time.Now()
	b, err := signed.Get(r.ctx, r.a.opts.Client, o)
	if err != nil {
		return nil, fmt.Errorf("downloading the model: %w", err)
	}
	m, err := artifact.Decode(b, o.Key)
	if err != nil {
		return nil, err
	}
	if m.Kind != artifact.KindSupervised {
		return nil, fmt.Errorf("model %s is a %s artifact: endpoints serve supervised models", m.Digest(), m.Kind)
	}
	r.logf("downloaded model %s (%d bytes) in %s", m.Digest(), len(b), time.Since(start).Round(time.Millisecond))
	return m, nil
}
