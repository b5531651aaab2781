package objstore_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/leptonml/lepton/providers/aws/stsfake"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/leptonml/lepton/runtime/objstore"
	"github.com/leptonml/lepton/runtime/objstore/azblobfake"
	"github.com/leptonml/lepton/runtime/objstore/signed"
	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/leptonml/lepton/runtime/runstore/storetest"
)

// clearEnv keeps the developer's own cloud settings out of a test.
func clearEnv(t *testing.T) {
	for _, v := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS",
		"GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT",
		"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "AZURE_STORAGE_BLOB_ENDPOINT",
	} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// cloud is one object store fake on loopback with the environment that
// points the clouds' libraries at it, as the sandbox sets it.
type cloud struct {
	name   string
	url    func(bucket string) string // the run storage URL of a bucket
	bucket string                     // an existing bucket
	// expires: the fake refuses an expired signed URL.
	expires bool
}

// s3Tags records the bucket tags PUT to it: gofakes3 has no tagging, and
// reads PUT ?tagging as a second create.
type s3Tags struct {
	mu   sync.Mutex
	tags map[string]string // bucket: the request body
	next http.Handler
}

func (s *s3Tags) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, ok := r.URL.Query()["tagging"]; ok && r.Method == http.MethodPut {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.tags[strings.Trim(r.URL.Path, "/")] = string(b)
		s.mu.Unlock()
		return
	}
	s.next.ServeHTTP(w, r)
}

func startS3(t *testing.T) (cloud, *s3Tags) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLEPTONTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3-secret-never-shown")
	tags := &s3Tags{tags: map[string]string{}, next: gofakes3.New(s3mem.New()).Server()}
	srv := httptest.NewServer(tags)
	t.Cleanup(srv.Close)
	// The SDK reads the endpoint itself; the region defaults for a loopback one.
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.URL)
	// URLs are signed with a session from STS, never with the access key.
	sts := httptest.NewServer(stsfake.New())
	t.Cleanup(sts.Close)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	c := cloud{name: "s3", url: func(b string) string { return "s3://" + b }, bucket: "runs"}
	s, err := objstore.Open(context.Background(), "s3://runs", objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return c, tags
}

// serviceAccount writes a Google service account key (a fresh RSA key) and
// returns its path.
func serviceAccount(t *testing.T) string {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(k))})
	b, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "lepton-test",
		"client_email": "lepton@lepton-test.iam.gserviceaccount.com", "private_key": string(p), "private_key_id": "k1"})
	f := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// gcsCreates records the bodies of bucket inserts: fake-gcs-server drops
// a new bucket's labels.
type gcsCreates struct {
	mu     sync.Mutex
	bodies []string
	next   http.Handler
}

func (g *gcsCreates) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.TrimSuffix(r.URL.Path, "/") == "/storage/v1/b" {
		b, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.bodies = append(g.bodies, string(b))
		g.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(b)))
	}
	g.next.ServeHTTP(w, r)
}

func startGCS(t *testing.T) (cloud, *gcsCreates) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Signed URLs name the emulator's host, which fake-gcs-server serves
	// path-style (/BUCKET/OBJECT) as its public host.
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", NoListener: true, PublicHost: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	rec := &gcsCreates{next: srv.HTTPHandler()}
	hs := &http.Server{Handler: rec}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close(); srv.Stop() })
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "runs"})
	t.Setenv("STORAGE_EMULATOR_HOST", ln.Addr().String())
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", serviceAccount(t))
	return cloud{name: "gcs", url: func(b string) string { return "gs://" + b }, bucket: "runs"}, rec
}

func startAzure(t *testing.T) (cloud, *azblobfake.Server, *httptest.Server) {
	srv := azblobfake.New("leptonacct", azblobfake.NewKey())
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", srv.ConnectionString(ts.URL))
	c, err := azblob.NewClientFromConnectionString(srv.ConnectionString(ts.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateContainer(context.Background(), "runs", nil); err != nil {
		t.Fatal(err)
	}
	return cloud{name: "azure", url: func(b string) string { return "azblob://leptonacct/" + b }, bucket: "runs", expires: true}, srv, ts
}

// clouds starts the three fakes in the test's environment.
func clouds(t *testing.T) []cloud {
	clearEnv(t)
	s3c, _ := startS3(t)
	gcs, _ := startGCS(t)
	az, _, _ := startAzure(t)
	return []cloud{s3c, gcs, az}
}

func open(t *testing.T, rawURL string) *objstore.Store {
	t.Helper()
	s, err := objstore.Open(context.Background(), rawURL, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	for _, c := range clouds(t) {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			storetest.Run(t, func(t *testing.T) runstore.Store {
				// Each case gets its own prefix of the one bucket, so it starts empty.
				n++
				return open(t, fmt.Sprintf("%s/case-%d/of", c.url(c.bucket), n))
			})
		})
	}
}

func TestWhere(t *testing.T) {
	clearEnv(t)
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AZURE_STORAGE_KEY", azblobfake.NewKey())
	t.Setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:1")
	for _, tc := range []struct{ url, key, want string }{
		{"s3://bkt", "runs/r/log", "s3://bkt/runs/r/log"},
		{"s3://bkt/lepton/x/", "runs/r/log", "s3://bkt/lepton/x/runs/r/log"},
		{"gs://bkt/p", "a", "gs://bkt/p/a"},
		{"azblob://acct/cont/p/q", "a/b", "azblob://acct/cont/p/q/a/b"},
	} {
		if got := open(t, tc.url).Where(tc.key); got != tc.want {
			t.Errorf("%s Where(%q) = %q, want %q", tc.url, tc.key, got, tc.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	clearEnv(t)
	t.Setenv("AZURE_STORAGE_KEY", azblobfake.NewKey())
	for _, tc := range []struct{ url, want string }{
		{"bucket/prefix", "want s3://BUCKET/PREFIX"},
		{"ftp://bucket/x", `unknown scheme "ftp"`},
		{"s3://Bad_Bucket/x", `"Bad_Bucket" is not a bucket name`},
		{"s3://bkt/a/../b", "invalid key"},
		{"s3://bkt/x?versionId=1", "want s3://BUCKET/PREFIX"},
		{"azblob://acct", "the container is missing"},
		{"azblob://acct/Runs", "not a container name"},
		{"s3://bkt", "set AWS_REGION"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := objstore.Open(context.Background(), tc.url, objstore.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%q): %v, want an error with %q", tc.url, err, tc.want)
			}
		})
	}
	t.Run("connection string of another account", func(t *testing.T) {
		t.Setenv("AZURE_STORAGE_CONNECTION_STRING", azblobfake.New("other", azblobfake.NewKey()).ConnectionString("http://127.0.0.1:1"))
		_, err := objstore.Open(context.Background(), "azblob://acct/runs", objstore.Options{})
		if err == nil || !strings.Contains(err.Error(), `storage account "other", not "acct"`) {
			t.Fatalf("err %v", err)
		}
	})
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// TestSign: a URL signed for PUT uploads with plain net/http (through the
// agent's client), one signed for GET reads it back, and neither reaches
// another object.
func TestSign(t *testing.T) {
	ctx := context.Background()
	for _, c := range clouds(t) {
		t.Run(c.name, func(t *testing.T) {
			s := open(t, c.url(c.bucket)+"/lepton")
			body := []byte(strings.Repeat("model bytes ", 1000))
			put, err := s.Sign(ctx, "artifacts/m.lmodel", "PUT", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if put.Key != "artifacts/m.lmodel" || !strings.Contains(put.URL, "lepton/artifacts/m.lmodel") {
				t.Fatalf("signed PUT %+v", put)
			}
			if c.name == "azure" && put.Header["x-ms-blob-type"] != "BlockBlob" {
				t.Fatalf("an Azure PUT must carry x-ms-blob-type: %v", put.Header)
			}
			// No long-lived credential in a URL a node is given: S3 signs
			// with a session from STS.
			for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_KEY"} {
				if secret := os.Getenv(v); secret != "" && strings.Contains(put.URL, secret) {
					t.Fatalf("the signed URL holds %s", v)
				}
			}
			if c.name == "s3" && !strings.Contains(put.URL, "X-Amz-Security-Token=") {
				t.Fatalf("the S3 URL is not signed with a session: %s", signed.Redact(put.URL))
			}
			if err := signed.Put(ctx, nil, put, strings.NewReader(string(body)), int64(len(body))); err != nil {
				t.Fatal(err)
			}
			got, err := runstore.ReadAll(ctx, s, "artifacts/m.lmodel")
			if err != nil || string(got) != string(body) {
				t.Fatalf("the store reads %d bytes, %v", len(got), err)
			}
			get, err := s.Sign(ctx, "artifacts/m.lmodel", "GET", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			get.Digest = sum(body)
			if got, err := signed.Get(ctx, nil, get); err != nil || string(got) != string(body) {
				t.Fatalf("signed GET: %d bytes, %v", len(got), err)
			}
			get.Digest = sum([]byte("other"))
			if _, err := signed.Get(ctx, nil, get); err == nil || !strings.Contains(err.Error(), "digest") {
				t.Fatalf("GET with a wrong digest: %v", err)
			}
			missing, err := s.Sign(ctx, "runs/none/status.json", "GET", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := signed.Get(ctx, nil, missing); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("GET of a missing object: %v", err)
			}
			if c.expires {
				short, err := s.Sign(ctx, "artifacts/m.lmodel", "GET", time.Second)
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(1100 * time.Millisecond)
				_, err = signed.Get(ctx, nil, short)
				var se *signed.Error
				if !errors.As(err, &se) || se.Status != http.StatusForbidden || !strings.Contains(err.Error(), "expired") {
					t.Fatalf("GET with an expired URL: %v", err)
				}
				if strings.Contains(err.Error(), strings.SplitN(short.URL, "?", 2)[1]) || strings.Contains(err.Error(), "sig=") {
					t.Fatalf("the error shows the signature: %v", err)
				}
				// A URL signed for one object reaches no other.
				other := get
				other.Digest = ""
				other.URL = strings.Replace(get.URL, "m.lmodel", "n.lmodel", 1)
				if _, err := signed.Get(ctx, nil, other); err == nil {
					t.Fatal("a URL signed for one object read another")
				}
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	clearEnv(t)
	az, _, _ := startAzure(t)
	s := open(t, az.url(az.bucket))
	for _, tc := range []struct {
		key, method string
		ttl         time.Duration
		want        string
	}{
		{"k", "DELETE", time.Hour, "want GET or PUT"},
		{"k", "GET", 8 * 24 * time.Hour, "7 days"},
		{"k", "GET", 0, "7 days"},
		{"../k", "GET", time.Hour, "invalid key"},
	} {
		if _, err := s.Sign(context.Background(), tc.key, tc.method, tc.ttl); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Sign(%q, %s, %v): %v, want %q", tc.key, tc.method, tc.ttl, err, tc.want)
		}
	}
}

// TestEnsureBucket: a missing bucket is a clear error naming it, until
// EnsureBucket creates it with the labels.
func TestEnsureBucket(t *testing.T) {
	clearEnv(t)
	s3c, tags := startS3(t)
	gcs, gsrv := startGCS(t)
	az, asrv, ats := startAzure(t)
	ctx := context.Background()
	labels := map[string]string{"lepton-lineage": "3f2a"}
	if got := objstore.GCSLabel("Lepton Lineage/X"); got != "lepton_lineage_x" {
		t.Errorf("GCSLabel: %q", got)
	}
	for _, tc := range []struct {
		c     cloud
		check func(t *testing.T)
	}{
		{s3c, func(t *testing.T) {
			if b := tags.tags["fresh-bucket"]; !strings.Contains(b, "<Key>lepton-lineage</Key><Value>3f2a</Value>") {
				t.Fatalf("bucket tagging %q", b)
			}
		}},
		{gcs, func(t *testing.T) {
			gsrv.mu.Lock()
			defer gsrv.mu.Unlock()
			if len(gsrv.bodies) != 1 || !strings.Contains(gsrv.bodies[0], `"labels":{"lepton-lineage":"3f2a"}`) || !strings.Contains(gsrv.bodies[0], `"name":"fresh-bucket"`) {
				t.Fatalf("bucket inserts %q", gsrv.bodies)
			}
		}},
		{az, func(t *testing.T) {
			c := must(azblob.NewClientFromConnectionString(asrv.ConnectionString(ats.URL), nil))
			p, err := c.ServiceClient().NewContainerClient("fresh-bucket").GetProperties(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v := p.Metadata["Lepton_lineage"]; v == nil || *v != "3f2a" {
				t.Fatalf("container metadata %v", p.Metadata)
			}
		}},
	} {
		t.Run(tc.c.name, func(t *testing.T) {
			s := open(t, tc.c.url("fresh-bucket")+"/p")
			for _, op := range []func() error{
				func() error { _, err := runstore.ReadAll(ctx, s, "k"); return err },
				func() error { _, err := s.Stat(ctx, "k"); return err },
				func() error { _, err := s.List(ctx, ""); return err },
			} {
				err := op()
				if err == nil || errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "fresh-bucket") {
					t.Fatalf("before EnsureBucket: %v; want an error naming the missing bucket", err)
				}
			}
			for i := 0; i < 2; i++ {
				if err := s.EnsureBucket(ctx, labels); err != nil {
					t.Fatal(err)
				}
			}
			tc.check(t)
			if err := runstore.PutBytes(ctx, s, "k", []byte("v")); err != nil {
				t.Fatal(err)
			}
			if b, err := runstore.ReadAll(ctx, s, "k"); err != nil || string(b) != "v" {
				t.Fatalf("%q %v", b, err)
			}
		})
	}
}

// TestBadCredentials: a refused key gives an error naming the store and
// what to set, and showing no key.
func TestBadCredentials(t *testing.T) {
	clearEnv(t)
	az, _, ts := startAzure(t)
	wrongKey := azblobfake.NewKey()
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", azblobfake.New("leptonacct", wrongKey).ConnectionString(ts.URL))
	s := open(t, az.url(az.bucket))
	_, err := s.Stat(context.Background(), "k")
	if err == nil || !strings.Contains(err.Error(), "azblob://leptonacct/runs/k") || !strings.Contains(err.Error(), "AZURE_STORAGE_CONNECTION_STRING") {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), wrongKey) {
		t.Fatalf("the error shows the key: %v", err)
	}
}

// TestConfigurations: each way the environment (or a provider block's
// Options) names a store reaches it; a large object goes through the
// paths that spool (S3) and stage blocks (Azure).
func TestConfigurations(t *testing.T) {
	clearEnv(t)
	s3c, _ := startS3(t)
	s3Endpoint := os.Getenv("AWS_ENDPOINT_URL_S3")
	gcs, _ := startGCS(t)
	az, asrv, ats := startAzure(t)
	big := strings.Repeat("0123456789abcdef", 9<<16) // 9 MiB
	for _, tc := range []struct {
		name string
		url  string
		o    objstore.Options
		env  map[string]string
	}{
		{"s3 endpoint from the environment", s3c.url(s3c.bucket) + "/env", objstore.Options{}, nil},
		{"s3 endpoint and region from options", s3c.url(s3c.bucket) + "/opts", objstore.Options{Endpoint: s3Endpoint, Region: "us-east-1"}, map[string]string{"AWS_ENDPOINT_URL_S3": ""}},
		{"gcs emulator", gcs.url(gcs.bucket) + "/env", objstore.Options{}, nil},
		{"azure connection string", az.url(az.bucket) + "/cs", objstore.Options{}, nil},
		{"azure key and endpoint", az.url(az.bucket) + "/key", objstore.Options{}, map[string]string{
			"AZURE_STORAGE_CONNECTION_STRING": "",
			"AZURE_STORAGE_KEY":               strings.TrimSuffix(strings.SplitN(asrv.ConnectionString(ats.URL), "AccountKey=", 2)[1], ";BlobEndpoint="+asrv.BlobEndpoint(ats.URL)+";"),
			"AZURE_STORAGE_BLOB_ENDPOINT":     asrv.BlobEndpoint(ats.URL),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			ctx := context.Background()
			s, err := objstore.Open(ctx, tc.url, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, "datasets/big.bin", strings.NewReader(big)); err != nil {
				t.Fatal(err)
			}
			in, err := s.Stat(ctx, "datasets/big.bin")
			if err != nil || in.Size != int64(len(big)) || in.ModTime.IsZero() {
				t.Fatalf("stat %+v, %v", in, err)
			}
			o, err := s.Sign(ctx, "datasets/big.bin", "GET", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			o.Digest = sum([]byte(big))
			if b, err := signed.Get(ctx, nil, o); err != nil || len(b) != len(big) {
				t.Fatalf("signed GET: %d bytes, %v", len(b), err)
			}
		})
	}
}

// TestS3NoCredentials: without credentials the error says what to set.
func TestS3NoCredentials(t *testing.T) {
	clearEnv(t)
	startS3(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	s := open(t, "s3://runs/p")
	_, err := s.Stat(context.Background(), "k")
	if err == nil || !strings.Contains(err.Error(), "s3://runs/p/k") || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("err %v", err)
	}
}
