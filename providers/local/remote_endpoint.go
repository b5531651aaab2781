package local

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/serve"
	"github.com/zclconf/go-cty/cty"
)

// applyRemote serves the model on every node of a cloud cluster (the agent
// serves it in-process with the same HTTP API, token and /metrics as a local
// server). A new model, replica count or batch size is handed to the same
// run, which swaps it in without dropping requests.
func (e *Endpoint) applyRemote(ctx context.Context, req providers.ApplyRequest, a endpointArgs, token string, tg target) (cty.Value, error) {
	c, err := openRuns(ctx, e.runs, req.Env, tg)
	if err != nil {
		return cty.NilVal, err
	}
	nodes := make([]int, len(tg.ids))
	for i := range nodes {
		nodes[i] = i
	}
	p, ok := parsePrivate(req.Private)
	if !ok || p.Cluster != tg.address {
		p = runPrivate{Run: newRunID(req.Address), Cluster: tg.address, Cloud: tg.cloud, Storage: c.URL, Started: nowUTC()}
	}
	gone := missing(p.Nodes, nodes)
	p.Nodes = nodes
	if req.Record != nil {
		if err := req.Record(ctx, p.bytes()); err != nil {
			return cty.NilVal, err
		}
	}
	model, err := uploadArtifact(ctx, c, req.Env.DataDir, a.model)
	if err != nil {
		return cty.NilVal, fmt.Errorf("model: %w", err)
	}
	server := e.spec(req.Address, a, token, req.Env)
	server.Model = serve.ModelSource{Digest: a.model}
	for _, n := range nodes {
		run := runspec.Run{ID: p.Run, Kind: runspec.KindEndpoint, Address: req.Address, Node: n, Nodes: len(nodes),
			Expires: nowUTC().Add(remote.URLTTL), Endpoint: &runspec.Endpoint{Server: server, Model: model}}
		if run.Status, run.Log, err = runObjects(ctx, c, p.Run, n); err != nil {
			return cty.NilVal, err
		}
		if err := c.AddRun(ctx, tg.key, run); err != nil {
			return cty.NilVal, err
		}
	}
	for _, n := range gone {
		c.RemoveRun(ctx, tg.key, n, p.Run) // a node the cluster no longer has
	}
	logger(req.Env)("serving %s on %d node(s) of %s (run %s)", shortDigest(a.model), len(nodes), tg.address, p.Run)
	ready := func(st runspec.Status) bool {
		return st.State == runspec.StateServing && st.Result != nil && st.Result.URL != "" && st.Result.ModelVersion == a.model
	}
	sts, err := remote.Watch{Client: c, Cluster: tg.key, Run: p.Run, Nodes: nodes, Done: ready, BootTimeout: 10 * time.Minute}.Wait(ctx)
	if err != nil {
		return cty.NilVal, fmt.Errorf("serving on %s: %w", tg.address, err)
	}
	u := sts[0].Result.URL
	return e.remoteValue(req.Planned, u, token, a.model, c.Store.Where(runspec.LogKey(p.Run, 0))), nil
}

func missing(old, now []int) []int {
	have := map[int]bool{}
	for _, n := range now {
		have[n] = true
	}
	var out []int
	for _, n := range old {
		if !have[n] {
			out = append(out, n)
		}
	}
	return out
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func (e *Endpoint) remoteValue(planned cty.Value, u, token, model, logPath string) cty.Value {
	port := 0
	if pu, err := url.Parse(u); err == nil {
		port, _ = strconv.Atoi(pu.Port())
	}
	return withComputed("endpoint", planned, map[string]cty.Value{
		"url": cty.StringVal(u), "token": cty.StringVal(token), "status": cty.StringVal("serving"),
		"model_version": cty.StringVal(model), "port": numVal(float64(port)), "pid": numVal(0),
		"log_path": cty.StringVal(logPath),
	})
}

// readRemote health-checks the endpoint on every node: one that stopped
// serving (a dead node, a stopped agent) makes the endpoint gone, and the
// next apply serves it again.
func (e *Endpoint) readRemote(ctx context.Context, req providers.ReadRequest, p runPrivate) (cty.Value, error) {
	c, err := openPrivate(ctx, e.runs, req.Env, p)
	if err != nil {
		return cty.NilVal, err
	}
	version := ""
	for _, n := range p.Nodes {
		st, found, err := c.Status(ctx, p.Run, n)
		if err != nil {
			return cty.NilVal, err
		}
		if !found || st.State != runspec.StateServing || st.Result == nil || runspec.Stale(st.Updated, time.Now()) {
			return cty.NullVal(req.Current.Type()), nil
		}
		if err := serve.Health(ctx, st.Result.URL); err != nil {
			return cty.NullVal(req.Current.Type()), nil
		}
		if n == 0 {
			version = st.Result.ModelVersion
		}
	}
	m := req.Current.AsValueMap()
	if version != "" {
		m["model_version"] = cty.StringVal(version)
	}
	return cty.ObjectVal(m), nil
}
