package local

import (
	"errors"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/runtime/data"
)

// checkDatasetColumns reports, at plan time, a label or feature the source
// does not have and a dataset left without feature columns, pointing at the
// argument at fault.
func checkDatasetColumns(spec data.Spec, h data.Header) error {
	return argError(spec.CheckColumns(h))
}

// argError turns the data engine's argument errors into the planner's.
func argError(err error) error {
	var ae *data.ArgError
	if errors.As(err, &ae) {
		return &providers.ArgError{Path: ae.Arg, Err: err}
	}
	return err
}
