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

	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	raw "google.golang.org/api/storage/v1"

	"github.com/leptonml/lepton/internal/gcsjson"
	"github.com/leptonml/lepton/runtime/runstore"
)

type gcsBackend struct {
	c        *gcsjson.Client
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
	// Reads go through the JSON API: the XML API of an emulator answers on
	// its public host only, and JSON reads are as good against the real
	// service.
	var opts []option.ClientOption
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
	c, err := gcsjson.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating the Google Cloud Storage client (Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth application-default login`): %w", err)
	}
	b.c = c
	return b, nil
}

func (b *gcsBackend) put(ctx context.Context, key string, r io.Reader) error {
	// One request up to 16 MiB, a resumable upload beyond, as the storage
	// package's Writer does; a cancelled context abandons it before the
	// object is made.
	_, err := b.c.Objects.Insert(b.name, &raw.Object{Name: key}).Media(r).Context(ctx).Do()
	return b.classify(err)
}

func (b *gcsBackend) get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, _, err := b.c.Download(ctx, b.c.Objects.Get(b.name, key))
	if err != nil {
		return nil, b.missing(ctx, b.classify(err))
	}
	return rc, nil
}

// bucketExists asks for the bucket's metadata: false on a 404.
func (b *gcsBackend) bucketExists(ctx context.Context) (bool, error) {
	err := gcsjson.Retry(ctx, func() error {
		_, err := b.c.Buckets.Get(b.name).Context(ctx).Do()
		return err
	})
	if gcsjson.NotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// missing tells a missing bucket from a missing object, which a read of
// an object does not.
func (b *gcsBackend) missing(ctx context.Context, err error) error {
	if errors.Is(err, errNotFound) {
		if ok, berr := b.bucketExists(ctx); berr == nil && !ok {
			return errNoBucket
		}
	}
	return err
}

func (b *gcsBackend) stat(ctx context.Context, key string) (runstore.Info, error) {
	var o *raw.Object
	err := gcsjson.Retry(ctx, func() error {
		var err error
		o, err = b.c.Objects.Get(b.name, key).Context(ctx).Do()
		return err
	})
	if err != nil {
		return runstore.Info{}, b.missing(ctx, b.classify(err))
	}
	return runstore.Info{Key: key, Size: int64(o.Size), ModTime: gcsjson.Time(o.Updated)}, nil
}

func (b *gcsBackend) list(ctx context.Context, prefix string) ([]runstore.Info, error) {
	var out []runstore.Info
	call := b.c.Objects.List(b.name).Prefix(prefix).Projection("full").Fields("nextPageToken", "prefixes", "items(name,size,updated)")
	for token := ""; ; {
		var page *raw.Objects
		err := gcsjson.Retry(ctx, func() error {
			var err error
			page, err = call.PageToken(token).Context(ctx).Do()
			return err
		})
		if gcsjson.NotFound(err) {
			return nil, errNoBucket
		}
		if err != nil {
			return nil, b.classify(err)
		}
		for _, o := range page.Items {
			out = append(out, runstore.Info{Key: o.Name, Size: int64(o.Size), ModTime: gcsjson.Time(o.Updated)})
		}
		if token = page.NextPageToken; token == "" {
			return out, nil
		}
	}
}

func (b *gcsBackend) del(ctx context.Context, key string) error {
	err := b.classify(b.c.Objects.Delete(b.name, key).Context(ctx).Do())
	if errors.Is(err, errNotFound) {
		return nil
	}
	return err
}

func (b *gcsBackend) sign(ctx context.Context, key, method string, ttl time.Duration) (string, map[string]string, error) {
	opts := gcsjson.SignOptions{
		Method:   method,
		Expires:  time.Now().Add(ttl),
		Insecure: b.insecure,
	}
	if b.key != nil {
		opts.GoogleAccessID, opts.PrivateKey = b.accessID, b.key
	}
	u, err := b.c.SignedURL(ctx, b.name, key, opts)
	if err != nil {
		return "", nil, fmt.Errorf("%w (sign with a service account key in GOOGLE_APPLICATION_CREDENTIALS, or credentials that may call iam.serviceAccounts.signBlob)", err)
	}
	return u, nil, nil
}

func (b *gcsBackend) ensure(ctx context.Context, labels map[string]string) error {
	ok, err := b.bucketExists(ctx)
	if ok {
		return nil
	}
	if err != nil {
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
	err = gcsjson.Retry(ctx, func() error {
		_, err := b.c.Buckets.Insert(project, &raw.Bucket{Name: b.name, Labels: gl, Location: b.location}).Context(ctx).Do()
		return err
	})
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
	case gcsjson.NotFound(err):
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
