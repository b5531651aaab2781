// Package s3 keeps lepton's state in an S3 object, as Terraform's s3 backend
// with use_lockfile: the lock is an object "<key>.tflock" created with
// If-None-Match: *, so only one writer can create it; state writes are
// conditional on the ETag that was checked (If-Match). Credentials come from
// the AWS SDK's default chain (environment, shared files, instance role).
package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/state/remote"
)

// Keys are the settings the s3 backend takes.
var (
	Required = []string{"bucket", "key"}
	Optional = []string{"region", "endpoint", "use_path_style", "profile", "use_lockfile", "encrypt"}
)

const (
	metaLineage = "lepton-lineage"
	metaSerial  = "lepton-serial"
)

// New returns the s3 backend for settings.
func New(ctx context.Context, s remote.Settings) (state.Backend, error) {
	if err := s.Check("s3", Required, Optional...); err != nil {
		return nil, err
	}
	if lf, err := s.Bool("use_lockfile", true); err != nil || !lf {
		return nil, fmt.Errorf("the s3 backend always locks with a lock object: use_lockfile must be true (or left out)")
	}
	endpoint := s["endpoint"]
	pathStyle, err := s.Bool("use_path_style", endpoint != "")
	if err != nil {
		return nil, err
	}
	sse, err := s.Bool("encrypt", false)
	if err != nil {
		return nil, err
	}
	var opts []func(*config.LoadOptions) error
	if r := s["region"]; r != "" {
		opts = append(opts, config.WithRegion(r))
	}
	if p := s["profile"]; p != "" {
		opts = append(opts, config.WithSharedConfigProfile(p))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 backend: loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		if endpoint == "" {
			return nil, fmt.Errorf("the s3 backend needs a region: set region in the backend block or AWS_REGION in the environment")
		}
		cfg.Region = "us-east-1" // any region signs requests to a custom endpoint
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = pathStyle
	})
	st := &store{c: client, bucket: s["bucket"], key: s["key"], sse: sse}
	return remote.New(st), nil
}

type store struct {
	c           *s3.Client
	bucket, key string
	sse         bool
}

func (s *store) String() string    { return "s3://" + s.bucket + "/" + s.key }
func (s *store) lockKey() string   { return s.key + ".tflock" }
func (s *store) backupKey() string { return s.key + ".backup" }

func (s *store) Get(ctx context.Context) ([]byte, error) {
	b, _, err := s.get(ctx, s.key)
	return b, err
}

// get returns an object's content and ETag, or nil when it does not exist.
func (s *store) get(ctx context.Context, key string) ([]byte, string, error) {
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if notFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", err
	}
	return b, aws.ToString(out.ETag), nil
}

func (s *store) Stat(ctx context.Context) (*state.Meta, string, error) {
	out, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &s.key})
	if notFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	etag := aws.ToString(out.ETag)
	serial, perr := strconv.ParseUint(out.Metadata[metaSerial], 10, 64)
	if lin := out.Metadata[metaLineage]; lin != "" && perr == nil {
		return &state.Meta{Lineage: lin, Serial: serial}, etag, nil
	}
	// Written by something else (state uploaded by hand): read it.
	b, etag, err := s.get(ctx, s.key)
	if err != nil || b == nil {
		return nil, "", err
	}
	m, err := state.ReadMeta(bytes.NewReader(b))
	if err != nil {
		return nil, "", err
	}
	return &m, etag, nil
}

func (s *store) Put(ctx context.Context, b []byte, m state.Meta, version string) error {
	in := &s3.PutObjectInput{Bucket: &s.bucket, Key: &s.key, Body: bytes.NewReader(b), ContentType: aws.String("application/json"),
		Metadata: map[string]string{metaLineage: m.Lineage, metaSerial: strconv.FormatUint(m.Serial, 10)}}
	if version == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(version)
	}
	if s.sse {
		in.ServerSideEncryption = types.ServerSideEncryptionAes256
	}
	_, err := s.c.PutObject(ctx, in)
	if preconditionFailed(err) {
		return remote.ErrConflict
	}
	return err
}

func (s *store) Backup(ctx context.Context, version string) error {
	_, err := s.c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &s.bucket, Key: aws.String(s.backupKey()),
		CopySource: aws.String(url.PathEscape(s.bucket) + "/" + url.PathEscape(s.key))})
	return err
}

func (s *store) TryLock(ctx context.Context, info state.LockInfo) (*state.LockInfo, error) {
	b, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	for {
		_, err = s.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(s.lockKey()), Body: bytes.NewReader(b),
			ContentType: aws.String("application/json"), IfNoneMatch: aws.String("*")})
		if err == nil {
			return nil, nil
		}
		if !preconditionFailed(err) {
			return nil, err
		}
		holder, err := s.readLock(ctx)
		if err != nil {
			return nil, err
		}
		if holder != nil {
			return holder, nil
		}
		// Released between the two calls: try again.
	}
}

func (s *store) readLock(ctx context.Context) (*state.LockInfo, error) {
	b, _, err := s.get(ctx, s.lockKey())
	if err != nil || b == nil {
		return nil, err
	}
	var info state.LockInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("the lock object %s is not lepton's: %w", s.lockKey(), err)
	}
	return &info, nil
}

func (s *store) Unlock(ctx context.Context, info state.LockInfo) error {
	return s.ForceUnlock(ctx, info.ID)
}

func (s *store) ForceUnlock(ctx context.Context, id string) error {
	holder, err := s.readLock(ctx)
	if err != nil {
		return err
	}
	if holder == nil {
		return remote.ErrNotLocked
	}
	if holder.ID != id {
		return remote.Mismatch(id, holder.ID)
	}
	_, err = s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.lockKey())})
	return err
}

// notFound reports a missing object (a missing bucket is an error).
func notFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket" {
		return false
	}
	return errors.As(err, &nsk) || errors.As(err, &nf) || status(err) == http.StatusNotFound
}

func preconditionFailed(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "PreconditionFailed" || ae.ErrorCode() == "ConditionalRequestConflict") {
		return true
	}
	return status(err) == http.StatusPreconditionFailed || status(err) == http.StatusConflict
}

func status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
