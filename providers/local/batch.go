package local

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/clusters"
	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/data"
	"github.com/leptonml/lepton/runtime/serve/batch"
	"github.com/zclconf/go-cty/cty"
)

// BatchInference scores every row of a dataset with a model and writes the
// predictions as CSV in one streaming pass, to a file or an object, here
// or on node 0 of a cloud cluster (remote_batch.go).
type BatchInference struct {
	runs    *remote.Runs      // run storages of cloud clusters
	compute *clusters.Cluster // nodes of a run's own (resources { })
}

func (b *BatchInference) Plan(ctx context.Context, req providers.PlanRequest) (providers.PlanResponse, error) {
	if !req.Prior.IsNull() && sameArgs(req.Prior, req.Config) {
		return providers.PlanResponse{Planned: req.Prior}, nil
	}
	resp := providers.PlanResponse{Planned: withComputed("batch_inference", req.Config, nil)}
	if p, ok := parsePrivate(req.PriorPrivate); ok && req.Prior.IsNull() {
		resp.Detail = runningDetail(ctx, b.runs, req.Env, p)
		resp.Private = req.PriorPrivate
		resp.Reason = "is still running on " + p.Cluster + "; apply waits for it"
	}
	for _, name := range changedArgs(req.Prior, req.Config) {
		resp.RequiresReplace = append(resp.RequiresReplace, cty.GetAttrPath(name))
	}
	// Before its training ran, the model is unknown: the offer does not
	// depend on it and is shown all the same.
	if err := planCompute(b.compute, req.Config, req.Env, &resp); err != nil {
		return resp, err
	}
	if out := attr(req.Config, "output"); out.IsKnown() && !out.IsNull() {
		if _, err := parseOutput(out.AsString(), req.Env.Dir); err != nil {
			return resp, providers.ArgErrorf("output", "%v", err)
		}
	}
	if m := str(attr(req.Config, "model")); m != "" {
		model, err := artifactStore(req.Env.DataDir).Get(ctx, m)
		if err != nil {
			return resp, fmt.Errorf("model: %w", err)
		}
		if err := checkBatchColumns(ctx, model, str(attr(req.Config, "dataset")), req.Env); err != nil {
			return resp, err
		}
	}
	return resp, nil
}

func (b *BatchInference) output(v cty.Value, env providers.Env) (batchOutput, error) {
	return parseOutput(str(attr(v, "output")), env.Dir)
}

func (b *BatchInference) Apply(ctx context.Context, req providers.ApplyRequest) (cty.Value, error) {
	out, err := b.output(req.Planned, req.Env)
	if err != nil {
		return cty.NilVal, err
	}
	if comp, ok, err := computeOf(req.Planned, req.Env); err != nil {
		return cty.NilVal, err
	} else if ok {
		return onCompute(ctx, b.runs, b.compute, req, comp, false, func(req providers.ApplyRequest, tg target) (cty.Value, error) {
			return b.applyRemote(ctx, req, out, tg)
		})
	}
	if tg, ok, err := targetOf(req.Env, str(attr(req.Planned, "cluster"))); err != nil {
		return cty.NilVal, err
	} else if ok && isKube(tg) {
		return b.applyKube(ctx, req, out, tg)
	} else if ok {
		// A lost node of the cluster is replaced and the run started again.
		if err := recoverOn(ctx, b.runs, b.compute, &req, &tg); err != nil {
			return cty.NilVal, err
		}
		return b.applyRemote(ctx, req, out, tg)
	}
	model, err := artifactStore(req.Env.DataDir).Get(ctx, str(attr(req.Planned, "model")))
	if err != nil {
		return cty.NilVal, fmt.Errorf("model: %w", err)
	}
	dsAddr := str(attr(req.Planned, "dataset"))
	ds, err := loadBatchRows(ctx, req.Env, dsAddr, model)
	if err != nil {
		return cty.NilVal, err
	}
	var res batch.Result
	digest, err := out.write(ctx, req.Env, func(w io.Writer) error {
		var err error
		res, err = batch.Score(ctx, model, batch.FromDataset(ds), w, batch.Options{})
		if err != nil {
			return fmt.Errorf("scoring %s: %w", dsAddr, err)
		}
		return nil
	})
	if err != nil {
		return cty.NilVal, err
	}
	if digest != res.Digest {
		return cty.NilVal, fmt.Errorf("writing %s: %s were scored, but %s written", out, res.Digest, digest)
	}
	return withComputed("batch_inference", req.Planned, map[string]cty.Value{
		"rows": numVal(float64(res.Rows)), "digest": cty.StringVal(res.Digest),
	}), nil
}

// loadBatchRows reads the rows of the dataset at dsAddr raw, every split
// together: the model applies its own preprocessing (from its training
// data) to raw rows. The rows must have the model's columns.
func loadBatchRows(ctx context.Context, env providers.Env, dsAddr string, model *artifact.Model) (*data.Dataset, error) {
	dsVal, ok := env.Lookup(dsAddr)
	if !ok {
		return nil, fmt.Errorf("dataset %s is not in state: apply it first", dsAddr)
	}
	spec, err := SpecFromValue(dsVal, env.Dir)
	if err != nil {
		return nil, err
	}
	spec.Preprocess.Normalize = "none"
	spec.Preprocess.Augment = nil
	spec.Split = nil
	ds, err := data.Load(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", dsAddr, err)
	}
	if len(model.Features) > 0 && !slices.Equal(model.Features, ds.Columns) {
		return nil, fmt.Errorf("%s has the columns %s, but the model was trained on %s", dsAddr, elide(ds.Columns), elide(model.Features))
	}
	return ds, nil
}

func elide(ss []string) string {
	if len(ss) > 6 {
		return fmt.Sprintf("[%s, … %d more]", strings.Join(ss[:6], ", "), len(ss)-6)
	}
	return "[" + strings.Join(ss, ", ") + "]"
}

// Read reports the output gone when the file or object is missing or no
// longer what was written: the next plan writes it again.
func (b *BatchInference) Read(ctx context.Context, req providers.ReadRequest) (cty.Value, error) {
	out, err := b.output(req.Current, req.Env)
	if err != nil {
		return req.Current, err
	}
	sum, found, err := out.digest(ctx, req.Env)
	if err != nil {
		return req.Current, err
	}
	if !found || sum != str(attr(req.Current, "digest")) {
		return cty.NullVal(req.Current.Type()), nil
	}
	return req.Current, nil
}

// Delete removes the output and, for a run on a cluster, the run's objects.
func (b *BatchInference) Delete(ctx context.Context, req providers.DeleteRequest) error {
	if p, ok := parsePrivate(req.Private); ok && p.Kube != nil {
		if err := deleteKube(ctx, *p.Kube, req.Address, req.Env.Lineage); err != nil {
			return err
		}
	} else if ok {
		if err := deleteRemoteRun(ctx, b.runs, b.compute, req.Env, p); err != nil {
			return err
		}
	}
	out, err := b.output(req.Current, req.Env)
	if err != nil {
		return err
	}
	return out.remove(ctx, req.Env)
}
