package data

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/leptonml/lepton/internal/suggest"
	"github.com/leptonml/lepton/runtime/builtin"
	"github.com/leptonml/lepton/runtime/data/source"
)

// Header is what a plan knows of a dataset's columns before loading it.
type Header = source.Header

// ArgError is a problem with one of the dataset's arguments (label,
// features, source) found without loading it, so the plan can point at it.
type ArgError struct {
	Arg string
	Err error
}

func (e *ArgError) Error() string { return e.Err.Error() }
func (e *ArgError) Unwrap() error { return e.Err }

// Inspect is Fingerprint plus the source's header, read in the same pass
// where the source allows (a URL's body is downloaded once).
func Inspect(ctx context.Context, spec Spec) (string, Header, error) {
	if err := spec.Validate(); err != nil {
		return "", Header{}, err
	}
	if spec.Source.URL != "" || spec.Source.File != "" {
		fp := source.FingerprintURL
		if spec.Source.File != "" {
			fp = source.FingerprintFiles
		}
		content, h, err := fp(ctx, spec.Source, spec.options())
		if err != nil {
			return "", Header{}, err
		}
		return combine(content, spec.canonicalSpec()), h, nil
	}
	digest, err := Fingerprint(ctx, spec)
	if err != nil {
		return "", Header{}, err
	}
	h, err := Columns(ctx, spec)
	return digest, h, err
}

// Columns returns the source's header without reading its rows (a URL is
// not downloaded: its columns are then unknown).
func Columns(ctx context.Context, spec Spec) (Header, error) {
	if b := spec.Source.Builtin; b != "" {
		in, err := builtin.Describe(b)
		if err != nil {
			return Header{}, fmt.Errorf("source: %w", err)
		}
		return Header{Known: true, Columns: append(append([]string{}, in.Features...), "label"), ImageShape: in.ImageShape, Classes: in.Classes}, nil
	}
	if spec.Source.URL != "" || spec.Source.Object != "" {
		return Header{}, nil
	}
	return source.Columns(ctx, spec.Source, spec.options())
}

// FeatureColumns are the source columns the dataset's rows are made of
// besides the label: the features argument, or every other column.
func (s Spec) FeatureColumns(h Header) []string {
	if len(s.Features) > 0 {
		return s.Features
	}
	label := s.Label
	if label == "" && s.Source.Builtin != "" {
		label = "label"
	}
	var out []string
	for _, c := range h.Columns {
		if c != label {
			out = append(out, c)
		}
	}
	return out
}

// CheckColumns says whether the label and features name columns the source
// has, and whether any feature column is left, when the header is known.
func (s Spec) CheckColumns(h Header) error {
	if !h.Known {
		return nil
	}
	desc := s.Source.Describe()
	if s.Label != "" && !slices.Contains(h.Columns, s.Label) {
		return &ArgError{Arg: "label", Err: fmt.Errorf("label %q: %s has no column %q%s; its columns are %s", s.Label, desc, s.Label, suggest.Hint(s.Label, h.Columns), ElideColumns(h.Columns))}
	}
	for _, f := range s.Features {
		if !slices.Contains(h.Columns, f) {
			return &ArgError{Arg: "features", Err: fmt.Errorf("features: %s has no column %q%s; its columns are %s", desc, f, suggest.Hint(f, h.Columns), ElideColumns(h.Columns))}
		}
	}
	if len(s.FeatureColumns(h)) == 0 {
		arg, why := "source", fmt.Sprintf("%s has no columns", desc)
		if s.Label != "" {
			arg, why = "label", fmt.Sprintf("the only column of %s, %q, is the label", desc, s.Label)
		}
		return &ArgError{Arg: arg, Err: fmt.Errorf("the dataset has no feature columns: %s; a model needs at least one input column besides the label", why)}
	}
	return nil
}

// ElideColumns lists column names, the first few of a long list.
func ElideColumns(cols []string) string {
	const show = 8
	if len(cols) > show {
		return fmt.Sprintf("[%s, … %d more]", strings.Join(cols[:show], ", "), len(cols)-show)
	}
	return "[" + strings.Join(cols, ", ") + "]"
}
