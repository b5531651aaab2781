package local_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/zclconf/go-cty/cty"

	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/local"
	"github.com/leptonml/lepton/runtime/objstore"
	"github.com/leptonml/lepton/runtime/objstore/azblobfake"
	"github.com/leptonml/lepton/runtime/runstore"
)

// objectCloud is one object store fake on loopback, with the environment
// that points runtime/objstore at it (as lepton-sandbox sets it).
type objectCloud struct {
	name  string // the provider block's name: aws, gcp, azure
	root  string // a URL of an existing bucket or container
	store func(t *testing.T) runstore.Store
}

// startObjectClouds starts gofakes3, fake-gcs-server and azblobfake, each
// with a bucket (container) "runs".
func startObjectClouds(t *testing.T) []objectCloud {
	t.Helper()
	for _, v := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST",
		"GOOGLE_CLOUD_PROJECT", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "AZURE_STORAGE_BLOB_ENDPOINT",
	} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := context.Background()
	open := func(u string) func(t *testing.T) runstore.Store {
		return func(t *testing.T) runstore.Store {
			s, err := objstore.Open(ctx, u, objstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}

	// S3
	s3 := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(s3.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLEPTONTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3-secret-never-shown")
	t.Setenv("AWS_ENDPOINT_URL_S3", s3.URL)
	s, err := objstore.Open(ctx, "s3://runs", objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(ctx, nil); err != nil {
		t.Fatal(err)
	}

	// GCS: signed URLs name the emulator's host, which fake-gcs-server
	// serves path-style as its public host.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", NoListener: true, PublicHost: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: gcs.HTTPHandler()}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close(); gcs.Stop() })
	gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "runs"})
	t.Setenv("STORAGE_EMULATOR_HOST", ln.Addr().String())
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", serviceAccount(t))

	// Azure
	az := azblobfake.New("leptonacct", azblobfake.NewKey())
	azs := httptest.NewServer(az)
	t.Cleanup(azs.Close)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", az.ConnectionString(azs.URL))
	ac, err := azblob.NewClientFromConnectionString(az.ConnectionString(azs.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.CreateContainer(ctx, "runs", nil); err != nil {
		t.Fatal(err)
	}
	return []objectCloud{
		{"aws", "s3://runs", open("s3://runs")},
		{"gcp", "gs://runs", open("gs://runs")},
		{"azure", "azblob://leptonacct/runs", open("azblob://leptonacct/runs")},
	}
}

// serviceAccount writes a Google service account key (a fresh RSA key),
// which signs GCS URLs itself, and returns its path.
func serviceAccount(t *testing.T) string {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "lepton-test",
		"client_email": "lepton@lepton-test.iam.gserviceaccount.com", "private_key_id": "k1",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))})
	f := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// decodeResource decodes the arguments of resource addr in src, with
// every reference to a resource resolved to that resource (its id).
func decodeResource(t *testing.T, dir, src, addr string) cty.Value {
	t.Helper()
	cfg, d := lang.LoadSources(dir, []string{"main.lep.hcl"}, map[string][]byte{"main.lep.hcl": []byte(src)})
	if d.HasErrors() {
		t.Fatal(d)
	}
	s := lang.NewScope(cfg, nil)
	for _, rb := range cfg.Resources {
		if rb.Addr.String() != addr {
			continue
		}
		refs, _ := cfg.ResourceRefs(rb)
		v, d := s.DecodeResource(rb, s.EvalContext(refs, func(r lang.Reference) cty.Value {
			return cty.ObjectVal(map[string]cty.Value{"id": cty.StringVal(r.Resource.String())})
		}, nil))
		if d.HasErrors() {
			t.Fatal(d)
		}
		return v
	}
	t.Fatalf("no %s in the configuration", addr)
	return cty.NilVal
}

// world is a working directory with an applied dataset and training (a
// model in the artifact store), for batch inferences to use.
type world struct {
	dir   string
	env   providers.Env
	p     *local.Provider
	state map[string]cty.Value
	model string
}

const worldSrc = `
dataset "d" {
  source {
    inline = { x1 = [0, 1, 2, 3, 4, 5, 6, 7], x2 = [1, 0, 1, 0, 1, 0, 1, 0], label = ["a", "b", "a", "b", "a", "b", "a", "b"] }
  }
  label = "label"
}

training "t" {
  dataset   = dataset.d
  objective = "classification"
  model {
    kind = "linear"
  }
  epochs     = 2
  batch_size = 4
  seed       = 1
}
`

func newWorld(t *testing.T) *world {
	t.Helper()
	dir := t.TempDir()
	w := &world{dir: dir, p: local.New(), state: map[string]cty.Value{}}
	w.env = providers.Env{Dir: dir, DataDir: filepath.Join(dir, ".lepton"), Lineage: "0b1c2d3e-aaaa-bbbb-cccc-000000000000",
		Lookup: func(a string) (cty.Value, bool) { v, ok := w.state[a]; return v, ok }}
	w.state["dataset.d"] = w.apply(t, "dataset.d", decodeResource(t, dir, worldSrc, "dataset.d"), nil)
	w.state["training.t"] = w.apply(t, "training.t", decodeResource(t, dir, worldSrc, "training.t"), nil)
	w.model = w.state["training.t"].GetAttr("model").AsString()
	return w
}

func (w *world) res(t *testing.T, kind string) providers.Resource {
	r, ok := w.p.Resource(kind)
	if !ok {
		t.Fatalf("no %s kind", kind)
	}
	return r
}

func stateType(kind string) cty.Type { return lang.Schemas()[kind].StateType() }

// plan plans addr's creation from cfg.
func (w *world) plan(t *testing.T, addr string, cfg cty.Value, priorPrivate []byte) (providers.PlanResponse, error) {
	kind, _, _ := strings.Cut(addr, ".")
	return w.res(t, kind).Plan(context.Background(), providers.PlanRequest{Address: addr, Prior: cty.NullVal(stateType(kind)), Config: cfg, PriorPrivate: priorPrivate, Env: w.env})
}

// apply plans and applies addr's creation, failing the test on an error.
func (w *world) apply(t *testing.T, addr string, cfg cty.Value, private []byte) cty.Value {
	t.Helper()
	v, err := w.tryApply(context.Background(), t, addr, cfg, private, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (w *world) tryApply(ctx context.Context, t *testing.T, addr string, cfg cty.Value, private []byte, record func(context.Context, []byte) error) (cty.Value, error) {
	t.Helper()
	kind, _, _ := strings.Cut(addr, ".")
	plan, err := w.plan(t, addr, cfg, private)
	if err != nil {
		t.Fatal(err)
	}
	if record == nil {
		record = func(context.Context, []byte) error { return nil }
	}
	return w.res(t, kind).Apply(ctx, providers.ApplyRequest{Address: addr, Prior: cty.NullVal(stateType(kind)), Planned: plan.Planned, Private: private, Record: record, Env: w.env})
}

func (w *world) read(t *testing.T, addr string, cur cty.Value) cty.Value {
	t.Helper()
	kind, _, _ := strings.Cut(addr, ".")
	v, err := w.res(t, kind).Read(context.Background(), providers.ReadRequest{Address: addr, Current: cur, Env: w.env})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func batchSrc(output, cluster string) string {
	s := worldSrc + "cluster \"gpu\" {}\n\nbatch_inference \"b\" {\n  model   = \"MODEL\"\n  dataset = dataset.d\n  output  = \"" + output + "\"\n"
	if cluster != "" {
		s += "  cluster = " + cluster + "\n"
	}
	return s + "}\n"
}

func (w *world) batchConfig(t *testing.T, output, cluster string) cty.Value {
	return decodeResource(t, w.dir, strings.Replace(batchSrc(output, cluster), "MODEL", w.model, 1), "batch_inference.b")
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func TestBatchOutputURLErrors(t *testing.T) {
	dir := t.TempDir()
	res, _ := local.New().Resource("batch_inference")
	env := providers.Env{Dir: dir, DataDir: filepath.Join(dir, ".lepton")}
	for _, tc := range []struct{ url, want string }{
		{"ftp://bkt/out.csv", `unknown scheme "ftp"`},
		{"s3://bkt", "the object's key is missing"},
		{"s3://bkt/", "the object's key is missing"},
		{"gs://bkt/preds/", "the object's key is missing"},
		{"s3://Bad_Bucket/out.csv", `"Bad_Bucket" is not a bucket name`},
		{"gs://b/out.csv", `"b" is not a bucket name`},
		{"s3://bkt/a/../out.csv", "the object's key"},
		{"s3://bkt/out.csv?versionId=3", "no user, query or fragment"},
		{"s3://user@bkt/out.csv", "no user, query or fragment"},
		{"azblob://acct/runs", "the object's key is missing"},
		{"azblob://acct/out.csv", `"out.csv" is not a container name`},
		{"azblob://Acct/c0ntainer/out.csv", `"Acct" is not a storage account name`},
		{"azblob://acct/Runs/out.csv", `"Runs" is not a container name`},
		{"azblob://acct/my.runs/out.csv", `"my.runs" is not a container name`},
		{"azure://acct/runs/out.csv", `unknown scheme "azure"`},
		{"az://acct/Runs/out.csv", `"Runs" is not a container name`},
		{"s3://bkt/%zz", "not a URL"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			cfg := decodeResource(t, dir, batchSrc(tc.url, ""), "batch_inference.b")
			cfg = cty.ObjectVal(map[string]cty.Value{"model": cty.StringVal(""), "dataset": cfg.GetAttr("dataset"), "output": cfg.GetAttr("output"), "cluster": cfg.GetAttr("cluster")})
			_, err := res.Plan(context.Background(), providers.PlanRequest{Address: "batch_inference.b", Prior: cty.NullVal(stateType("batch_inference")), Config: cfg, Env: env})
			var ae *providers.ArgError
			if !errors.As(err, &ae) || ae.Path != "output" {
				t.Fatalf("Plan: %v; want an error at output", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || !strings.Contains(msg, "s3://BUCKET/KEY") {
				t.Errorf("Plan: %q; want it to say %q and the forms", msg, tc.want)
			}
		})
	}
	// Good URLs and paths plan.
	for _, out := range []string{"out/p.csv", "/tmp/x/p.csv", "s3://my.bucket-1/a/b.csv", "gs://runs/p", "azblob://acct1/runs/deep/p.csv", "az://acct1/runs/p.csv"} {
		cfg := decodeResource(t, dir, batchSrc(out, ""), "batch_inference.b")
		cfg = cty.ObjectVal(map[string]cty.Value{"model": cty.StringVal(""), "dataset": cfg.GetAttr("dataset"), "output": cfg.GetAttr("output"), "cluster": cfg.GetAttr("cluster")})
		if _, err := res.Plan(context.Background(), providers.PlanRequest{Address: "batch_inference.b", Prior: cty.NullVal(stateType("batch_inference")), Config: cfg, Env: env}); err != nil {
			t.Errorf("Plan of output %q: %v", out, err)
		}
	}
}

// TestBatchObjectOutput writes predictions to each cloud's object store:
// the same bytes as a local file, a digest of them, a deleted object seen
// by refresh, and destroy deleting it.
func TestBatchObjectOutput(t *testing.T) {
	ctx := context.Background()
	clouds := startObjectClouds(t)
	w := newWorld(t)
	file := w.apply(t, "batch_inference.b", w.batchConfig(t, "out/p.csv", ""), nil)
	want, err := os.ReadFile(filepath.Join(w.dir, "out/p.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if file.GetAttr("digest").AsString() != sha(want) || !bytes.HasPrefix(want, []byte("id,prediction,p_a,p_b\n")) {
		t.Fatalf("file output: digest %s, content %q", file.GetAttr("digest").AsString(), want)
	}
	for _, c := range clouds {
		t.Run(c.name, func(t *testing.T) {
			url := c.root + "/preds/" + c.name + "/p.csv"
			got := w.apply(t, "batch_inference.b", w.batchConfig(t, url, ""), nil)
			if !got.GetAttr("digest").RawEquals(file.GetAttr("digest")) || !got.GetAttr("rows").RawEquals(cty.NumberIntVal(8)) {
				t.Errorf("object output: digest %#v rows %#v; want the file's %#v and 8 rows", got.GetAttr("digest"), got.GetAttr("rows"), file.GetAttr("digest"))
			}
			s := c.store(t)
			key := "preds/" + c.name + "/p.csv"
			b, err := runstore.ReadAll(ctx, s, key)
			if err != nil || !bytes.Equal(b, want) {
				t.Fatalf("object %s: %q, %v; want the file's bytes", url, b, err)
			}
			if v := w.read(t, "batch_inference.b", got); !v.RawEquals(got) {
				t.Errorf("refresh of an intact object: %#v", v)
			}
			// Changed, then deleted: refresh says gone (the plan writes it again).
			runstore.PutBytes(ctx, s, key, []byte("id,prediction\n"))
			if v := w.read(t, "batch_inference.b", got); !v.IsNull() {
				t.Errorf("refresh of a changed object: %#v, want gone", v)
			}
			s.Delete(ctx, key)
			if v := w.read(t, "batch_inference.b", got); !v.IsNull() {
				t.Errorf("refresh of a deleted object: %#v, want gone", v)
			}
			got = w.apply(t, "batch_inference.b", w.batchConfig(t, url, ""), nil)
			if err := w.res(t, "batch_inference").Delete(ctx, providers.DeleteRequest{Address: "batch_inference.b", Current: got, Env: w.env}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after destroy, the object: %v", err)
			}
			// Destroying again (the object already gone) is no error.
			if err := w.res(t, "batch_inference").Delete(ctx, providers.DeleteRequest{Address: "batch_inference.b", Current: got, Env: w.env}); err != nil {
				t.Errorf("second Delete: %v", err)
			}
		})
	}
	t.Run("az alias", func(t *testing.T) {
		got := w.apply(t, "batch_inference.b", w.batchConfig(t, "az://leptonacct/runs/alias.csv", ""), nil)
		b, err := runstore.ReadAll(ctx, clouds[2].store(t), "alias.csv")
		if err != nil || !bytes.Equal(b, want) || !got.GetAttr("digest").RawEquals(file.GetAttr("digest")) {
			t.Errorf("az://: %q, %v", b, err)
		}
	})
	t.Run("missing bucket", func(t *testing.T) {
		_, err := w.tryApply(ctx, t, "batch_inference.b", w.batchConfig(t, "s3://nobucket/p.csv", ""), nil, nil)
		if err == nil || !strings.Contains(err.Error(), "s3://nobucket") {
			t.Errorf("apply to a missing bucket: %v", err)
		}
	})
}
