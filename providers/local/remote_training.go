package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/zclconf/go-cty/cty"
)

// applyRemote runs a built-in training on node 0 of a cloud cluster, or
// waits again for the run an interrupted apply started there.
func (t *Training) applyRemote(ctx context.Context, req providers.ApplyRequest, ts trainingSpec, tg target) (cty.Value, error) {
	c, err := openRuns(ctx, t.runs, req.Env, tg)
	if err != nil {
		return cty.NilVal, err
	}
	logf := logger(req.Env)
	p, st, err := awaitNode0(ctx, req, c, tg, func(id string) error { return t.handOver(ctx, req, ts, tg, c, id) })
	if err != nil {
		if ctx.Err() != nil {
			return cty.NilVal, err // interrupted: the run goes on, state says running
		}
		return cty.NilVal, fmt.Errorf("training on %s: %w", tg.address, err)
	}
	res := st.Result
	if res == nil || res.Model == "" {
		return cty.NilVal, fmt.Errorf("run %s on %s node 0 succeeded without a model in its status (%s)", p.Run, tg.address, c.Store.Where(runspec.StatusKey(p.Run, 0)))
	}
	b, err := runstore.ReadAll(ctx, c.Store, runspec.ModelKey(p.Run))
	if errors.Is(err, fs.ErrNotExist) {
		// Gone for good (deleted after the run): the training is tainted,
		// and the next apply trains it again.
		return cty.NilVal, fmt.Errorf("run %s succeeded, but its model %s is missing from the run storage: the next apply trains again", p.Run, c.Store.Where(runspec.ModelKey(p.Run)))
	}
	if err != nil {
		return cty.NilVal, fmt.Errorf("downloading the model of run %s: %w", p.Run, err)
	}
	digest, err := artifactStore(req.Env.DataDir).PutEncoded(ctx, b)
	if err != nil {
		return cty.NilVal, fmt.Errorf("the model of run %s (%s): %w", p.Run, c.Store.Where(runspec.ModelKey(p.Run)), err)
	}
	if digest != res.Model {
		return cty.NilVal, fmt.Errorf("the model of run %s hashes to %s, but the node reported %s: the object was changed or corrupted", p.Run, digest, res.Model)
	}
	if mb, err := runstore.ReadAll(ctx, c.Store, runspec.MetricsKey(p.Run)); err == nil {
		// The curves are a view (lepton ui): best effort, as locally.
		runstore.PutBytes(ctx, runstore.Sub(storeOf(req.Env.DataDir), runPrefix(req.Address)), "metrics.json", mb)
	}
	if err := c.RemoveRun(ctx, tg.key, 0, p.Run); err != nil {
		logf("run %s finished, but its node's inbox could not be cleared: %v", p.Run, err)
	}
	logf("run %s succeeded: model %s", p.Run, digest)
	return trainedValue(req.Planned, digest, res.Metrics, res.EpochsCompleted), nil
}

// handOver uploads what the run needs and puts it in node 0's inbox.
func (t *Training) handOver(ctx context.Context, req providers.ApplyRequest, ts trainingSpec, tg target, c *remote.Client, id string) error {
	run := runspec.Run{ID: id, Kind: runspec.KindTraining, Address: req.Address, Node: 0, Nodes: 1, Expires: nowUTC().Add(remote.URLTTL)}
	tr := &runspec.Training{Objective: ts.objective}
	var err error
	if ts.objective == "q_learning" {
		rs := ts.rl
		tr.RL = &rs
	} else {
		sup := ts.sup
		tr.Train = &sup
		dsVal, ok := req.Env.Lookup(ts.dataset)
		if !ok {
			return fmt.Errorf("dataset %s is not in state: apply it first", ts.dataset)
		}
		o, err := uploadDataset(ctx, c, req.Env, ts.dataset, dsVal)
		if err != nil {
			return err
		}
		tr.Dataset = &o
		if ts.base != "" {
			o, err := uploadArtifact(ctx, c, req.Env.DataDir, ts.base)
			if err != nil {
				return fmt.Errorf("base_model: %w", err)
			}
			tr.BaseModel = &o
		}
	}
	if tr.Model, err = c.Store.Sign(ctx, runspec.ModelKey(id), "PUT", remote.URLTTL); err != nil {
		return err
	}
	m, err := c.Store.Sign(ctx, runspec.MetricsKey(id), "PUT", remote.URLTTL)
	if err != nil {
		return err
	}
	tr.Metrics = &m
	run.Training = tr
	if run.Status, run.Log, err = runObjects(ctx, c, id, 0); err != nil {
		return err
	}
	if err := prepareAttempt(ctx, c, tg, &run); err != nil {
		return err
	}
	return c.AddRun(ctx, tg.key, run)
}
