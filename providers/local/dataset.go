package local

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/runtime/data"
	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/zclconf/go-cty/cty"
)

// Dataset reads and processes a dataset on this machine. Its digest is
// computed at plan time from the source content and the spec, so a changed
// file is an update of the dataset (and a reason to replace its consumers).
type Dataset struct {
	// schema is the dataset kind's schema, built once (lang.Schemas builds
	// every kind's on each call; Plan and Apply run once per dataset).
	schema *lang.KindSchema
}

func (d *Dataset) kindSchema() *lang.KindSchema {
	if d.schema == nil {
		return lang.Schemas()["dataset"]
	}
	return d.schema
}

// SpecFromValue converts a dataset's arguments to the data engine's spec.
func SpecFromValue(v cty.Value, dir string) (data.Spec, error) {
	spec := data.Spec{BaseDir: dir}
	src := attr(v, "source")
	spec.Source.Builtin = str(attr(src, "builtin"))
	spec.Source.File = str(attr(src, "file"))
	spec.Source.URL = str(attr(src, "url"))
	spec.Source.Object = str(attr(src, "object"))
	if h := attr(src, "headers"); !h.IsNull() && h.IsKnown() {
		spec.Source.Headers = map[string]string{}
		for k, hv := range h.AsValueMap() {
			spec.Source.Headers[k] = str(hv)
		}
	}
	if t := str(attr(src, "timeout")); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil {
			return spec, fmt.Errorf("source.timeout %q: %w", t, err)
		}
		spec.Source.Timeout = d
	}
	if q := attr(src, "sql"); !q.IsNull() {
		spec.Source.SQL = &data.SQL{Driver: str(attr(q, "driver")), DSN: str(attr(q, "dsn")), Query: str(attr(q, "query")), VersionQuery: str(attr(q, "version_query"))}
	}
	if l := attr(src, "log"); !l.IsNull() {
		spec.Source.Log = &data.Log{Path: str(attr(l, "path")), Pattern: str(attr(l, "pattern"))}
	}
	if in := attr(src, "inline"); !in.IsNull() {
		cols, err := inlineColumns(in)
		if err != nil {
			return spec, err
		}
		spec.Source.Inline = cols
	}
	spec.Format = str(attr(v, "format"))
	spec.Label = str(attr(v, "label"))
	spec.Features = strList(attr(v, "features"))
	if p := attr(v, "preprocess"); !p.IsNull() {
		spec.Preprocess = data.Preprocess{Missing: str(attr(p, "missing")), Normalize: str(attr(p, "normalize")), Encode: str(attr(p, "encode"))}
		if a := attr(p, "anomalies"); !a.IsNull() {
			th, _ := num(attr(a, "threshold"))
			spec.Preprocess.Anomalies = &data.Anomalies{Method: str(attr(a, "method")), Threshold: th, Action: str(attr(a, "action"))}
		}
		if a := attr(p, "augment"); !a.IsNull() {
			sd, _ := num(attr(a, "noise_stddev"))
			c, _ := num(attr(a, "copies"))
			spec.Preprocess.Augment = &data.Augment{NoiseStddev: sd, Copies: int(c)}
		}
	}
	if s := attr(v, "split"); !s.IsNull() {
		tr, _ := num(attr(s, "train"))
		va, _ := num(attr(s, "validation"))
		te, _ := num(attr(s, "test"))
		seed, _ := num(attr(s, "seed"))
		strat := attr(s, "stratify")
		spec.Split = &data.Split{Train: tr, Validation: va, Test: te, Seed: int64(seed), Stratify: !strat.IsNull() && strat.True()}
	}
	return spec, nil
}

// inlineColumns reads `inline = { x = [1, 2], y = ["a", "b"] }`.
func inlineColumns(v cty.Value) (map[string][]any, error) {
	ty := v.Type()
	if !(ty.IsObjectType() || ty.IsMapType()) {
		return nil, fmt.Errorf("source.inline must be an object of columns, like { x = [1, 2], y = [0, 1] }, not %s", ty.FriendlyName())
	}
	out := map[string][]any{}
	for name, col := range v.AsValueMap() {
		cty := col.Type()
		if !(cty.IsListType() || cty.IsTupleType() || cty.IsSetType()) {
			return nil, fmt.Errorf("source.inline.%s must be a list of values", name)
		}
		var vals []any
		for it := col.ElementIterator(); it.Next(); {
			_, e := it.Element()
			switch {
			case e.IsNull():
				vals = append(vals, nil)
			case e.Type().Equals(ctyNumber):
				f, _ := e.AsBigFloat().Float64()
				vals = append(vals, f)
			case e.Type().Equals(ctyString):
				vals = append(vals, e.AsString())
			case e.Type().Equals(ctyBool):
				vals = append(vals, e.True())
			default:
				return nil, fmt.Errorf("source.inline.%s holds %s; columns hold numbers, strings, bools or null", name, e.Type().FriendlyName())
			}
		}
		out[name] = vals
	}
	return out, nil
}

var (
	ctyNumber = cty.Number
	ctyString = cty.String
	ctyBool   = cty.Bool
)

func (d *Dataset) spec(v cty.Value, env providers.Env) (data.Spec, error) {
	spec, err := SpecFromValue(v, env.Dir)
	if err != nil {
		return spec, err
	}
	if err := spec.Validate(); err != nil {
		return spec, err
	}
	return spec, nil
}

// Plan computes the digest (reading the source) and plans an update when it,
// or any argument, changed.
func (d *Dataset) Plan(ctx context.Context, req providers.PlanRequest) (providers.PlanResponse, error) {
	if !req.Config.IsWhollyKnown() {
		return providers.PlanResponse{Planned: withSchema(d.kindSchema(), req.Config, nil)}, nil
	}
	// An inline source's digest is a function of the arguments alone: with
	// the arguments as applied, the digest is the one in state, and reading
	// the source again (10,000 times in a large configuration) tells nothing.
	if !req.Prior.IsNull() && !attr(attr(req.Config, "source"), "inline").IsNull() &&
		str(req.Prior.GetAttr("digest")) != "" && sameArgs(req.Prior, req.Config) {
		return providers.PlanResponse{Planned: req.Prior, Unchanged: true}, nil
	}
	spec, err := d.spec(req.Config, req.Env)
	if err != nil {
		return providers.PlanResponse{}, err
	}
	spec.Options.HashCache = hashCacheDir(req.Env.DataDir)
	digest, header, err := data.Inspect(ctx, spec)
	if err != nil {
		return providers.PlanResponse{}, err
	}
	if err := checkDatasetColumns(spec, header); err != nil {
		return providers.PlanResponse{}, err
	}
	sub, err := subsetOf(req.Config)
	if err != nil {
		return providers.PlanResponse{}, err
	}
	digest = sub.digest(digest)
	if !req.Prior.IsNull() && sameArgs(req.Prior, req.Config) && str(req.Prior.GetAttr("digest")) == digest {
		return providers.PlanResponse{Planned: req.Prior, Unchanged: true}, nil
	}
	planned := withSchema(d.kindSchema(), req.Config, map[string]cty.Value{"digest": cty.StringVal(digest)})
	resp := providers.PlanResponse{Planned: planned}
	if !req.Prior.IsNull() && str(req.Prior.GetAttr("digest")) != digest && sameArgs(req.Prior, req.Config) {
		resp.Reason = "the source content changed"
	}
	return resp, nil
}

// Apply loads the dataset in one streaming pass and records its summary.
func (d *Dataset) Apply(ctx context.Context, req providers.ApplyRequest) (cty.Value, error) {
	spec, err := d.spec(req.Planned, req.Env)
	if err != nil {
		return cty.NilVal, err
	}
	ds, err := data.Load(ctx, spec)
	if err != nil {
		return cty.NilVal, err
	}
	sub, err := subsetOf(req.Planned)
	if err != nil {
		return cty.NilVal, err
	}
	if err := sub.apply(ds); err != nil {
		return cty.NilVal, err
	}
	ds.Digest = sub.digest(ds.Digest)
	if want := str(req.Planned.GetAttr("digest")); want != "" && ds.Digest != want {
		return cty.NilVal, fmt.Errorf("the source changed between plan and apply (digest %s, planned %s): run plan again", ds.Digest, want)
	}
	// An inline dataset's report is rebuilt by `lepton show` (Report) in
	// less time than writing a file per dataset takes (a configuration of
	// 10,000 inline datasets spent half its apply creating report files).
	if spec.Source.Inline == nil {
		if err := writeReport(ctx, req.Env.DataDir, ds); err != nil {
			return cty.NilVal, err
		}
		if err := writeProfile(req.Env.DataDir, ds); err != nil {
			return cty.NilVal, err
		}
	}
	if req.Env.DataDir != "" && ds.Train.N*ds.Train.D > cacheMinValues {
		if err := writeCache(ctx, req.Env.DataDir, ds); err != nil {
			return cty.NilVal, fmt.Errorf("caching the processed dataset: %w", err)
		}
	}
	return withSchema(d.kindSchema(), req.Planned, summaryValues(ds)), nil
}

// Report is the processing report of an applied dataset, as `lepton show
// dataset.NAME` prints it: the file written at apply, or, for an inline
// dataset, the report of loading it again. ok is false when there is none.
func Report(ctx context.Context, dir, dataDir string, attrs cty.Value) (report string, ok bool, err error) {
	digest := str(attr(attrs, "digest"))
	if digest == "" {
		return "", false, nil
	}
	if b, err := runstore.ReadAll(ctx, storeOf(dataDir), reportKey(digest)); err == nil {
		return string(b), true, nil
	}
	spec, err := SpecFromValue(attrs, dir)
	if err != nil || spec.Source.Inline == nil {
		return "", false, err
	}
	ds, err := data.Load(ctx, spec)
	if err != nil {
		return "", false, err
	}
	sub, err := subsetOf(attrs)
	if err != nil {
		return "", false, err
	}
	if err := sub.apply(ds); err != nil {
		return "", false, err
	}
	var b strings.Builder
	if err := ds.Describe(&b); err != nil {
		return "", false, err
	}
	return b.String(), true, nil
}

// reportKey is where `lepton show dataset.NAME` finds a dataset's report.
func reportKey(digest string) string {
	return "datasets/" + strings.TrimPrefix(digest, "sha256:") + ".txt"
}

func writeReport(ctx context.Context, dataDir string, ds *data.Dataset) error {
	if dataDir == "" {
		return nil
	}
	s, key := storeOf(dataDir), reportKey(ds.Digest)
	if ok, _ := runstore.Exists(ctx, s, key); ok {
		return nil
	}
	var b strings.Builder
	if err := ds.Describe(&b); err != nil {
		return err
	}
	// Two datasets with the same content share a report; Put replaces it
	// whole, so either write leaves a whole report.
	if err := runstore.PutBytes(ctx, s, key, []byte(b.String())); err != nil {
		return fmt.Errorf("writing dataset report: %w", err)
	}
	return nil
}

func summaryValues(ds *data.Dataset) map[string]cty.Value {
	schema := map[string]cty.Value{}
	for k, v := range ds.Schema {
		schema[k] = cty.StringVal(v)
	}
	stats := map[string]cty.Value{}
	names := make([]string, 0, len(ds.Stats))
	for n := range ds.Stats {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := ds.Stats[n]
		m := map[string]cty.Value{"count": numVal(float64(s.Count)), "missing": numVal(float64(s.Missing))}
		if s.Type != "string" && s.Count > 0 {
			// Values were read as float32: 7 significant digits is what they hold.
			m["mean"], m["std"], m["min"], m["max"] = numVal(sig(s.Mean)), numVal(sig(s.Std)), numVal(sig(s.Min)), numVal(sig(s.Max))
		}
		stats[n] = cty.MapVal(m)
	}
	schemaV := cty.MapValEmpty(cty.String)
	if len(schema) > 0 {
		schemaV = cty.MapVal(schema)
	}
	statsV := cty.MapValEmpty(cty.Map(cty.Number))
	if len(stats) > 0 {
		statsV = cty.MapVal(stats)
	}
	return map[string]cty.Value{
		"digest":       cty.StringVal(ds.Digest),
		"rows":         numVal(float64(ds.Rows)),
		"dropped_rows": numVal(float64(ds.DroppedRows)),
		"columns":      strListVal(ds.Columns),
		"schema":       schemaV,
		"classes":      strListVal(ds.Classes),
		"stats":        statsV,
	}
}

func sig(x float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 7, 64), 64)
	return f
}

// cacheMinValues: smaller datasets are quicker to process again than to cache.
const cacheMinValues = 1 << 16

// Read returns the dataset as recorded: its content is checked at plan time.
func (d *Dataset) Read(_ context.Context, req providers.ReadRequest) (cty.Value, error) {
	return req.Current, nil
}

// DeterminedByArgs: an inline dataset's content is its source argument.
func (d *Dataset) DeterminedByArgs(config cty.Value) bool {
	return !attr(attr(config, "source"), "inline").IsNull()
}

// ReadsCurrent: a dataset's drift is a changed digest, found by Plan.
func (d *Dataset) ReadsCurrent() bool { return true }

// Delete removes the dataset's report and cache; the source itself is the user's.
func (d *Dataset) Delete(ctx context.Context, req providers.DeleteRequest) error {
	if dg := str(attr(req.Current, "digest")); dg != "" && req.Env.DataDir != "" {
		s := storeOf(req.Env.DataDir)
		for _, k := range []string{reportKey(dg), cacheKey(dg)} {
			if err := s.Delete(ctx, k); err != nil {
				return fmt.Errorf("removing dataset files: %w", err)
			}
		}
		// The profile is written beside them, outside the store (a view).
		for _, p := range []string{ProfilePath(req.Env.DataDir, dg)} {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("removing dataset files: %w", err)
			}
		}
	}
	return nil
}
