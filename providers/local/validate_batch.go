package local

import (
	"context"
	"slices"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/runtime/artifact"
)

// checkBatchColumns says, at plan time, whether the dataset's rows have the
// model's input columns: from its columns in state when it is applied, from
// its source's header when every feature column is numeric (and so is one
// input column each).
func checkBatchColumns(ctx context.Context, model *artifact.Model, dsAddr string, env providers.Env) error {
	if len(model.Features) == 0 || env.Lookup == nil || dsAddr == "" {
		return nil
	}
	ds, ok := env.Lookup(dsAddr)
	if !ok {
		return nil
	}
	var cols []string
	if c := attr(ds, "columns"); c.IsWhollyKnown() && !c.IsNull() {
		cols = strList(c)
	} else if ps, ok := shapeFromSource(ctx, ds, env); ok && ps.exact {
		cols = ps.spec.FeatureColumns(ps.header)
	} else {
		return nil
	}
	if slices.Equal(cols, model.Features) {
		return nil
	}
	return providers.ArgErrorf("dataset", "%s has the columns %s, but the model takes %s: %s", dsAddr, elide(cols), elide(model.Features), columnDiff(cols, model.Features))
}

// columnDiff names what is missing and what is extra, or says the order differs.
func columnDiff(have, want []string) string {
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			missing = append(missing, w)
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) {
			extra = append(extra, h)
		}
	}
	switch {
	case len(missing) > 0 && len(extra) > 0:
		return "missing " + elide(missing) + ", not taken " + elide(extra)
	case len(missing) > 0:
		return "missing " + elide(missing)
	case len(extra) > 0:
		return "not taken " + elide(extra)
	}
	return "the same columns in another order"
}
