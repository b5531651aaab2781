package data

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/leptonml/lepton/runtime/data/source"
)

const objCSV = "x,y\n1,a\n2,b\n3,a\n"

// checkObject loads the object, compares the digest with Fingerprint, then
// rewrites the object with put and expects a new fingerprint.
func checkObject(t *testing.T, url string, opts source.Options, put func(content string)) {
	t.Helper()
	ctx := context.Background()
	spec := Spec{Source: Source{Object: url}, Label: "y", Options: opts}
	ds := load(t, spec)
	if ds.Rows != 3 || len(ds.Classes) != 2 || ds.Train.X[2] != 3 {
		t.Fatalf("rows %d classes %v X %v", ds.Rows, ds.Classes, ds.Train.X)
	}
	fp, err := Fingerprint(ctx, spec)
	if err != nil || fp != ds.Digest {
		t.Fatalf("Fingerprint %s (%v) != digest %s", fp, err, ds.Digest)
	}
	put(objCSV + "4,b\n")
	fp2, err := Fingerprint(ctx, spec)
	if err != nil || fp2 == fp {
		t.Fatalf("a rewritten object kept the fingerprint (%v)", err)
	}
	if ds2 := load(t, spec); ds2.Digest != fp2 || ds2.Rows != 4 {
		t.Fatalf("after rewrite: digest %s rows %d", ds2.Digest, ds2.Rows)
	}
	missing := url[:strings.LastIndex(url, "/")] + "/missing.csv"
	if _, err := Load(ctx, Spec{Source: Source{Object: missing}, Options: opts}); err == nil || !strings.Contains(err.Error(), "object "+missing+": not found") {
		t.Fatalf("missing object: %v", err)
	}
	if _, err := Fingerprint(ctx, Spec{Source: Source{Object: missing}, Options: opts}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing object fingerprint: %v", err)
	}
}

func TestObjectS3(t *testing.T) {
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	defer srv.Close()
	// The SDK's default chain, fed from the environment only.
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("LEPTON_S3_ENDPOINT", srv.URL)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(srv.URL); o.UsePathStyle = true })
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("data")}); err != nil {
		t.Fatal(err)
	}
	put := func(content string) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/d.csv"), Body: strings.NewReader(content)}); err != nil {
			t.Fatal(err)
		}
	}
	put(objCSV)
	checkObject(t, "s3://data/dir/d.csv", source.Options{}, put)
}

func TestObjectGCS(t *testing.T) {
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1",
		InitialObjects: []fakestorage.Object{{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "data", Name: "dir/d.csv"}, Content: []byte(objCSV)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	put := func(content string) {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "data", Name: "dir/d.csv"}, Content: []byte(content)})
	}
	checkObject(t, "gs://data/dir/d.csv", source.Options{GCSEndpoint: srv.URL() + "/storage/v1/"}, put)
}

// azuriteConn returns Azurite's connection string (.ci/setup-azurite.sh);
// without it the test fails under CI and is skipped elsewhere.
func azuriteConn(t *testing.T) string {
	cs := os.Getenv("LEPTON_TEST_AZURITE_CONNECTION_STRING")
	if cs == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("LEPTON_TEST_AZURITE_CONNECTION_STRING is not set; run eval \"$(.ci/setup-azurite.sh)\"")
		}
		t.Skip("LEPTON_TEST_AZURITE_CONNECTION_STRING is not set (eval \"$(.ci/setup-azurite.sh)\" to run this test)")
	}
	return cs
}

func TestObjectAzure(t *testing.T) {
	cs := azuriteConn(t)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", cs)
	ctx := context.Background()
	c, err := azblob.NewClientFromConnectionString(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	container := "lepton-data-test"
	if _, err := c.CreateContainer(ctx, container, nil); err != nil && !strings.Contains(err.Error(), "ContainerAlreadyExists") {
		t.Fatalf("create container (is Azurite running?): %v", err)
	}
	put := func(content string) {
		if _, err := c.UploadStream(ctx, container, "dir/d.csv", bytes.NewReader([]byte(content)), nil); err != nil {
			t.Fatal(err)
		}
	}
	put(objCSV)
	checkObject(t, "az://devstoreaccount1/"+container+"/dir/d.csv", source.Options{}, put)
}

func TestObjectURLs(t *testing.T) {
	for _, u := range []string{"s3://bucket", "ftp://x/y", "az://account/container", "gs:///key"} {
		if _, err := Fingerprint(context.Background(), Spec{Source: Source{Object: u}}); err == nil || !strings.Contains(err.Error(), "want s3://bucket/key") {
			t.Errorf("%s: %v", u, err)
		}
	}
}
