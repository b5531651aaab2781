package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/leptonml/lepton/lang/kinds/endpoint"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/serve"
	"github.com/zclconf/go-cty/cty"
)

// Endpoint serves a model from a detached server process of this binary
// (`lepton internal-serve`), which outlives the CLI. Its pid, port, token and
// log live in state; refresh health-checks it, so a server killed outside
// lepton is drift that the next plan recreates.
type Endpoint struct {
	// Binary is the executable started as the server; empty: this one.
	Binary string
	runs   *remote.Runs // run storages of cloud clusters
}

// endpointDir holds an endpoint's spec, ready file and log (keys under
// endpointPrefix). The server is a process of this machine that writes its
// own files, so they are files of the local store.
func endpointDir(dataDir, address string) string {
	return filepath.Join(storeOf(dataDir).Root(), filepath.FromSlash(strings.TrimSuffix(endpointPrefix(address), "/")))
}

// artifactsDir is the local store's artifacts directory, which the server
// process (on this machine) reads its model from.
func artifactsDir(dataDir string) string {
	p, _ := storeOf(dataDir).Path("artifacts")
	return p
}

// processFiles is a server's files, without its process.
func processFiles(dataDir, address string) serve.Process {
	dir := endpointDir(dataDir, address)
	return serve.Process{SpecPath: filepath.Join(dir, "spec.json"), LogPath: filepath.Join(dir, serverLogKey), ReadyPath: filepath.Join(dir, "ready.json")}
}

type endpointArgs struct {
	model        string
	replicas     int
	port         int
	auth         bool
	maxBatchSize int
	cluster      string
}

func parseEndpoint(v cty.Value) (endpointArgs, error) {
	a := endpointArgs{model: str(attr(v, "model")), replicas: intAttr(v, "replicas", endpoint.DefaultReplicas), port: intAttr(v, "port", 0), auth: true, maxBatchSize: intAttr(v, "max_batch_size", endpoint.DefaultMaxBatchSize)}
	if b := attr(v, "auth"); !b.IsNull() && b.IsKnown() {
		a.auth = b.True()
	}
	a.cluster = str(attr(v, "cluster"))
	switch {
	case a.replicas < 1:
		return a, fmt.Errorf("replicas must be at least 1, got %d", a.replicas)
	case a.port < 0 || a.port > 65535:
		return a, fmt.Errorf("port must be between 0 (any free port) and 65535, got %d", a.port)
	case a.maxBatchSize < 1:
		return a, fmt.Errorf("max_batch_size must be at least 1, got %d", a.maxBatchSize)
	}
	return a, nil
}

var endpointInPlace = map[string]bool{"model": true, "replicas": true, "auth": true, "max_batch_size": true}

// Plan: a new model, replica count, auth or batch size changes the running
// server in place; a new port or cluster replaces it.
func (e *Endpoint) Plan(ctx context.Context, req providers.PlanRequest) (providers.PlanResponse, error) {
	if !req.Prior.IsNull() && sameArgs(req.Prior, req.Config) {
		return providers.PlanResponse{Planned: req.Prior}, nil
	}
	a, err := parseEndpoint(req.Config)
	if err != nil && req.Config.IsWhollyKnown() {
		return providers.PlanResponse{}, err
	}
	if p := attr(req.Config, "port"); p.IsKnown() && !p.IsNull() && attr(req.Config, "cluster").IsNull() {
		if err := checkPortFree(req.Address, a.port, req.Prior, req.Env); err != nil {
			return providers.PlanResponse{}, err
		}
	}
	comp := map[string]cty.Value{"status": cty.StringVal("serving")}
	if m := attr(req.Config, "model"); m.IsKnown() && !m.IsNull() {
		comp["model_version"] = m
		if d := a.model; d != "" {
			if _, err := artifactStore(req.Env.DataDir).Path(d); err != nil {
				return providers.PlanResponse{}, fmt.Errorf("model: %w", err)
			}
		}
	}
	resp := providers.PlanResponse{}
	if !req.Prior.IsNull() {
		replace := false
		for _, name := range changedArgs(req.Prior, req.Config) {
			if !endpointInPlace[name] {
				replace = true
				resp.RequiresReplace = append(resp.RequiresReplace, cty.GetAttrPath(name))
			}
		}
		if !replace {
			// The server keeps its process, address and (unless auth changes) token.
			for _, k := range []string{"url", "pid", "port", "log_path", "token"} {
				comp[k] = req.Prior.GetAttr(k)
			}
			if b := attr(req.Config, "auth"); !b.IsKnown() || !sameBool(attr(req.Prior, "auth"), b) {
				delete(comp, "token")
			}
		}
	}
	resp.Planned = withComputed("endpoint", req.Config, comp)
	return resp, nil
}

func sameBool(a, b cty.Value) bool {
	av := a.IsNull() || a.True()
	bv := b.IsNull() || b.True()
	return av == bv
}

func (e *Endpoint) binary() (string, error) {
	if e.Binary != "" {
		return e.Binary, nil
	}
	return os.Executable()
}

func (e *Endpoint) spec(address string, a endpointArgs, token string, env providers.Env) serve.ProcessSpec {
	addr, _ := splitAddress(address)
	return serve.ProcessSpec{
		Name: addr, Port: a.port, Token: token, Workers: a.replicas, MaxBatchSize: a.maxBatchSize,
		Model: serve.ModelSource{Artifact: a.model, Digest: a.model, Store: artifactsDir(env.DataDir)},
	}
}

// splitAddress returns the endpoint's name as its model routes use it
// (endpoint.digits -> digits; endpoint.x["a"] -> x-a).
func splitAddress(address string) (string, error) {
	name := address
	if i := len("endpoint."); len(address) > i && address[:i] == "endpoint." {
		name = address[i:]
	}
	return safeName(name), nil
}

func processOf(dataDir, address string, v cty.Value) serve.Process {
	p := processFiles(dataDir, address)
	p.Pid, p.Port, p.URL = intAttr(v, "pid", 0), intAttr(v, "port", 0), str(attr(v, "url"))
	return p
}

// Apply starts a server, or updates the running one in place.
func (e *Endpoint) Apply(ctx context.Context, req providers.ApplyRequest) (cty.Value, error) {
	a, err := parseEndpoint(req.Planned)
	if err != nil {
		return cty.NilVal, err
	}
	if a.model == "" {
		return cty.NilVal, errors.New("model is empty: set model = training.NAME.model")
	}
	token := ""
	if a.auth {
		token = str(attr(req.Planned, "token"))
		if token == "" {
			if token, err = serve.NewToken(); err != nil {
				return cty.NilVal, err
			}
		}
	}
	if tg, ok, err := targetOf(req.Env, a.cluster); err != nil {
		return cty.NilVal, err
	} else if ok && isKube(tg) {
		return e.applyKube(ctx, req, a, token, tg)
	} else if ok {
		return e.applyRemote(ctx, req, a, token, tg)
	}
	spec := e.spec(req.Address, a, token, req.Env)
	if !req.Prior.IsNull() {
		p := processOf(req.Env.DataDir, req.Address, req.Prior)
		if err := serve.Update(ctx, p, spec); err != nil {
			return cty.NilVal, err
		}
		return e.value(req.Planned, p, token, a.model), nil
	}
	// A server left by an apply that died before recording it (state says
	// running, without a pid) would hold the port: stop it first.
	dir := endpointDir(req.Env.DataDir, req.Address)
	files := processFiles(req.Env.DataDir, req.Address)
	if info, err := serve.ReadReady(files.ReadyPath); err == nil {
		old := serve.Process{Pid: info.Pid, URL: info.URL, SpecPath: files.SpecPath, ReadyPath: files.ReadyPath}
		if serve.Alive(old) {
			if err := serve.Stop(ctx, old, 30*time.Second); err != nil {
				return cty.NilVal, fmt.Errorf("stopping the server left by an interrupted apply: %w", err)
			}
		}
	}
	bin, err := e.binary()
	if err != nil {
		return cty.NilVal, fmt.Errorf("finding the lepton binary to run the server: %w", err)
	}
	p, err := serve.Start(ctx, serve.StartSpec{Binary: bin, Args: []string{"internal-serve"}, Dir: dir, Spec: spec})
	if err != nil {
		return cty.NilVal, err
	}
	return e.value(req.Planned, p, token, a.model), nil
}

func (e *Endpoint) value(planned cty.Value, p serve.Process, token, model string) cty.Value {
	return withComputed("endpoint", planned, map[string]cty.Value{
		"url": cty.StringVal(p.URL), "token": cty.StringVal(token), "status": cty.StringVal("serving"),
		"model_version": cty.StringVal(model), "port": numVal(float64(p.Port)), "pid": numVal(float64(p.Pid)),
		"log_path": cty.StringVal(p.LogPath),
	})
}

// Read health-checks the server: one that died or stopped answering is gone.
func (e *Endpoint) Read(ctx context.Context, req providers.ReadRequest) (cty.Value, error) {
	if p, ok := parsePrivate(req.Private); ok && p.Kube != nil {
		return e.readKube(ctx, req, *p.Kube)
	} else if ok {
		return e.readRemote(ctx, req, p)
	}
	p := processOf(req.Env.DataDir, req.Address, req.Current)
	st := serve.Check(ctx, p)
	if !st.Running || !st.Ready {
		if st.Running {
			// Alive but not answering: stop it so the replacement can take the port.
			serve.Stop(ctx, p, 5*time.Second)
		}
		return cty.NullVal(req.Current.Type()), nil
	}
	m := req.Current.AsValueMap()
	if st.Version != "" {
		m["model_version"] = cty.StringVal(st.Version)
	}
	return cty.ObjectVal(m), nil
}

// Delete stops the server gracefully, draining requests in flight.
func (e *Endpoint) Delete(ctx context.Context, req providers.DeleteRequest) error {
	if p, ok := parsePrivate(req.Private); ok && p.Kube != nil {
		return deleteKube(ctx, *p.Kube, req.Address, req.Env.Lineage)
	} else if ok {
		return deleteRemoteRun(ctx, e.runs, nil, req.Env, p)
	}
	p := processOf(req.Env.DataDir, req.Address, req.Current)
	if err := serve.Stop(ctx, p, 30*time.Second); err != nil {
		return err
	}
	return nil
}
