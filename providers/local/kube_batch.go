package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/leptonml/lepton/internal/ociimage"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/clusters"
	"github.com/leptonml/lepton/providers/kubernetes"
	"github.com/leptonml/lepton/runtime/data/dscache"
	"github.com/zclconf/go-cty/cty"
)

// applyKube scores the rows in a Job of one pod in lepton's image (the
// model and the raw rows as its inputs layer), fetches the predictions
// through a port-forward and writes them to the output, as a local run
// does; or waits again for the Job an interrupted apply started.
func (b *BatchInference) applyKube(ctx context.Context, req providers.ApplyRequest, out batchOutput, tg target) (cty.Value, error) {
	kt, c, p, resumed, err := kubeResume(ctx, req, tg)
	if err != nil {
		return cty.NilVal, err
	}
	logf := logger(req.Env)
	if !resumed {
		if p, err = b.startKube(ctx, req, tg, kt, c); err != nil {
			return cty.NilVal, err
		}
	}
	res, preds, _, err := waitKubeJob(ctx, req.Env, c, *p.Kube, req.Address, true)
	if err != nil {
		if ctx.Err() != nil {
			return cty.NilVal, err
		}
		return cty.NilVal, fmt.Errorf("batch inference on %s: %w", tg.address, err)
	}
	digest, err := out.write(ctx, req.Env, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(preds))
		return err
	})
	if err != nil {
		return cty.NilVal, err
	}
	if digest != res.Model {
		out.remove(context.WithoutCancel(ctx), req.Env)
		return cty.NilVal, fmt.Errorf("writing %s: %s were scored, but %s written", out, res.Model, digest)
	}
	logf("run %s succeeded: %d rows to %s", p.Run, res.Rows, out)
	return withComputed("batch_inference", req.Planned, map[string]cty.Value{
		"rows": numVal(float64(res.Rows)), "digest": cty.StringVal(digest),
	}), nil
}

func (b *BatchInference) startKube(ctx context.Context, req providers.ApplyRequest, tg target, kt kubeTarget, c *kubernetes.Client) (runPrivate, error) {
	digest := str(attr(req.Planned, "model"))
	store := artifactStore(req.Env.DataDir)
	model, err := store.Get(ctx, digest)
	if err != nil {
		return runPrivate{}, fmt.Errorf("model: %w", err)
	}
	mb, err := store.GetEncoded(ctx, digest)
	if err != nil {
		return runPrivate{}, fmt.Errorf("model: %w", err)
	}
	ds, err := loadBatchRows(ctx, req.Env, str(attr(req.Planned, "dataset")), model)
	if err != nil {
		return runPrivate{}, err
	}
	var rows bytes.Buffer
	if err := dscache.Encode(&rows, ds); err != nil {
		return runPrivate{}, err
	}
	pr := kubernetes.PodRun{Address: req.Address, Batch: true, Model: "model.lmodel", Dataset: "rows.bin"}
	rb, err := json.Marshal(pr)
	if err != nil {
		return runPrivate{}, err
	}
	bin, err := leptonBinary()
	if err != nil {
		return runPrivate{}, err
	}
	start := time.Now()
	ref, err := kubernetes.PushRunImage(ctx, bin, kt.registry, leptonVersion(), []ociimage.File{
		{Path: kubernetes.InputDir + "/" + pr.Model, Data: mb, Mode: 0o644},
		{Path: kubernetes.InputDir + "/" + pr.Dataset, Data: rows.Bytes(), Mode: 0o644},
		{Path: kubernetes.RunFile, Data: rb, Mode: 0o644},
	}, kt.run.Name)
	if err != nil {
		return runPrivate{}, err
	}
	logger(req.Env)("pushed %s (%s)", ref, time.Since(start).Round(time.Millisecond))
	kr := kt.run
	kr.Image = ref
	p := runPrivate{Run: newRunID(req.Address), Cluster: tg.address, Cloud: clusters.Kubernetes, Nodes: []int{0}, Started: nowUTC(), Kube: &kr}
	if err := deleteKube(ctx, kr, req.Address, req.Env.Lineage); err != nil {
		return p, fmt.Errorf("removing the previous run's Job: %w", err)
	}
	if req.Record != nil {
		if err := req.Record(ctx, p.bytes()); err != nil {
			return p, err
		}
	}
	// An Indexed Job of one: the same pod naming, readiness and result
	// fetch as a built-in training.
	objs, err := kubernetes.TrainingJob(kubernetes.Training{
		Meta: kr.meta(req.Address, req.Env.Lineage),
		Container: kubernetes.Container{
			Image:   ref,
			Command: []string{kubernetes.LeptonBinary, "internal-kube-run", "train", kubernetes.RunFile},
			GPUs:    kt.gpus, GPUProducts: kt.products, ServiceAccount: kubernetes.ServiceAccountName,
		},
		RunID: p.Run, Nodes: 1,
	})
	if err != nil {
		return p, err
	}
	withResultProbe(objs)
	if err := applyTrainingObjects(ctx, c, objs); err != nil {
		return p, err
	}
	logger(req.Env)("started Job %s/%s (run %s)", kr.Namespace, kr.Name, p.Run)
	return p, nil
}
