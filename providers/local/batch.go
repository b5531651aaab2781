package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/runtime/data"
	"github.com/leptonml/lepton/runtime/serve/batch"
	"github.com/zclconf/go-cty/cty"

	"github.com/leptonml/lepton/internal/fsutil"
)

// BatchInference scores every row of a dataset with a model and writes the
// predictions to a CSV file in one streaming pass.
type BatchInference struct{}

func (b *BatchInference) Plan(ctx context.Context, req providers.PlanRequest) (providers.PlanResponse, error) {
	if !req.Prior.IsNull() && sameArgs(req.Prior, req.Config) {
		return providers.PlanResponse{Planned: req.Prior}, nil
	}
	resp := providers.PlanResponse{Planned: withComputed("batch_inference", req.Config, nil)}
	for _, name := range changedArgs(req.Prior, req.Config) {
		resp.RequiresReplace = append(resp.RequiresReplace, cty.GetAttrPath(name))
	}
	if out := str(attr(req.Config, "output")); strings.Contains(out, "://") {
		return resp, fmt.Errorf("output %q: writing predictions to object storage is not available yet; use a local path", out)
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

func (b *BatchInference) outputPath(v cty.Value, env providers.Env) string {
	p := str(attr(v, "output"))
	if !filepath.IsAbs(p) {
		p = filepath.Join(env.Dir, p)
	}
	return p
}

func (b *BatchInference) Apply(ctx context.Context, req providers.ApplyRequest) (cty.Value, error) {
	model, err := artifactStore(req.Env.DataDir).Get(ctx, str(attr(req.Planned, "model")))
	if err != nil {
		return cty.NilVal, fmt.Errorf("model: %w", err)
	}
	dsAddr := str(attr(req.Planned, "dataset"))
	dsVal, ok := req.Env.Lookup(dsAddr)
	if !ok {
		return cty.NilVal, fmt.Errorf("dataset %s is not in state: apply it first", dsAddr)
	}
	spec, err := SpecFromValue(dsVal, req.Env.Dir)
	if err != nil {
		return cty.NilVal, err
	}
	// The model applies its own preprocessing (from its training data) to
	// raw rows: read this dataset's rows raw, every split together.
	spec.Preprocess.Normalize = "none"
	spec.Preprocess.Augment = nil
	spec.Split = nil
	ds, err := data.Load(ctx, spec)
	if err != nil {
		return cty.NilVal, fmt.Errorf("loading %s: %w", dsAddr, err)
	}
	if len(model.Features) > 0 && !slices.Equal(model.Features, ds.Columns) {
		return cty.NilVal, fmt.Errorf("%s has the columns %s, but the model was trained on %s", dsAddr, elide(ds.Columns), elide(model.Features))
	}
	out := b.outputPath(req.Planned, req.Env)
	// NoSync, as before: the output is rebuilt by the next apply when lost,
	// and an fsync of a large file would slow every batch run.
	var res batch.Result
	err = fsutil.Write(out, 0o600, fsutil.Options{NoSync: true, MkdirAll: true}, func(w io.Writer) error {
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
	return withComputed("batch_inference", req.Planned, map[string]cty.Value{
		"rows": numVal(float64(res.Rows)), "digest": cty.StringVal(res.Digest),
	}), nil
}

func elide(ss []string) string {
	if len(ss) > 6 {
		return fmt.Sprintf("[%s, … %d more]", strings.Join(ss[:6], ", "), len(ss)-6)
	}
	return "[" + strings.Join(ss, ", ") + "]"
}

// Read reports the output gone when the file is missing or no longer what
// was written.
func (b *BatchInference) Read(_ context.Context, req providers.ReadRequest) (cty.Value, error) {
	f, err := os.Open(b.outputPath(req.Current, req.Env))
	if errors.Is(err, os.ErrNotExist) {
		return cty.NullVal(req.Current.Type()), nil
	}
	if err != nil {
		return req.Current, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return req.Current, err
	}
	if "sha256:"+hex.EncodeToString(h.Sum(nil)) != str(attr(req.Current, "digest")) {
		return cty.NullVal(req.Current.Type()), nil
	}
	return req.Current, nil
}

func (b *BatchInference) Delete(_ context.Context, req providers.DeleteRequest) error {
	if err := os.Remove(b.outputPath(req.Current, req.Env)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
