package sandbox

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leptonml/lepton/runtime/objstore"
)

// The sandbox's object stores work for lepton's run storage with nothing
// but the exported environment, and their signed URLs work as plain GET and
// PUT requests, the way a node's agent uses them.
func TestObjectStoresThroughTheEnvironment(t *testing.T) {
	sb, err := Start(context.Background(), Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for _, kv := range sb.Env() {
		t.Setenv(kv[0], kv[1])
	}
	home := t.TempDir()
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, u := range []string{"s3://lepton-runs/p", "gs://lepton-runs/p", "azblob://" + AzureAccount + "/lepton-runs/p"} {
		st, err := objstore.Open(ctx, u, objstore.Options{})
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if err := st.EnsureBucket(ctx, map[string]string{"lepton-lineage": "abc"}); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		// Written first by the SDK (with its checksum), then over through
		// the signed URL (without one): reads after see the new body, with
		// no stale checksum.
		if err := st.Put(ctx, "runs/r1/status.json", strings.NewReader(`{"state": "runn`)); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		put, err := st.Sign(ctx, "runs/r1/status.json", "PUT", time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if !strings.Contains(put.URL, "127.0.0.1") {
			t.Errorf("%s: a signed URL off loopback: %s", u, put.URL)
		}
		for _, kv := range sb.Env() {
			if strings.Contains(kv[0], "KEY") && strings.Contains(put.URL, kv[1]) {
				t.Errorf("%s: the signed URL holds the sandbox's %s: %s", u, kv[0], put.URL)
			}
		}
		body := []byte(`{"state":"running"}`)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, put.URL, bytes.NewReader(body))
		for k, v := range put.Header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s: signed PUT: %d %s", u, resp.StatusCode, msg)
		}
		get, err := st.Sign(ctx, "runs/r1/status.json", "GET", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		resp, err = http.Get(get.URL)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, body) {
			t.Errorf("%s: signed GET: %d %q", u, resp.StatusCode, got)
		}
		r, err := st.Get(ctx, "runs/r1/status.json")
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		got, err = io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%s: Get after a signed PUT: %q, %v", u, got, err)
		}
	}
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sb.cfg.Dir, "sandbox.json")); !os.IsNotExist(err) {
		t.Errorf("sandbox.json left after Close: %v", err)
	}
}
