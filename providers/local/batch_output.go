package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/leptonml/lepton/internal/fsutil"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/runtime/runstore"
)

// batchOutput is where a batch inference writes its predictions: a file on
// this machine, or an object in S3, GCS or Azure Blob Storage. An object is
// reached through runtime/objstore with the clouds' own credentials and
// endpoint variables (AWS_ENDPOINT_URL_S3, STORAGE_EMULATOR_HOST,
// AZURE_STORAGE_*) and the region, profile or project of the cloud's
// provider block.
type batchOutput struct {
	path string // a file: its absolute path; "" for an object

	url   string // the object's URL as written
	root  string // the store holding it: s3://BUCKET, gs://BUCKET, azblob://ACCOUNT/CONTAINER
	key   string // the object's key in root
	cloud string // the provider block that configures it: aws, gcp or azure
}

const outputForms = "s3://BUCKET/KEY, gs://BUCKET/KEY or azblob://ACCOUNT/CONTAINER/KEY"

// parseOutput reads the output argument: a path (relative to dir), or an
// object URL. A malformed URL is an error saying what is wrong with it.
func parseOutput(raw, dir string) (batchOutput, error) {
	if !strings.Contains(raw, "://") {
		p := raw
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return batchOutput{path: p}, nil
	}
	bad := func(why string, args ...any) (batchOutput, error) {
		return batchOutput{}, fmt.Errorf("output %q: %s; want a file path, %s", raw, fmt.Sprintf(why, args...), outputForms)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a URL (%v)", errors.Unwrap(err))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return bad("an object URL has no user, query or fragment")
	}
	o := batchOutput{url: raw}
	path := strings.TrimPrefix(u.Path, "/")
	switch u.Scheme {
	case "s3", "gs":
		if !bucketName(u.Host, true) {
			return bad("%q is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens)", u.Host)
		}
		o.root, o.key, o.cloud = u.Scheme+"://"+u.Host, path, map[string]string{"s3": "aws", "gs": "gcp"}[u.Scheme]
	case "azblob", "az": // az:// as a dataset's object source writes it
		if !accountName(u.Host) {
			return bad("%q is not a storage account name (3 to 24 lowercase letters and digits)", u.Host)
		}
		cont, key, _ := strings.Cut(path, "/")
		if !bucketName(cont, false) {
			return bad("%q is not a container name (3 to 63 lowercase letters, digits and hyphens)", cont)
		}
		o.root, o.key, o.cloud = "azblob://"+u.Host+"/"+cont, key, "azure"
	default:
		return bad("unknown scheme %q", u.Scheme)
	}
	if o.key == "" || strings.HasSuffix(o.key, "/") {
		return bad("the object's key is missing (it names a folder, not an object)")
	}
	if err := runstore.CheckKey(o.key); err != nil {
		return bad("the object's key: %v", err)
	}
	return o, nil
}

// bucketName is S3's and GCS's rule for a bucket name (dots allowed) or
// Azure's for a container (no dots), as runtime/objstore checks them.
func bucketName(b string, dots bool) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i, c := range b {
		inner := i > 0 && i < len(b)-1
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && inner || c == '.' && dots && inner
		if !ok {
			return false
		}
	}
	return true
}

func accountName(a string) bool {
	if len(a) < 3 || len(a) > 24 {
		return false
	}
	for _, c := range a {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// object reports whether the output is an object URL.
func (o batchOutput) object() bool { return o.path == "" }

// String is where the output is, for messages.
func (o batchOutput) String() string {
	if o.object() {
		return o.url
	}
	return o.path
}

// store opens the store holding the object.
func (o batchOutput) store(ctx context.Context, env providers.Env) (runstore.Store, error) {
	s, err := openStorage(ctx, o.root, env.Providers[o.cloud], env.Lineage, false)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", o.url, err)
	}
	return s, nil
}

// write replaces the output with what fill writes and returns the sha256 of
// those bytes. A failed fill leaves the output as it was: a file is renamed
// into place, an object is only made by a whole upload.
func (o batchOutput) write(ctx context.Context, env providers.Env, fill func(w io.Writer) error) (string, error) {
	h := sha256.New()
	hashed := func(w io.Writer) error { return fill(io.MultiWriter(w, h)) }
	if !o.object() {
		// NoSync, as before: the output is rebuilt by the next apply when
		// lost, and an fsync of a large file would slow every batch run.
		if err := fsutil.Write(o.path, 0o600, fsutil.Options{NoSync: true, MkdirAll: true}, hashed); err != nil {
			return "", err
		}
		return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
	}
	s, err := o.store(ctx, env)
	if err != nil {
		return "", err
	}
	// The predictions stream into the upload as they are scored.
	pr, pw := io.Pipe()
	filled := make(chan error, 1)
	go func() {
		err := hashed(pw)
		pw.CloseWithError(err)
		filled <- err
	}()
	err = s.Put(ctx, o.key, pr)
	pr.CloseWithError(err) // stops fill if the upload gave up early
	if ferr := <-filled; ferr != nil {
		return "", ferr
	}
	if err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// digest hashes the output as it is now; found is false when it is gone.
func (o batchOutput) digest(ctx context.Context, env providers.Env) (sum string, found bool, err error) {
	var r io.ReadCloser
	if o.object() {
		s, serr := o.store(ctx, env)
		if serr != nil {
			return "", false, serr
		}
		r, err = s.Get(ctx, o.key)
	} else {
		r, err = os.Open(o.path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", false, fmt.Errorf("reading %s: %w", o, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), true, nil
}

// remove deletes the output; one already gone is no error.
func (o batchOutput) remove(ctx context.Context, env providers.Env) error {
	if !o.object() {
		if err := os.Remove(o.path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	s, err := o.store(ctx, env)
	if err != nil {
		return err
	}
	return s.Delete(ctx, o.key)
}
