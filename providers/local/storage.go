package local

import (
	"context"
	"errors"

	"github.com/leptonml/lepton/providers/remote"
)

// openStorage opens a run storage in a cloud's object store.
func openStorage(ctx context.Context, url string, block map[string]string, lineage string, create bool) (remote.Storage, error) {
	return nil, errors.New("object storage is not wired yet")
}
