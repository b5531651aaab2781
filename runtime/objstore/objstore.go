// Package objstore keeps a remote run's objects (dataset snapshots, run
// specs, node inboxes, statuses, logs, model artifacts, the agent binary) in
// a cloud object store, and signs the URLs that let a node agent read or
// write one object until they expire (runspec.Object).
//
// A run storage is named by a URL:
//
//	s3://BUCKET[/PREFIX]                   Amazon S3 (or an S3-compatible store)
//	gs://BUCKET[/PREFIX]                   Google Cloud Storage
//	azblob://ACCOUNT/CONTAINER[/PREFIX]    Azure Blob Storage
//
// Credentials and endpoints come from the environment exactly as the
// clouds' own tools take them, with no flag of lepton's:
//
//   - S3: the AWS SDK's default chain (AWS_PROFILE, AWS_ACCESS_KEY_ID and
//     AWS_SECRET_ACCESS_KEY, AWS_REGION, SSO, an instance role, ...) and
//     AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for another endpoint (a
//     loopback endpoint is addressed path-style).
//   - GCS: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS
//     or `gcloud auth application-default login`), STORAGE_EMULATOR_HOST for
//     an emulator, GOOGLE_CLOUD_PROJECT for the project a new bucket goes in.
//   - Azure: AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_KEY (the
//     account's key) with AZURE_STORAGE_BLOB_ENDPOINT for an endpoint other
//     than https://ACCOUNT.blob.core.windows.net/, or else Azure AD through
//     DefaultAzureCredential (az login, a managed identity, AZURE_CLIENT_ID...).
//
// Options carries what a provider block says instead (endpoint, region,
// profile, credentials file, project).
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/runstore"
)

// Options override what the environment says, for a provider block that
// names them. The zero value takes everything from the environment.
type Options struct {
	// Endpoint is the service's endpoint URL (an S3-compatible store, a GCS
	// emulator's JSON API, an Azure blob endpoint such as
	// http://127.0.0.1:10000/ACCOUNT).
	Endpoint string
	// Region is the AWS region of the bucket, or the location of a GCS
	// bucket EnsureBucket creates.
	Region string
	// Profile is the AWS shared config profile.
	Profile string
	// CredentialsFile is an AWS shared credentials file or a Google
	// credentials JSON (a service account key signs URLs itself).
	CredentialsFile string
	// Project is the Google Cloud project a new bucket is created in.
	Project string
}

// MaxTTL is the longest a signed URL may live: S3's limit for SigV4 and
// GCS's for V4 signatures, and Azure's for a user delegation key.
const MaxTTL = 7 * 24 * time.Hour

// Store is one bucket (or container) and prefix. It implements
// runstore.Store and runstore.PrefixDeleter; it is safe for concurrent use.
type Store struct {
	b      backend
	scheme string // s3, gs or azblob
	root   string // BUCKET or ACCOUNT/CONTAINER
	prefix string // "" or ending with a slash
}

var (
	_           runstore.Store         = (*Store)(nil)
	_           runstore.PrefixDeleter = (*Store)(nil)
	errNotFound                        = fs.ErrNotExist
	errNoBucket                        = errors.New("the bucket does not exist")
)

// backend is one cloud's object API, on full keys (prefix included).
type backend interface {
	put(ctx context.Context, key string, r io.Reader) error
	// get and stat report a missing object with errNotFound and a missing
	// bucket with errNoBucket.
	get(ctx context.Context, key string) (io.ReadCloser, error)
	stat(ctx context.Context, key string) (runstore.Info, error)
	list(ctx context.Context, prefix string) ([]runstore.Info, error)
	// del removes key; a missing object is no error.
	del(ctx context.Context, key string) error
	sign(ctx context.Context, key, method string, ttl time.Duration) (string, map[string]string, error)
	ensure(ctx context.Context, labels map[string]string) error
	// hint says what to set when err is a refusal of credentials ("" when
	// it is not one).
	hint(err error) string
}

// Open returns the store rawURL names (see the package comment for the
// forms). It checks the URL and builds the client; it does not contact the
// service, so a missing bucket shows at the first request (or use
// EnsureBucket).
func Open(ctx context.Context, rawURL string, o Options) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("run storage %q: want s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or azblob://ACCOUNT/CONTAINER/PREFIX", rawURL)
	}
	s := &Store{scheme: u.Scheme, root: u.Host}
	p := strings.Trim(u.Path, "/")
	switch u.Scheme {
	case "s3", "gs":
		if !validBucket(u.Host) {
			return nil, fmt.Errorf("run storage %q: %q is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens)", rawURL, u.Host)
		}
	case "azblob":
		cont, rest, _ := strings.Cut(p, "/")
		if cont == "" {
			return nil, fmt.Errorf("run storage %q: want azblob://ACCOUNT/CONTAINER/PREFIX (the container is missing)", rawURL)
		}
		if !validBucket(cont) || strings.Contains(cont, ".") {
			return nil, fmt.Errorf("run storage %q: %q is not a container name (3 to 63 lowercase letters, digits and hyphens)", rawURL, cont)
		}
		s.root, p = u.Host+"/"+cont, rest
	default:
		return nil, fmt.Errorf("run storage %q: unknown scheme %q; want s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or azblob://ACCOUNT/CONTAINER/PREFIX", rawURL, u.Scheme)
	}
	if p != "" {
		if err := runstore.CheckKey(p); err != nil {
			return nil, fmt.Errorf("run storage %q: the prefix: %w", rawURL, err)
		}
		s.prefix = p + "/"
	}
	switch u.Scheme {
	case "s3":
		s.b, err = openS3(ctx, u.Host, o)
	case "gs":
		s.b, err = openGCS(ctx, u.Host, o)
	case "azblob":
		s.b, err = openAzure(ctx, u.Host, strings.TrimPrefix(s.root, u.Host+"/"), o)
	}
	if err != nil {
		return nil, fmt.Errorf("run storage %s: %w", s.Where(""), err)
	}
	return s, nil
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (c == '-' || c == '.') && i > 0 && i < len(b)-1
		if !ok {
			return false
		}
	}
	return true
}

// isLoopback reports whether endpoint (a URL or host:port) is on this
// machine: an emulator, addressed path-style.
func isLoopback(endpoint string) bool {
	if endpoint == "" {
		return false
	}
	host := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		host = u.Host
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Where is the object's URL: s3://BUCKET/PREFIX/KEY, gs://... or
// azblob://ACCOUNT/CONTAINER/PREFIX/KEY.
func (s *Store) Where(key string) string { return s.scheme + "://" + s.root + "/" + s.prefix + key }

func (s *Store) bucketURL() string { return s.scheme + "://" + s.root }

// fail wraps an error of op on key with what the user should do about it.
func (s *Store) fail(op, key string, err error) error {
	switch {
	case errors.Is(err, errNotFound):
		return &fs.PathError{Op: op, Path: s.Where(key), Err: fs.ErrNotExist}
	case errors.Is(err, errNoBucket):
		what := "bucket"
		if s.scheme == "azblob" {
			what = "container"
		}
		return fmt.Errorf("%s %s: the %s %s does not exist: create it, or name one that exists in the provider's run storage URL: %w", op, s.Where(key), what, s.bucketURL(), err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s: %w", op, s.Where(key), err)
	}
	if h := s.b.hint(err); h != "" {
		return fmt.Errorf("%s %s: access refused: %s: %w", op, s.Where(key), h, err)
	}
	return fmt.Errorf("%s %s: %w", op, s.Where(key), err)
}

// Put uploads r whole as the object at key; readers see the old object or
// the new one, and a failed upload leaves the old one.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	if err := runstore.CheckKey(key); err != nil {
		return err
	}
	if err := s.b.put(ctx, s.prefix+key, ctxReader{ctx, r}); err != nil {
		return s.fail("put", key, err)
	}
	return nil
}

// Get opens the object at key.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := runstore.CheckKey(key); err != nil {
		return nil, err
	}
	rc, err := s.b.get(ctx, s.prefix+key)
	if err != nil {
		return nil, s.fail("open", key, err)
	}
	return rc, nil
}

// Stat describes the object at key.
func (s *Store) Stat(ctx context.Context, key string) (runstore.Info, error) {
	if err := runstore.CheckKey(key); err != nil {
		return runstore.Info{}, err
	}
	in, err := s.b.stat(ctx, s.prefix+key)
	if err != nil {
		return runstore.Info{}, s.fail("stat", key, err)
	}
	in.Key = key
	return in, nil
}

// List returns the objects whose keys start with prefix, sorted by key.
func (s *Store) List(ctx context.Context, prefix string) ([]runstore.Info, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	infos, err := s.b.list(ctx, s.prefix+prefix)
	if err != nil {
		return nil, s.fail("list", prefix, err)
	}
	for i := range infos {
		infos[i].Key = strings.TrimPrefix(infos[i].Key, s.prefix)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	return infos, nil
}

// checkPrefix is runstore's rule for a List prefix: empty, or a key that
// may end with a slash.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := runstore.CheckKey(strings.TrimSuffix(prefix, "/")); err != nil || prefix == "/" {
		if err == nil {
			err = fmt.Errorf("%w %q", runstore.ErrInvalidKey, prefix)
		}
		return fmt.Errorf("prefix: %w", err)
	}
	return nil
}

// Delete removes the object at key; a missing object is no error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := runstore.CheckKey(key); err != nil {
		return err
	}
	if err := s.b.del(ctx, s.prefix+key); err != nil {
		return s.fail("delete", key, err)
	}
	return nil
}

// DeletePrefix removes every object whose key starts with prefix, a few
// at a time.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	infos, err := s.List(ctx, prefix)
	if err != nil {
		return err
	}
	const parallel = 8
	sem := make(chan struct{}, parallel)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, in := range infos {
		sem <- struct{}{}
		wg.Add(1)
		go func(key string) {
			defer func() { <-sem; wg.Done() }()
			if err := s.Delete(ctx, key); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}(in.Key)
	}
	wg.Wait()
	return first
}

// Append returns a writer whose bytes are added to the object at key when
// it is closed: an object store has no append, so the object is read, and
// written back whole on Close.
func (s *Store) Append(ctx context.Context, key string) (io.WriteCloser, error) {
	if err := runstore.CheckKey(key); err != nil {
		return nil, err
	}
	var old []byte
	rc, err := s.Get(ctx, key)
	switch {
	case err == nil:
		old, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, s.fail("read", key, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	return &appender{ctx: ctx, s: s, key: key, buf: old}, nil
}

type appender struct {
	ctx    context.Context
	s      *Store
	key    string
	mu     sync.Mutex
	buf    []byte
	closed bool
}

func (a *appender) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, fs.ErrClosed
	}
	a.buf = append(a.buf, p...)
	return len(p), nil
}

func (a *appender) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return fs.ErrClosed
	}
	a.closed = true
	return a.s.Put(a.ctx, a.key, strings.NewReader(string(a.buf)))
}

// Sign returns a URL that lets its holder GET or PUT (method) the object at
// key for ttl, and no other object: an S3 presigned URL (SigV4), a GCS V4
// signed URL, or an Azure service SAS (user delegation SAS with Azure AD).
// Object.Header holds what the request must carry. The URL is a bearer
// secret: never log it.
func (s *Store) Sign(ctx context.Context, key, method string, ttl time.Duration) (runspec.Object, error) {
	if err := runstore.CheckKey(key); err != nil {
		return runspec.Object{}, err
	}
	if method != "GET" && method != "PUT" {
		return runspec.Object{}, fmt.Errorf("sign %s: method %q: want GET or PUT", s.Where(key), method)
	}
	if ttl <= 0 || ttl > MaxTTL {
		return runspec.Object{}, fmt.Errorf("sign %s: a signed URL lives from 1s to 7 days, not %v", s.Where(key), ttl)
	}
	u, h, err := s.b.sign(ctx, s.prefix+key, method, ttl)
	if err != nil {
		return runspec.Object{}, s.fail("sign", key, err)
	}
	return runspec.Object{Key: key, URL: u, Header: h}, nil
}

// EnsureBucket creates the bucket (or container) when it does not exist,
// labelled (GCS), tagged (S3) or with metadata (Azure, where a hyphen in a
// name becomes an underscore) from labels, such as lepton-lineage. A
// bucket that exists is left as it is.
func (s *Store) EnsureBucket(ctx context.Context, labels map[string]string) error {
	if err := s.b.ensure(ctx, labels); err != nil {
		return s.fail("create", "", fmt.Errorf("creating %s: %w", s.bucketURL(), err))
	}
	return nil
}

// ctxReader stops reading when ctx ends, so an upload of a reader that
// blocks is cancelled with its context.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
