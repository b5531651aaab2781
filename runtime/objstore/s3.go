package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/leptonml/lepton/runtime/runstore"
)

type s3Backend struct {
	c       *s3.Client
	presign *s3.PresignClient
	bucket  string
	region  string
	cfg     aws.Config
	mod     func(*s3.Options)

	// session signs URLs with temporary credentials when the configured
	// ones are long-lived, so an access key never appears in a URL.
	mu         sync.Mutex
	session    *s3.PresignClient
	sessionEnd time.Time
}

// sessionDuration is what lepton asks of GetSessionToken: the longest STS
// allows for an IAM user's keys.
const sessionDuration = 36 * time.Hour

// presigner returns the client that signs URLs and until when its
// signatures can hold: the configured credentials when they are already
// temporary (a role, SSO, an instance profile), else a session from STS.
func (b *s3Backend) presigner(ctx context.Context) (*s3.PresignClient, time.Time, error) {
	creds, err := b.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	if creds.SessionToken != "" {
		var end time.Time
		if creds.CanExpire {
			end = creds.Expires
		}
		return b.presign, end, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.session != nil && time.Until(b.sessionEnd) > time.Hour {
		return b.session, b.sessionEnd, nil
	}
	out, err := sts.NewFromConfig(b.cfg).GetSessionToken(ctx, &sts.GetSessionTokenInput{DurationSeconds: aws.Int32(int32(sessionDuration / time.Second))})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("getting a session from AWS STS to sign URLs with (so that no access key appears in them): %w", err)
	}
	c := out.Credentials
	cfg := b.cfg.Copy()
	cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)))
	b.session = s3.NewPresignClient(s3.NewFromConfig(cfg, b.mod, func(so *s3.Options) {
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	}))
	b.sessionEnd = aws.ToTime(c.Expiration)
	return b.session, b.sessionEnd, nil
}

func openS3(ctx context.Context, bucket string, o Options) (*s3Backend, error) {
	var opts []func(*config.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	if o.CredentialsFile != "" {
		opts = append(opts, config.WithSharedCredentialsFiles([]string{o.CredentialsFile}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration (AWS_PROFILE, AWS_CONFIG_FILE, the provider's profile): %w", err)
	}
	// The SDK itself reads AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL; they are
	// read here only to see whether the endpoint is an emulator on this
	// machine, which is addressed path-style (BUCKET.127.0.0.1 resolves to
	// nothing).
	endpoint := o.Endpoint
	for _, v := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		if endpoint == "" {
			endpoint = os.Getenv(v)
		}
	}
	local := isLoopback(endpoint)
	if cfg.Region == "" {
		if !local {
			return nil, fmt.Errorf("no AWS region for the bucket %s: set AWS_REGION (or the region of the profile, or the provider's region)", bucket)
		}
		cfg.Region = "us-east-1"
	}
	mod := func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = so.UsePathStyle || local
		// The SDK would print a line to stderr for every object read that
		// has no checksum (one written by another tool).
		so.DisableLogOutputChecksumValidationSkipped = true
	}
	c := s3.NewFromConfig(cfg, mod)
	// A presigned PUT must not ask for a checksum of a body the signer
	// has not seen.
	pc := s3.NewPresignClient(s3.NewFromConfig(cfg, mod, func(so *s3.Options) {
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	}))
	return &s3Backend{c: c, presign: pc, bucket: bucket, region: cfg.Region, cfg: cfg, mod: mod}, nil
}

// maxPut is S3's limit for one PutObject; larger objects would need a
// multipart upload.
const maxPut = 5 << 30

// spoolMem is how much of an upload is kept in memory before spooling to a
// temporary file: SigV4 over plain HTTP (an emulator) and S3's checksums
// need a body they can read twice.
const spoolMem = 8 << 20

// spool makes r seekable: in memory when small, in a temporary file when not.
func spool(r io.Reader) (io.ReadSeeker, int64, func(), error) {
	var buf bytes.Buffer
	n, err := io.CopyN(&buf, r, spoolMem+1)
	if err == io.EOF || (err == nil && n <= spoolMem) {
		return bytes.NewReader(buf.Bytes()), n, func() {}, nil
	}
	if err != nil {
		return nil, 0, nil, err
	}
	f, err := os.CreateTemp("", "lepton-upload-*")
	if err != nil {
		return nil, 0, nil, err
	}
	done := func() { f.Close(); os.Remove(f.Name()) }
	m, err := io.Copy(f, io.MultiReader(&buf, io.LimitReader(r, maxPut+1-n)))
	if err == nil && m > maxPut {
		err = fmt.Errorf("the object is larger than 5 GiB, the most one S3 PutObject takes")
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		done()
		return nil, 0, nil, err
	}
	return f, m, done, nil
}

func (b *s3Backend) put(ctx context.Context, key string, r io.Reader) error {
	body, size, done, err := spool(r)
	if err != nil {
		return err
	}
	defer done()
	_, err = b.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b.bucket, Key: &key, Body: body, ContentLength: aws.Int64(size)})
	return b.classify(err)
}

func (b *s3Backend) get(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := b.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return nil, b.classify(err)
	}
	return out.Body, nil
}

func (b *s3Backend) stat(ctx context.Context, key string) (runstore.Info, error) {
	out, err := b.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		err = b.classify(err)
		if errors.Is(err, errNotFound) {
			// A HEAD has no body to tell a missing object from a missing bucket.
			if _, berr := b.c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &b.bucket}); berr != nil && statusOf(berr) == http.StatusNotFound {
				return runstore.Info{}, errNoBucket
			}
		}
		return runstore.Info{}, err
	}
	return runstore.Info{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

func (b *s3Backend) list(ctx context.Context, prefix string) ([]runstore.Info, error) {
	var out []runstore.Info
	p := s3.NewListObjectsV2Paginator(b.c, &s3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, b.classify(err)
		}
		for _, o := range page.Contents {
			out = append(out, runstore.Info{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
		}
	}
	return out, nil
}

func (b *s3Backend) del(ctx context.Context, key string) error {
	_, err := b.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key})
	if err = b.classify(err); errors.Is(err, errNotFound) {
		return nil
	}
	return err
}

func (b *s3Backend) sign(ctx context.Context, key, method string, ttl time.Duration) (string, map[string]string, error) {
	pc, end, err := b.presigner(ctx)
	if err != nil {
		return "", nil, err
	}
	if !end.IsZero() && time.Until(end) < ttl {
		ttl = time.Until(end) // a signature cannot outlive its credentials
	}
	expires := func(po *s3.PresignOptions) { po.Expires = ttl }
	var req *v4.PresignedHTTPRequest
	if method == "GET" {
		req, err = pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: &key}, expires)
	} else {
		req, err = pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: &b.bucket, Key: &key}, expires)
	}
	if err != nil {
		return "", nil, b.classify(err)
	}
	h := map[string]string{}
	for k, v := range req.SignedHeader {
		if !strings.EqualFold(k, "host") && len(v) > 0 {
			h[k] = strings.Join(v, ",")
		}
	}
	if len(h) == 0 {
		h = nil
	}
	return req.URL, h, nil
}

func (b *s3Backend) ensure(ctx context.Context, labels map[string]string) error {
	_, err := b.c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &b.bucket})
	if err == nil {
		return nil
	}
	if statusOf(err) != http.StatusNotFound {
		return b.classify(err)
	}
	in := &s3.CreateBucketInput{Bucket: &b.bucket}
	if b.region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(b.region)}
	}
	if _, err := b.c.CreateBucket(ctx, in); err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if !errors.As(err, &owned) {
			return b.classify(err)
		}
	}
	if len(labels) == 0 {
		return nil
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var tags []types.Tag
	for _, k := range keys {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(labels[k])})
	}
	_, err = b.c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: &b.bucket, Tagging: &types.Tagging{TagSet: tags}})
	if err != nil && unsupported(err) {
		// An S3-compatible store without bucket tagging (gofakes3, which
		// reads PUT ?tagging as a second create) keeps the bucket untagged:
		// the tags only help people find the bucket.
		return nil
	}
	return b.classify(err)
}

// unsupported reports whether err is a store's refusal of an operation it
// does not implement.
func unsupported(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "NotImplemented", "MethodNotAllowed", "BucketAlreadyExists", "BucketAlreadyOwnedByYou":
		return true
	}
	return false
}

func statusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// classify maps S3's answers to errNotFound and errNoBucket.
func (b *s3Backend) classify(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchBucket":
			return fmt.Errorf("%w: %v", errNoBucket, err)
		case "NoSuchKey", "NotFound":
			return errNotFound
		}
	}
	if statusOf(err) == http.StatusNotFound {
		return errNotFound
	}
	return err
}

func (b *s3Backend) hint(err error) string {
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch {
	case code == "AccessDenied", code == "InvalidAccessKeyId", code == "SignatureDoesNotMatch", code == "ExpiredToken",
		code == "InvalidToken", statusOf(err) == http.StatusForbidden,
		strings.Contains(err.Error(), "failed to retrieve credentials"), strings.Contains(err.Error(), "no EC2 IMDS role found"):
		return fmt.Sprintf("check the AWS credentials for s3://%s (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the provider's profile) and that they may use the bucket", b.bucket)
	}
	return ""
}
