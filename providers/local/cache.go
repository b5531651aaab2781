package local

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/leptonml/lepton/runtime/data"
	"github.com/leptonml/lepton/runtime/data/dscache"
	"github.com/leptonml/lepton/runtime/runstore"
)

// The processed-dataset cache lets a training read the matrices a dataset's
// apply produced instead of reading and processing the source again (MNIST:
// seconds instead of tens of seconds). It is keyed by the dataset's digest,
// so a changed source or spec never reads a stale cache. Its format is
// runtime/data/dscache's, which remote runs download as well.

func cacheKey(digest string) string {
	return "datasets/" + strings.TrimPrefix(digest, "sha256:") + ".bin"
}

func writeCache(ctx context.Context, dataDir string, ds *data.Dataset) error {
	s, key := storeOf(dataDir), cacheKey(ds.Digest)
	if ok, _ := runstore.Exists(ctx, s, key); ok {
		return nil
	}
	// The cache streams into the store as it is encoded: a large dataset's
	// matrices are not copied into one buffer first.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(dscache.Encode(pw, ds)) }()
	err := s.Put(ctx, key, pr)
	pr.CloseWithError(err) // stops the encoder if Put gave up early
	return err
}

// readCache returns the cached dataset with that digest, or an error
// (os.ErrNotExist when there is none).
func readCache(ctx context.Context, dataDir, digest string) (*data.Dataset, error) {
	f, err := storeOf(dataDir).Get(ctx, cacheKey(digest))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ds, err := dscache.Decode(f)
	if err != nil {
		return nil, err
	}
	if ds.Digest != digest {
		return nil, fmt.Errorf("dataset cache holds %s, not %s", ds.Digest, digest)
	}
	return ds, nil
}
