package data

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/leptonml/lepton/runtime/builtin"
	"github.com/leptonml/lepton/runtime/data/source"
)

// builtinVersion stands in for the content of builtin datasets: they are
// embedded in the binary and change only with this constant.
const builtinVersion = "1"

func (s Spec) options() source.Options {
	o := s.Options
	o.BaseDir, o.Format = s.BaseDir, s.Format
	return o
}

// freeOSMemoryValues is the size of a read (rows x columns) from which the
// reading's garbage is returned to the OS before the matrices are built.
const freeOSMemoryValues = 1 << 22

// Fingerprint is the plan-time digest, "sha256:<hex>" over the source content
// (or the SQL version_query result, the object's ETag/generation/MD5) and the
// canonical spec. It reads as little as it can and parses nothing it need not.
func Fingerprint(ctx context.Context, spec Spec) (string, error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	var content string
	if spec.Source.Builtin != "" {
		if !isBuiltin(spec.Source.Builtin) {
			return "", fmt.Errorf("source: unknown builtin dataset %q (built in: %v)", spec.Source.Builtin, builtin.Names())
		}
		content = "builtin:" + spec.Source.Builtin + ":" + builtinVersion
	} else {
		var err error
		if content, err = source.Fingerprint(ctx, spec.Source, spec.options()); err != nil {
			return "", err
		}
	}
	return combine(content, spec.canonicalSpec()), nil
}

func isBuiltin(name string) bool {
	for _, n := range builtin.Names() {
		if n == name {
			return true
		}
	}
	return false
}

// Load reads the source in one pass and runs the preprocessing. The digest it
// returns is computed from the bytes it read, so it equals the plan-time
// Fingerprint when the source did not change in between.
func Load(ctx context.Context, spec Spec) (*Dataset, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	desc := spec.Source.Describe()
	if spec.Source.Builtin != "" {
		return loadBuiltin(ctx, spec)
	}
	r, err := source.Open(ctx, spec.Source, spec.options())
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var keep func(string) bool
	if len(spec.Features) > 0 {
		want := map[string]bool{spec.Label: true}
		for _, f := range spec.Features {
			want[f] = true
		}
		keep = func(n string) bool { return want[n] }
	}
	f := newFrame(keep)
	if err := readAll(ctx, r, f); err != nil {
		return nil, err
	}
	// Collect the reading's garbage (parse buffers) and hand it back to the OS
	// before the matrices are allocated, so the peak is the columns plus the
	// output rather than that plus a GC cycle's slack. The columns hold no
	// pointers: this costs a few milliseconds — but it is a whole GC of the
	// process's heap, so only worth it for large reads (a plan of 10,000
	// small inline datasets would otherwise run 10,000 full collections).
	if f.n*len(f.cols) >= freeOSMemoryValues {
		debug.FreeOSMemory()
	}
	content, err := r.Digest()
	if err != nil {
		return nil, err
	}
	detail := fmt.Sprintf("%d columns", len(f.all))
	if s, ok := r.(interface{ Skipped() int64 }); ok && s.Skipped() > 0 {
		detail += fmt.Sprintf("; %d %s did not match the pattern", s.Skipped(), plural(int(s.Skipped()), "line", "lines"))
	}
	ds, err := process(f, spec, desc, standard{}, detail)
	if err != nil {
		return nil, err
	}
	if s, ok := r.(interface{ ImageShape() []int }); ok {
		ds.ImageShape = s.ImageShape()
	}
	ds.Digest = combine(content, spec.canonicalSpec())
	return ds, nil
}

func loadBuiltin(ctx context.Context, spec Spec) (*Dataset, error) {
	t, err := builtin.Load(spec.Source.Builtin)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	digest := combine("builtin:"+spec.Source.Builtin+":"+builtinVersion, spec.canonicalSpec())
	label := spec.Label
	if label == "" {
		label = "label"
		spec.Label = label // builtins are labelled; their label column is "label"
	}
	if label != "label" {
		return nil, fmt.Errorf("builtin %s: label column %q not found; its label column is \"label\"", t.Name, label)
	}
	keep := map[string]bool{}
	for _, f := range spec.Features {
		keep[f] = true
	}
	f := newFrame(nil)
	d := len(t.Features)
	for j, name := range t.Features {
		if len(keep) > 0 && !keep[name] {
			continue
		}
		c := &column{name: name, typ: tNumber, typedAt: source.Position{Source: "builtin " + t.Name}}
		for i := 0; i < t.Rows; i++ {
			c.num.add(t.X[i*d+j])
		}
		f.byName[name] = len(f.cols)
		f.cols = append(f.cols, c)
	}
	lc := &column{name: "label", typ: tString}
	for _, l := range t.Labels {
		lc.addString(l)
	}
	f.byName["label"] = len(f.cols)
	f.cols = append(f.cols, lc)
	f.all = append(append([]string{}, t.Features...), "label")
	f.n = t.Rows
	shape, trainRows := t.ImageShape, t.TrainRows
	t = nil // the columns hold the data now; let the table go
	ds, err := process(f, spec, "builtin "+spec.Source.Builtin, standard{trainRows: trainRows, imageShape: shape}, fmt.Sprintf("%d columns", len(f.all)))
	if err != nil {
		return nil, err
	}
	ds.ImageShape = shape
	ds.Digest = digest
	return ds, nil
}

// readAll reads every row into the frame, taking whole numeric blocks when
// the reader offers them (a single CSV file, parsed in parallel).
func readAll(ctx context.Context, r source.Reader, f *frame) error {
	rows := func() error { // rows until the end of a block, or of the source
		for {
			vals, pos, err := r.Next()
			if err == io.EOF || err == source.ErrBlockEnd {
				return err
			}
			if err != nil {
				return err
			}
			if f.n&4095 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := f.add(r.Columns(), vals, pos); err != nil {
				return err
			}
		}
	}
	br, ok := r.(source.BlockReader)
	if !ok || !br.Blocks() {
		if err := rows(); err != io.EOF {
			return err
		}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := br.NextBlock()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if b != nil {
			if f.addBlock(r.Columns(), b) {
				continue
			}
			br.Expand()
		}
		switch err := rows(); err {
		case source.ErrBlockEnd:
		case io.EOF:
			return nil
		default:
			return err
		}
	}
}
