package local

import (
	"context"

	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/objstore"
)

// openStorage opens a run storage in a cloud's object store with the
// provider block's region, profile and project (the compute `endpoint` is
// not the store's: the clouds' own variables point at another one, such as
// AWS_ENDPOINT_URL_S3 or STORAGE_EMULATOR_HOST). create makes the bucket
// when it is missing, labelled with the state's lineage.
func openStorage(ctx context.Context, url string, block map[string]string, lineage string, create bool) (remote.Storage, error) {
	s, err := objstore.Open(ctx, url, objstore.Options{Region: block["region"], Profile: block["profile"], Project: block["project"]})
	if err != nil {
		return nil, err
	}
	if create {
		if err := s.EnsureBucket(ctx, map[string]string{"lepton-lineage": lineage}); err != nil {
			return nil, err
		}
	}
	return s, nil
}
