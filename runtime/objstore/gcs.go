package objstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/leptonml/lepton/runtime/runstore"
)

type gcsBackend struct {
	c        *storage.Client
	bucket   *storage.BucketHandle
	name     string
	project  string
	location string
	// insecure: the endpoint is plain HTTP (an emulator), and so are the
	// URLs signed for it.
	insecure bool
	// accessID and key sign URLs when the credentials are a service
	// account key; without them the library signs through IAM signBlob.
	accessID string
	key      []byte
}

// googleCreds is what a Google credentials JSON holds that matters here.
type googleCreds struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	ProjectID    string `json:"project_id"`
	QuotaProject string `json:"quota_project_id"`
}

func openGCS(ctx context.Context, bucket string, o Options) (*gcsBackend, error) {
	b := &gcsBackend{name: bucket, location: o.Region}
	// JSON reads: the XML API of an emulator answers on its public host
	// only, and JSON reads are as good against the real service.
	opts := []option.ClientOption{storage.WithJSONReads()}
	endpoint := o.Endpoint
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
		if isLoopback(endpoint) {
			opts = append(opts, option.WithoutAuthentication())
		}
	} else if h := os.Getenv("STORAGE_EMULATOR_HOST"); h != "" {
		endpoint = h
		if !strings.Contains(h, "://") {
			endpoint = "http://" + h
		}
	}
	if u, err := url.Parse(endpoint); err == nil && u.Scheme == "http" {
		b.insecure = true
	}
	credsFile := o.CredentialsFile
	if credsFile == "" {
		credsFile = os.Getenv("GOOGLE_APPLICATION_CREDENTIALS")
	}
	var creds googleCreds
	if credsFile != "" {
		raw, err := os.ReadFile(credsFile)
		if err != nil {
			return nil, fmt.Errorf("reading the Google credentials (GOOGLE_APPLICATION_CREDENTIALS or the provider's credentials): %w", err)
		}
		if err := json.Unmarshal(raw, &creds); err != nil {
			return nil, fmt.Errorf("the Google credentials %s are not JSON: %w", credsFile, err)
		}
		if o.CredentialsFile != "" && !isLoopback(endpoint) {
			opts = append(opts, option.WithAuthCredentialsJSON(option.CredentialsType(creds.Type), raw))
		}
		if creds.Type == "service_account" && creds.PrivateKey != "" {
			b.accessID, b.key = creds.ClientEmail, []byte(creds.PrivateKey)
		}
	}
	b.project = o.Project
	for _, p := range []string{os.Getenv("GOOGLE_CLOUD_PROJECT"), os.Getenv("CLOUDSDK_CORE_PROJECT"), creds.ProjectID, creds.QuotaProject} {
		if b.project == "" {
			b.project = p
		}
	}
	c, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating the Google Cloud Storage client (Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth application-default login`): %w", err)
	}
	b.c, b.bucket = c, c.Bucket(bucket)
	return b, nil
}

func (b *gcsBackend) put(ctx context.Context, key string, r io.Reader) error {
	// A cancelled context aborts the upload before the object is made.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := b.bucket.Object(key).NewWriter(wctx)
	if _, err := io.Copy(w, r); err != nil {
		cancel()
		w.Close()
		return err
	}
	return b.classify(w.Close())
}

func (b *gcsBackend) get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := b.bucket.Object(key).NewReader(ctx)
	if err != nil {
		return nil, b.missing(ctx, b.classify(err))
	}
	return rc, nil
}

// missing tells a missing bucket from a missing object, which a read of
// an object does not.
func (b *gcsBackend) missing(ctx context.Context, err error) error {
	if errors.Is(err, errNotFound) {
		if _, berr := b.bucket.Attrs(ctx); errors.Is(berr, storage.ErrBucketNotExist) {
			return errNoBucket
		}
	}
	return err
}

func (b *gcsBackend) stat(ctx context.Context, key string) (runstore.Info, error) {
	a, err := b.bucket.Object(key).Attrs(ctx)
	if err != nil {
		return runstore.Info{}, b.missing(ctx, b.classify(err))
	}
	return runstore.Info{Key: key, Size: a.Size, ModTime: a.Updated}, nil
}

func (b *gcsBackend) list(ctx context.Context, prefix string) ([]runstore.Info, error) {
	q := &storage.Query{Prefix: prefix}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Updated"}); err != nil {
		return nil, err
	}
	var out []runstore.Info
	it := b.bucket.Objects(ctx, q)
	for {
		a, err := it.Next()
		if err == iterator.Done {
			return out, nil
		}
		if err != nil {
			return nil, b.classify(err)
		}
		out = append(out, runstore.Info{Key: a.Name, Size: a.Size, ModTime: a.Updated})
	}
}

func (b *gcsBackend) del(ctx context.Context, key string) error {
	err := b.classify(b.bucket.Object(key).Delete(ctx))
	if errors.Is(err, errNotFound) {
		return nil
	}
	return err
}

func (b *gcsBackend) sign(ctx context.Context, key, method string, ttl time.Duration) (string, map[string]string, error) {
	opts := &storage.SignedURLOptions{
		Scheme:   storage.SigningSchemeV4,
		Method:   method,
		Expires:  time.Now().Add(ttl),
		Insecure: b.insecure,
	}
	if b.key != nil {
		opts.GoogleAccessID, opts.PrivateKey = b.accessID, b.key
	}
	u, err := b.bucket.SignedURL(key, opts)
	if err != nil {
		return "", nil, fmt.Errorf("%w (sign with a service account key in GOOGLE_APPLICATION_CREDENTIALS, or credentials that may call iam.serviceAccounts.signBlob)", err)
	}
	return u, nil, nil
}

func (b *gcsBackend) ensure(ctx context.Context, labels map[string]string) error {
	_, err := b.bucket.Attrs(ctx)
	if err == nil {
		return nil
	}
	if !errors.Is(err, storage.ErrBucketNotExist) {
		return b.classify(err)
	}
	project := b.project
	if project == "" {
		if !b.insecure {
			return fmt.Errorf("no Google Cloud project to create gs://%s in: set GOOGLE_CLOUD_PROJECT or the provider's project", b.name)
		}
		// An emulator takes any project.
		project = "lepton-emulator"
	}
	gl := map[string]string{}
	for k, v := range labels {
		gl[gcsLabel(k)] = gcsLabel(v)
	}
	err = b.bucket.Create(ctx, project, &storage.BucketAttrs{Labels: gl, Location: b.location})
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == http.StatusConflict {
		return nil // created meanwhile
	}
	return b.classify(err)
}

func (b *gcsBackend) classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrBucketNotExist):
		return errNoBucket
	case errors.Is(err, storage.ErrObjectNotExist):
		return errNotFound
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == http.StatusNotFound {
		return errNotFound
	}
	return err
}

func (b *gcsBackend) hint(err error) string {
	var ge *googleapi.Error
	if (errors.As(err, &ge) && (ge.Code == http.StatusUnauthorized || ge.Code == http.StatusForbidden)) ||
		strings.Contains(err.Error(), "could not find default credentials") {
		return fmt.Sprintf("check the Google credentials for gs://%s (GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`, or the provider's credentials) and that they may use the bucket", b.name)
	}
	return ""
}

// gcsLabel makes s a valid GCS label key or value: at most 63 lowercase
// letters, digits, hyphens and underscores (a lineage, a UUID, already is).
func gcsLabel(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return string(b)
}
