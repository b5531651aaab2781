package source

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"google.golang.org/api/option"
	raw "google.golang.org/api/storage/v1"

	"github.com/leptonml/lepton/internal/gcsjson"
)

// objectRef is a parsed object URL.
type objectRef struct {
	scheme  string // s3 | gs | az
	bucket  string // bucket, or for az the container
	key     string
	account string // az only
	raw     string
}

func parseObject(u string) (objectRef, error) {
	p, err := url.Parse(u)
	if err != nil {
		return objectRef{}, fmt.Errorf("object %s: %w", u, err)
	}
	r := objectRef{scheme: p.Scheme, raw: u}
	path := strings.TrimPrefix(p.Path, "/")
	switch p.Scheme {
	case "s3", "gs":
		r.bucket, r.key = p.Host, path
	case "az":
		r.account = p.Host
		r.bucket, r.key, _ = strings.Cut(path, "/")
	default:
		return objectRef{}, fmt.Errorf("object %s: want s3://bucket/key, gs://bucket/key or az://account/container/blob", u)
	}
	if r.bucket == "" || r.key == "" || (p.Scheme == "az" && r.account == "") {
		return objectRef{}, fmt.Errorf("object %s: want s3://bucket/key, gs://bucket/key or az://account/container/blob", u)
	}
	return r, nil
}

// version is what stands in for the object's content in the fingerprint: the
// ETag, generation or MD5 the store reports, with the object's address.
func (r objectRef) version(parts ...string) string {
	h := sha256.New()
	fmt.Fprintf(h, "object\x00%s\x00%s\x00%s\x00%s", r.scheme, r.account, r.bucket, r.key)
	for _, p := range parts {
		fmt.Fprintf(h, "\x00%s", p)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func endpoint(opt, env string) string {
	if opt != "" {
		return opt
	}
	return os.Getenv(env)
}

// objectReader parses the object's body; its digest is the version.
type objectReader struct {
	Reader
	body    io.Closer
	version string
	cleanup func()
}

func (o *objectReader) Digest() (string, error) { return o.version, nil }

func (o *objectReader) Close() error {
	err := o.Reader.Close()
	o.body.Close()
	if o.cleanup != nil {
		o.cleanup()
	}
	return err
}

func openObject(ctx context.Context, s Source, o Options) (Reader, error) {
	ref, err := parseObject(s.Object)
	if err != nil {
		return nil, err
	}
	var (
		body    io.ReadCloser
		version string
		cleanup func()
	)
	switch ref.scheme {
	case "s3":
		body, version, err = s3Get(ctx, ref, o)
	case "gs":
		body, version, cleanup, err = gcsGet(ctx, ref, o)
	case "az":
		body, version, err = azGet(ctx, ref, o)
	}
	if err != nil {
		return nil, err
	}
	rd, err := openStream(bufio.NewReaderSize(body, 1<<20), ref.raw, o.Format)
	if err != nil {
		body.Close()
		if cleanup != nil {
			cleanup()
		}
		return nil, err
	}
	return &objectReader{Reader: rd, body: body, version: version, cleanup: cleanup}, nil
}

func fingerprintObject(ctx context.Context, s Source, o Options) (string, error) {
	ref, err := parseObject(s.Object)
	if err != nil {
		return "", err
	}
	switch ref.scheme {
	case "s3":
		return s3Head(ctx, ref, o)
	case "gs":
		return gcsAttrs(ctx, ref, o)
	}
	return azProps(ctx, ref, o)
}

// --- S3: the SDK's default credential chain; LEPTON_S3_ENDPOINT (or
// Options.S3Endpoint) points it at a compatible store with path-style URLs.

func s3Client(ctx context.Context, o Options) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	ep := endpoint(o.S3Endpoint, "LEPTON_S3_ENDPOINT")
	return s3.NewFromConfig(cfg, func(so *s3.Options) {
		if ep != "" {
			so.BaseEndpoint = aws.String(ep)
			so.UsePathStyle = true
		}
	}), nil
}

func s3Err(ref objectRef, err error) error {
	var nsk *s3types.NoSuchKey
	var nf *s3types.NotFound
	var nsb *s3types.NoSuchBucket
	if errors.As(err, &nsk) || errors.As(err, &nf) || errors.As(err, &nsb) {
		return fmt.Errorf("object %s: not found: %w", ref.raw, err)
	}
	return fmt.Errorf("object %s: %w", ref.raw, err)
}

func s3Get(ctx context.Context, ref objectRef, o Options) (io.ReadCloser, string, error) {
	c, err := s3Client(ctx, o)
	if err != nil {
		return nil, "", fmt.Errorf("object %s: %w", ref.raw, err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &ref.bucket, Key: &ref.key})
	if err != nil {
		return nil, "", s3Err(ref, err)
	}
	return out.Body, ref.version("etag", aws.ToString(out.ETag)), nil
}

func s3Head(ctx context.Context, ref objectRef, o Options) (string, error) {
	c, err := s3Client(ctx, o)
	if err != nil {
		return "", fmt.Errorf("object %s: %w", ref.raw, err)
	}
	out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &ref.bucket, Key: &ref.key})
	if err != nil {
		return "", s3Err(ref, err)
	}
	return ref.version("etag", aws.ToString(out.ETag)), nil
}

// --- GCS: Application Default Credentials; LEPTON_GCS_ENDPOINT (or
// Options.GCSEndpoint, e.g. http://127.0.0.1:4443/storage/v1/) is used
// without authentication, as emulators expect. STORAGE_EMULATOR_HOST, which
// the SDK itself reads, works too.

func gcsClient(ctx context.Context, o Options) (*gcsjson.Client, error) {
	var opts []option.ClientOption
	if ep := endpoint(o.GCSEndpoint, "LEPTON_GCS_ENDPOINT"); ep != "" {
		// Reads use the JSON API: emulators serve the XML API only on their
		// public host.
		opts = append(opts, option.WithEndpoint(ep), option.WithoutAuthentication())
		if o.HTTPClient != nil {
			opts = append(opts, option.WithHTTPClient(o.HTTPClient))
		}
	}
	return gcsjson.New(ctx, opts...)
}

func gcsErr(ref objectRef, err error) error {
	if gcsjson.NotFound(err) {
		return fmt.Errorf("object %s: not found: %w: %w", ref.raw, gcsjson.ErrObjectNotExist, err)
	}
	return fmt.Errorf("object %s: %w", ref.raw, err)
}

func gcsGet(ctx context.Context, ref objectRef, o Options) (io.ReadCloser, string, func(), error) {
	c, err := gcsClient(ctx, o)
	if err != nil {
		return nil, "", nil, fmt.Errorf("object %s: %w", ref.raw, err)
	}
	r, gen, err := c.Download(ctx, c.Objects.Get(ref.bucket, ref.key).Projection("full"))
	if err != nil {
		return nil, "", nil, gcsErr(ref, err)
	}
	return r, ref.version("generation", fmt.Sprint(gen)), nil, nil
}

func gcsAttrs(ctx context.Context, ref objectRef, o Options) (string, error) {
	c, err := gcsClient(ctx, o)
	if err != nil {
		return "", fmt.Errorf("object %s: %w", ref.raw, err)
	}
	var a *raw.Object
	err = gcsjson.Retry(ctx, func() error {
		var err error
		a, err = c.Objects.Get(ref.bucket, ref.key).Projection("full").Context(ctx).Do()
		return err
	})
	if err != nil {
		return "", gcsErr(ref, err)
	}
	return ref.version("generation", fmt.Sprint(a.Generation)), nil
}

// --- Azure Blob: DefaultAzureCredential against
// https://ACCOUNT.blob.core.windows.net. AZURE_STORAGE_CONNECTION_STRING, when
// set, is used instead (Azurite, or a key-based account); LEPTON_AZURE_BLOB_ENDPOINT
// (or Options.AzureEndpoint) overrides the service URL.

func azClient(ref objectRef, o Options) (*azblob.Client, error) {
	var copts *azblob.ClientOptions
	if o.HTTPClient != nil {
		copts = &azblob.ClientOptions{}
		copts.Transport = o.HTTPClient
	}
	if cs := os.Getenv("AZURE_STORAGE_CONNECTION_STRING"); cs != "" {
		return azblob.NewClientFromConnectionString(cs, copts)
	}
	svc := endpoint(o.AzureEndpoint, "LEPTON_AZURE_BLOB_ENDPOINT")
	if svc == "" {
		svc = "https://" + ref.account + ".blob.core.windows.net/"
	}
	if key := os.Getenv("AZURE_STORAGE_KEY"); key != "" {
		cred, err := azblob.NewSharedKeyCredential(ref.account, key)
		if err != nil {
			return nil, err
		}
		return azblob.NewClientWithSharedKeyCredential(svc, cred, copts)
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, err
	}
	return azblob.NewClient(svc, cred, copts)
}

func azErr(ref objectRef, err error) error {
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return fmt.Errorf("object %s: not found: %w", ref.raw, err)
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return fmt.Errorf("object %s: not found: %w", ref.raw, err)
	}
	return fmt.Errorf("object %s: %w", ref.raw, err)
}

// azVersion uses the ETag, which changes on every write; the MD5 only when a
// store reports no ETag (a download may omit the MD5 that properties report,
// so mixing them would make Load and Fingerprint disagree).
func azVersion(ref objectRef, etag *azcore.ETag, md5 []byte) string {
	if etag != nil && *etag != "" {
		return ref.version("etag", string(*etag))
	}
	return ref.version("md5", hex.EncodeToString(md5))
}

func azGet(ctx context.Context, ref objectRef, o Options) (io.ReadCloser, string, error) {
	c, err := azClient(ref, o)
	if err != nil {
		return nil, "", fmt.Errorf("object %s: %w", ref.raw, err)
	}
	resp, err := c.DownloadStream(ctx, ref.bucket, ref.key, nil)
	if err != nil {
		return nil, "", azErr(ref, err)
	}
	return resp.Body, azVersion(ref, resp.ETag, resp.ContentMD5), nil
}

func azProps(ctx context.Context, ref objectRef, o Options) (string, error) {
	c, err := azClient(ref, o)
	if err != nil {
		return "", fmt.Errorf("object %s: %w", ref.raw, err)
	}
	p, err := c.ServiceClient().NewContainerClient(ref.bucket).NewBlobClient(ref.key).GetProperties(ctx, nil)
	if err != nil {
		return "", azErr(ref, err)
	}
	return azVersion(ref, p.ETag, p.ContentMD5), nil
}
