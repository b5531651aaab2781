package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/clusters"
	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/data"
	"github.com/leptonml/lepton/runtime/rl"
	"github.com/leptonml/lepton/runtime/rl/env"
	"github.com/leptonml/lepton/runtime/runmetrics"
	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/leptonml/lepton/runtime/train"
	"github.com/zclconf/go-cty/cty"
)

// Training runs a training on this machine: the built-in supervised kernels
// or tabular Q-learning. Its run directory holds checkpoints, so an
// interrupted run resumes where it stopped.
type Training struct {
	runs    *remote.Runs      // run storages of cloud clusters
	compute *clusters.Cluster // nodes of a run's own (resources { })
}

func artifactStore(dataDir string) *artifact.Store {
	return &artifact.Store{Objects: storeOf(dataDir)}
}

// trainingSpec is what a training block says, in the runtime's terms.
type trainingSpec struct {
	objective string
	dataset   string // the consumed dataset's address
	base      string // base model digest
	cluster   string // the cluster's address; empty: this machine
	sup       train.Spec
	rl        rl.Spec
	cmd       *commandSpec // a run block: the user's own program
}

func intAttr(v cty.Value, name string, def int) int {
	if f, ok := num(attr(v, name)); ok {
		return int(f)
	}
	return def
}

func floatAttr(v cty.Value, name string, def float64) float64 {
	if f, ok := num(attr(v, name)); ok {
		return f
	}
	return def
}

func parseTraining(v cty.Value) (trainingSpec, error) {
	ts := trainingSpec{objective: str(attr(v, "objective")), dataset: str(attr(v, "dataset")), base: str(attr(v, "base_model")), cluster: str(attr(v, "cluster"))}
	if r := attr(v, "run"); !r.IsNull() {
		var err error
		ts.cmd, err = parseCommand(v)
		return ts, err
	}
	if ts.objective == "" {
		ts.objective = "classification"
	}
	switch ts.objective {
	case "q_learning":
		envBlock := attr(v, "environment")
		if envBlock.IsNull() {
			return ts, errors.New(`objective "q_learning" needs an environment block (name = "frozen_lake", "cliff_walking" or "gridworld")`)
		}
		cfg := env.Config{Name: str(attr(envBlock, "name")), Size: intAttr(envBlock, "size", 0)}
		if s := attr(envBlock, "slippery"); !s.IsNull() {
			b := s.True()
			cfg.Slippery = &b
		}
		s := rl.Defaults(cfg)
		s.Episodes = intAttr(v, "episodes", s.Episodes)
		s.Discount = floatAttr(v, "discount", s.Discount)
		s.LearningRate = floatAttr(v, "learning_rate", s.LearningRate)
		s.Seed = int64(intAttr(v, "seed", int(s.Seed)))
		if e := attr(v, "epsilon"); !e.IsNull() {
			s.Epsilon.Start = floatAttr(e, "start", s.Epsilon.Start)
			s.Epsilon.End = floatAttr(e, "end", s.Epsilon.End)
			s.Epsilon.DecayEpisodes = intAttr(e, "decay_episodes", s.Epsilon.DecayEpisodes)
		}
		if ts.dataset != "" {
			return ts, errors.New(`objective "q_learning" learns from its environment: remove dataset`)
		}
		ts.rl = s
		return ts, rl.Check(s)
	case "classification", "regression":
	default:
		return ts, fmt.Errorf("objective %q: want classification, regression or q_learning", ts.objective)
	}
	if ts.dataset == "" {
		return ts, fmt.Errorf("objective %q needs dataset = dataset.NAME", ts.objective)
	}
	s := train.Spec{Objective: ts.objective, Epochs: intAttr(v, "epochs", 1), BatchSize: intAttr(v, "batch_size", 32), Seed: int64(intAttr(v, "seed", 1)), FreezeLayers: intAttr(v, "freeze_layers", 0)}
	if m := attr(v, "model_spec"); !m.IsNull() {
		s.Model = train.ModelSpec{Kind: str(attr(m, "kind")), Activation: str(attr(m, "activation")), Dropout: floatAttr(m, "dropout", 0)}
		if h := attr(m, "hidden"); !h.IsNull() {
			for it := h.ElementIterator(); it.Next(); {
				_, e := it.Element()
				f, _ := num(e)
				s.Model.Hidden = append(s.Model.Hidden, int(f))
			}
		}
	}
	if o := attr(v, "optimizer"); !o.IsNull() {
		s.Optimizer = train.OptimizerSpec{Name: str(attr(o, "name")), LearningRate: floatAttr(o, "learning_rate", 0), Momentum: floatAttr(o, "momentum", 0), WeightDecay: floatAttr(o, "weight_decay", 0)}
	}
	if e := attr(v, "early_stopping"); !e.IsNull() {
		s.EarlyStopping = &train.EarlyStopping{Metric: str(attr(e, "metric")), Patience: intAttr(e, "patience", 2)}
	}
	if s.Epochs < 1 {
		return ts, fmt.Errorf("epochs must be at least 1, got %d", s.Epochs)
	}
	if s.BatchSize < 1 {
		return ts, fmt.Errorf("batch_size must be at least 1, got %d", s.BatchSize)
	}
	if s.FreezeLayers > 0 && ts.base == "" {
		return ts, errors.New("freeze_layers needs base_model (the run whose weights are kept)")
	}
	ts.sup = s
	return ts, nil
}

// shapeOf is what a dataset's attributes tell of its shape before it is
// read; ok is false while they are unknown.
func shapeOf(ds cty.Value) (train.Shape, bool) {
	cols, classes := attr(ds, "columns"), attr(ds, "classes")
	if !cols.IsWhollyKnown() || cols.IsNull() || !classes.IsWhollyKnown() {
		return train.Shape{}, false
	}
	sh := train.Shape{Features: cols.LengthInt(), Classes: strList(classes)}
	if src := attr(ds, "source"); str(attr(src, "builtin")) == "mnist" {
		sh.ImageShape = []int{1, 28, 28}
	}
	return sh, true
}

// plannedTraining is the planned value of cfg: the built-in kernels have no
// outputs digest (only a run block's program has).
func plannedTraining(cfg cty.Value) cty.Value {
	var comp map[string]cty.Value
	if r := attr(cfg, "run"); r.IsKnown() && r.IsNull() {
		comp = map[string]cty.Value{"outputs": cty.NullVal(cty.String)}
	}
	return withComputed("training", cfg, comp)
}

// Plan checks everything that can be checked before work starts.
func (t *Training) Plan(ctx context.Context, req providers.PlanRequest) (providers.PlanResponse, error) {
	if onKubeRun(req.Env, req.Config) {
		return t.planKubeRun(req)
	}
	workdirChanged, err := workdirChanged(req)
	if err != nil {
		return providers.PlanResponse{Planned: plannedTraining(req.Config)}, err
	}
	if !req.Prior.IsNull() && sameArgs(req.Prior, req.Config) && !workdirChanged {
		return providers.PlanResponse{Planned: req.Prior}, nil
	}
	resp := providers.PlanResponse{Planned: plannedTraining(req.Config)}
	if workdirChanged && !req.Prior.IsNull() {
		resp.RequiresReplace = append(resp.RequiresReplace, cty.GetAttrPath("run"))
		resp.Reason = "the content of run.workdir changed"
	}
	if p, ok := parsePrivate(req.PriorPrivate); ok && req.Prior.IsNull() {
		resp.Detail = runningDetail(ctx, t.runs, req.Env, p)
		resp.Private = req.PriorPrivate
		resp.Reason = "is still running on " + p.Cluster + "; apply waits for it"
	}
	if !req.Prior.IsNull() {
		for _, name := range changedArgs(req.Prior, req.Config) {
			resp.RequiresReplace = append(resp.RequiresReplace, cty.GetAttrPath(name))
		}
	}
	if !req.Config.IsWhollyKnown() {
		return resp, nil
	}
	ts, err := parseTraining(req.Config)
	if err != nil {
		return resp, err
	}
	if err := planCompute(t.compute, req.Config, req.Env, &resp); err != nil {
		return resp, err
	}
	if ts.cmd != nil {
		d, err := planCommand(req, ts)
		resp.Detail = append(resp.Detail, d...)
		return resp, err
	}
	if ts.objective == "q_learning" {
		return resp, nil
	}
	var base *artifact.Model
	if ts.base != "" {
		base, err = artifactStore(req.Env.DataDir).Get(ctx, ts.base)
		if err != nil {
			return resp, fmt.Errorf("base_model: %w", err)
		}
	}
	if req.Env.Lookup != nil {
		if ds, ok := req.Env.Lookup(ts.dataset); ok {
			ps, fromSource := shapeFromSource(ctx, ds, req.Env)
			if fromSource {
				if w := pixelWarning(ts, ps); w != nil {
					resp.Warnings = append(resp.Warnings, w)
				}
			}
			if sh, ok := shapeOf(ds); ok {
				if err := train.Check(ts.sup, sh, base); err != nil {
					return resp, err
				}
			} else if fromSource {
				if err := checkTrainingInput(ts, ps, base); err != nil {
					return resp, err
				}
			}
		}
	}
	return resp, nil
}

// Apply trains (resuming from a checkpoint left by an interrupted run) and
// stores the model as a content-addressed artifact.
func (t *Training) Apply(ctx context.Context, req providers.ApplyRequest) (cty.Value, error) {
	if onKubeRun(req.Env, req.Planned) {
		return t.applyKubeRun(ctx, req)
	}
	ts, err := parseTraining(req.Planned)
	if err != nil {
		return cty.NilVal, err
	}
	if comp, ok, err := computeOf(req.Planned, req.Env); err != nil {
		return cty.NilVal, err
	} else if ok {
		return onCompute(ctx, t.runs, t.compute, req, comp, ts.cmd != nil, func(req providers.ApplyRequest, tg target) (cty.Value, error) {
			if ts.cmd != nil {
				return t.applyCommand(ctx, req, ts, tg)
			}
			return t.applyRemote(ctx, req, ts, tg)
		})
	}
	if tg, ok, err := targetOf(req.Env, ts.cluster); err != nil {
		return cty.NilVal, err
	} else if ok && isKube(tg) {
		return t.applyKube(ctx, req, ts, tg)
	} else if ok {
		// A lost node of the cluster is replaced and the run resumed.
		if err := recoverOn(ctx, t.runs, t.compute, &req, &tg); err != nil {
			return cty.NilVal, err
		}
		if ts.cmd != nil {
			return t.applyCommand(ctx, req, ts, tg)
		}
		return t.applyRemote(ctx, req, ts, tg)
	} else if ts.cmd != nil {
		return t.applyCommandLocal(ctx, req, ts)
	}
	run := runstore.Sub(storeOf(req.Env.DataDir), runPrefix(req.Address))
	dir := RunDir(req.Env.DataDir, req.Address)
	if err := prepareRun(ctx, run, req.Planned); err != nil {
		return cty.NilVal, err
	}
	logf, err := run.Append(ctx, trainLogKey)
	if err != nil {
		return cty.NilVal, fmt.Errorf("opening the run log: %w", err)
	}
	defer logf.Close()
	progress := io.Writer(logf)
	if req.Env.Progress != nil {
		progress = io.MultiWriter(logf, req.Env.Progress)
	}
	store := artifactStore(req.Env.DataDir)
	var digest string
	var metrics map[string]float64
	epochs := 0
	if ts.objective == "q_learning" {
		rm := runmetrics.Resume(dir, ts.objective, ts.rl.Episodes)
		res, err := rl.Run(ctx, ts.rl, rl.Options{Run: run, Progress: progress, OnProgress: func(p rl.Progress) {
			rm.AddEpisode(p)
			rm.Write(dir) // best effort: the curves are a view, the run goes on without them
		}})
		if err != nil {
			return cty.NilVal, err
		}
		rm.Done = true
		if err := rm.Write(dir); err != nil {
			return cty.NilVal, err
		}
		m, err := rl.Artifact(ts.rl, res)
		if err != nil {
			return cty.NilVal, err
		}
		if digest, err = store.Put(ctx, m); err != nil {
			return cty.NilVal, err
		}
		metrics, epochs = res.Metrics, ts.rl.Episodes
	} else {
		dsVal, ok := req.Env.Lookup(ts.dataset)
		if !ok {
			return cty.NilVal, fmt.Errorf("dataset %s is not in state: apply it first", ts.dataset)
		}
		spec, err := SpecFromValue(dsVal, req.Env.Dir)
		if err != nil {
			return cty.NilVal, err
		}
		ds, err := readCache(ctx, req.Env.DataDir, str(attr(dsVal, "digest")))
		if err != nil {
			fmt.Fprintf(logf, "loading %s\n", ts.dataset)
			if ds, err = data.Load(ctx, spec); err != nil {
				return cty.NilVal, fmt.Errorf("loading %s: %w", ts.dataset, err)
			}
			sub, err := subsetOf(dsVal)
			if err != nil {
				return cty.NilVal, err
			}
			if err := sub.apply(ds); err != nil {
				return cty.NilVal, err
			}
			ds.Digest = sub.digest(ds.Digest)
		} else {
			fmt.Fprintf(logf, "loaded %s from its processed cache\n", ts.dataset)
		}
		if want := str(attr(dsVal, "digest")); want != "" && want != ds.Digest {
			return cty.NilVal, fmt.Errorf("%s changed since it was applied (digest %s, state has %s): run plan again", ts.dataset, ds.Digest, want)
		}
		var base *artifact.Model
		if ts.base != "" {
			if base, err = store.Get(ctx, ts.base); err != nil {
				return cty.NilVal, fmt.Errorf("base_model: %w", err)
			}
		}
		// train.Run appends its own lines to the run's train.log.
		logf.Close()
		rm := runmetrics.Resume(dir, ts.objective, ts.sup.Epochs)
		rm.Epochs = nil // train.Run hands over the whole history, a resumed run's included
		res, err := train.Run(ctx, ts.sup, train.FromDataset(ds, ts.objective), base, train.Options{
			Run: run, Progress: req.Env.Progress, IsTTY: req.Env.ProgressTTY, Store: store,
			OnEpoch: func(h []train.EpochMetrics) {
				rm.Epochs = h
				rm.Write(dir) // best effort: the curves are a view, the run goes on without them
			},
		})
		if err != nil {
			return cty.NilVal, err
		}
		rm.Epochs, rm.Confusion, rm.Done = res.History, res.Confusion, true
		if res.Confusion != nil {
			rm.Labels = ds.Classes
		}
		if err := rm.Write(dir); err != nil {
			return cty.NilVal, err
		}
		digest, metrics, epochs = res.Digest, res.Metrics, res.EpochsCompleted
	}
	mv := map[string]cty.Value{}
	for k, v := range metrics {
		mv[k] = numVal(sig(v))
	}
	metricsVal := cty.MapValEmpty(cty.Number)
	if len(mv) > 0 {
		metricsVal = cty.MapVal(mv)
	}
	return withComputed("training", req.Planned, map[string]cty.Value{
		"model": cty.StringVal(digest), "metrics": metricsVal, "outputs": cty.NullVal(cty.String),
		"epochs_completed": numVal(float64(epochs)), "status": cty.StringVal("succeeded"),
	}), nil
}

// prepareRun keeps a run's objects (its checkpoints) when they belong to
// these arguments, and removes them when the arguments changed.
func prepareRun(ctx context.Context, run runstore.Store, planned cty.Value) error {
	b, err := json.Marshal(argsOnly(planned))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	id := hex.EncodeToString(sum[:])
	if prev, err := runstore.ReadAll(ctx, run, specMarkerKey); err == nil && strings.TrimSpace(string(prev)) != id {
		if err := runstore.DeletePrefix(ctx, run, ""); err != nil {
			return fmt.Errorf("clearing the old run directory: %w", err)
		}
	}
	if err := runstore.PutBytes(ctx, run, specMarkerKey, []byte(id+"\n")); err != nil {
		return fmt.Errorf("creating the run directory: %w", err)
	}
	return nil
}

// argsOnly renders the arguments (not computed attributes) as JSON-friendly values.
func argsOnly(v cty.Value) map[string]string {
	out := map[string]string{}
	for name, a := range v.AsValueMap() {
		switch name {
		case "model", "metrics", "epochs_completed", "status", "outputs":
			continue
		}
		if a.IsNull() || !a.IsWhollyKnown() {
			continue
		}
		out[name] = a.GoString()
	}
	return out
}

// Read reports the training gone when its model artifact is missing.
func (t *Training) Read(ctx context.Context, req providers.ReadRequest) (cty.Value, error) {
	digest := str(attr(req.Current, "model"))
	if digest == "" {
		return req.Current, nil
	}
	ok, err := artifactStore(req.Env.DataDir).Has(ctx, digest)
	if err == nil && !ok {
		return cty.NullVal(req.Current.Type()), nil
	}
	return req.Current, nil
}

// Delete removes the run's objects (its directory). Model artifacts are
// content-addressed and may be shared by other runs; they stay in
// .lepton/artifacts.
func (t *Training) Delete(ctx context.Context, req providers.DeleteRequest) error {
	if p, ok := parsePrivate(req.Private); ok && p.Kube != nil {
		if err := deleteKube(ctx, *p.Kube, req.Address, req.Env.Lineage); err != nil {
			return err
		}
	} else if ok {
		if err := deleteRemoteRun(ctx, t.runs, t.compute, req.Env, p); err != nil {
			return err
		}
	}
	if err := runstore.DeletePrefix(ctx, storeOf(req.Env.DataDir), runPrefix(req.Address)); err != nil {
		return fmt.Errorf("removing the run directory: %w", err)
	}
	return nil
}
