package providers

import (
	"errors"
	"fmt"
	"strings"
)

// ArgError is a plan error caused by one argument of the resource: the
// planner shows it at that argument's place in the configuration (file,
// line and column) rather than at the block's header.
type ArgError struct {
	// Path names the argument as the user writes it, nested blocks first:
	// "label", "source.file", "model.kind".
	Path string
	Err  error
}

func (e *ArgError) Error() string { return e.Err.Error() }
func (e *ArgError) Unwrap() error { return e.Err }

// ArgErrorf returns an ArgError for the argument at path.
func ArgErrorf(path, format string, args ...any) error {
	return &ArgError{Path: path, Err: fmt.Errorf(format, args...)}
}

// AtArg wraps err as an ArgError for path unless it already is one (which
// names its argument more precisely); nil stays nil.
func AtArg(path string, err error) error {
	var ae *ArgError
	if err == nil || errors.As(err, &ae) {
		return err
	}
	return &ArgError{Path: path, Err: err}
}

// ArgPath returns the argument an error is about, split at dots, or nil.
func ArgPath(err error) []string {
	var ae *ArgError
	if !errors.As(err, &ae) || ae.Path == "" {
		return nil
	}
	return strings.Split(ae.Path, ".")
}
