package azblobfake_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/leptonml/lepton/runtime/objstore/azblobfake"
)

const account = "leptonacct"

func start(t *testing.T) (*azblobfake.Server, *httptest.Server, *azblob.Client) {
	t.Helper()
	srv := azblobfake.New(account, azblobfake.NewKey())
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	c, err := azblob.NewClientFromConnectionString(srv.ConnectionString(ts.URL), noRetry())
	if err != nil {
		t.Fatal(err)
	}
	return srv, ts, c
}

func noRetry() *azblob.ClientOptions {
	return &azblob.ClientOptions{ClientOptions: policy.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}}
}

func TestSDK(t *testing.T) {
	srv, _, c := start(t)
	ctx := context.Background()
	if _, err := c.CreateContainer(ctx, "runs", &azblob.CreateContainerOptions{Metadata: map[string]*string{"lepton_lineage": to.Ptr("abc")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateContainer(ctx, "runs", nil); !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		t.Fatalf("second create: %v, want ContainerAlreadyExists", err)
	}
	props, err := c.ServiceClient().NewContainerClient("runs").GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := props.Metadata["Lepton_lineage"]; v == nil || *v != "abc" {
		t.Fatalf("container metadata %v", props.Metadata)
	}

	// Put Blob, then a stream of several blocks replacing another blob.
	if _, err := c.UploadBuffer(ctx, "runs", "runs/a/status.json", []byte(`{"state":"running"}`), nil); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320000 bytes: 5 blocks of 64 KiB
	if _, err := c.UploadStream(ctx, "runs", "datasets/x.bin", bytes.NewReader(big), &azblob.UploadStreamOptions{BlockSize: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(big))
	if n, err := c.DownloadBuffer(ctx, "runs", "datasets/x.bin", got, &blob.DownloadBufferOptions{BlockSize: 50000, Concurrency: 3}); err != nil || n != int64(len(big)) || !bytes.Equal(got, big) {
		t.Fatalf("download of the block blob: %d bytes, %v; equal %v", n, err, bytes.Equal(got, big))
	}
	resp, err := c.DownloadStream(ctx, "runs", "datasets/x.bin", &azblob.DownloadStreamOptions{Range: azblob.HTTPRange{Offset: 10, Count: 6}})
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(part) != "abcdef" || *resp.ContentLength != 6 {
		t.Fatalf("range read %q", part)
	}
	bc := c.ServiceClient().NewContainerClient("runs").NewBlobClient("datasets/x.bin")
	bp, err := bc.GetProperties(ctx, nil)
	if err != nil || *bp.ContentLength != int64(len(big)) || *bp.BlobType != blob.BlobTypeBlockBlob {
		t.Fatalf("properties %+v, %v", bp, err)
	}

	// Listing with a prefix, in pages.
	for _, k := range []string{"runs/a/log", "runs/b/log", "runs/ab/log"} {
		if _, err := c.UploadBuffer(ctx, "runs", k, []byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	pages := 0
	pager := c.NewListBlobsFlatPager("runs", &azblob.ListBlobsFlatOptions{Prefix: to.Ptr("runs/a"), MaxResults: to.Ptr(int32(2))})
	for pager.More() {
		p, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, b := range p.Segment.BlobItems {
			names = append(names, *b.Name)
			if *b.Name == "runs/a/log" && *b.Properties.ContentLength != int64(len("runs/a/log")) {
				t.Errorf("listed size %d", *b.Properties.ContentLength)
			}
		}
	}
	if strings.Join(names, " ") != "runs/a/log runs/a/status.json runs/ab/log" || pages != 2 {
		t.Fatalf("listed %q in %d pages", names, pages)
	}

	if _, err := c.DeleteBlob(ctx, "runs", "runs/a/log", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBlob(ctx, "runs", "runs/a/log", nil); !bloberror.HasCode(err, bloberror.BlobNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := c.DownloadStream(ctx, "runs", "runs/a/log", nil); !bloberror.HasCode(err, bloberror.BlobNotFound) {
		t.Fatalf("get of a deleted blob: %v", err)
	}
	if _, err := bc.GetProperties(ctx, &blob.GetPropertiesOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := srv.Blobs("runs", "runs/"); strings.Join(got, " ") != "runs/a/status.json runs/ab/log runs/b/log" {
		t.Fatalf("Blobs: %q", got)
	}
	if _, err := c.DeleteContainer(ctx, "runs", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadBuffer(ctx, "runs", "k", nil, nil); !bloberror.HasCode(err, bloberror.ContainerNotFound) {
		t.Fatalf("upload to a deleted container: %v", err)
	}
	if len(srv.Containers()) != 0 {
		t.Fatalf("containers left: %q", srv.Containers())
	}
}

func TestConditionalPut(t *testing.T) {
	_, _, c := start(t)
	ctx := context.Background()
	if _, err := c.CreateContainer(ctx, "c1x", nil); err != nil {
		t.Fatal(err)
	}
	bb := c.ServiceClient().NewContainerClient("c1x").NewBlockBlobClient("k")
	any := azcore.ETagAny
	onlyNew := &blockblob.UploadOptions{AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &any}}}
	if _, err := bb.Upload(ctx, nopSeeker("one"), onlyNew); err != nil {
		t.Fatal(err)
	}
	if _, err := bb.Upload(ctx, nopSeeker("two"), onlyNew); !bloberror.HasCode(err, bloberror.ConditionNotMet) {
		t.Fatalf("If-None-Match: * on an existing blob: %v", err)
	}
}

func nopSeeker(s string) *nopCloser { return &nopCloser{strings.NewReader(s)} }

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// TestAuth: requests signed with another key, expired or tampered SAS URLs
// and anonymous requests are refused with the service's errors.
func TestAuth(t *testing.T) {
	srv, ts, c := start(t)
	ctx := context.Background()
	if _, err := c.CreateContainer(ctx, "data", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadBuffer(ctx, "data", "dir/obj", []byte("secret bytes"), nil); err != nil {
		t.Fatal(err)
	}
	wrong, err := azblob.NewClientFromConnectionString(azblobfake.New(account, azblobfake.NewKey()).ConnectionString(ts.URL), noRetry())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.DownloadStream(ctx, "data", "dir/obj", nil); !bloberror.HasCode(err, "AuthenticationFailed") {
		t.Fatalf("a request signed with the wrong key: %v", err)
	}
	var re *azcore.ResponseError
	if _, err := wrong.UploadBuffer(ctx, "data", "dir/obj", []byte("x"), nil); !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Fatalf("a write signed with the wrong key: %v", err)
	}

	blobURL := func(name string, perm sas.BlobPermissions, expiry time.Time) string {
		u, err := c.ServiceClient().NewContainerClient("data").NewBlobClient(name).GetSASURL(perm, expiry, nil)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	read := blobURL("dir/obj", sas.BlobPermissions{Read: true}, time.Now().Add(time.Hour))
	write := blobURL("dir/new", sas.BlobPermissions{Write: true, Create: true}, time.Now().Add(time.Hour))
	contURL, err := c.ServiceClient().NewContainerClient("data").GetSASURL(sas.ContainerPermissions{Read: true, List: true}, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	listURL := strings.Replace(contURL, "?", "?restype=container&comp=list&", 1)

	cases := []struct {
		name, method, url string
		header            map[string]string
		body              string
		status            int
		code, want        string
	}{
		{name: "sas get", method: "GET", url: read, status: 200, want: "secret bytes"},
		{name: "sas range", method: "GET", url: read, header: map[string]string{"Range": "bytes=7-"}, status: 206, want: "bytes"},
		{name: "sas head", method: "HEAD", url: read, status: 200},
		{name: "sas put", method: "PUT", url: write, header: map[string]string{"x-ms-blob-type": "BlockBlob"}, body: "uploaded", status: 201},
		{name: "sas put without blob type", method: "PUT", url: write, body: "x", status: 400, code: "MissingRequiredHeader"},
		{name: "read-only sas cannot put", method: "PUT", url: read, header: map[string]string{"x-ms-blob-type": "BlockBlob"}, body: "x", status: 403, code: "AuthorizationPermissionMismatch"},
		{name: "write-only sas cannot get", method: "GET", url: write, status: 403, code: "AuthorizationPermissionMismatch"},
		{name: "sas of another blob", method: "GET", url: otherBlob(t, read, "dir/new"), status: 403, code: "AuthenticationFailed"},
		{name: "expired sas", method: "GET", url: blobURL("dir/obj", sas.BlobPermissions{Read: true}, time.Now().Add(-time.Minute)), status: 403, code: "AuthenticationFailed"},
		{name: "tampered expiry", method: "GET", url: strings.Replace(read, "se="+query(t, read, "se")[:4], "se="+"2099", 1), status: 403, code: "AuthenticationFailed"},
		{name: "tampered permissions", method: "PUT", url: strings.Replace(read, "sp=r", "sp=rw", 1), header: map[string]string{"x-ms-blob-type": "BlockBlob"}, status: 403, code: "AuthenticationFailed"},
		{name: "anonymous", method: "GET", url: strings.Split(read, "?")[0], status: 401, code: "NoAuthenticationInformation"},
		{name: "container sas lists", method: "GET", url: listURL, status: 200, want: "<Name>dir/obj</Name>"},
		{name: "missing blob through a container sas", method: "GET", url: strings.Replace(contURL, "/data?", "/data/none?", 1), status: 404, code: "BlobNotFound"},
		{name: "other account", method: "GET", url: strings.Replace(read, "/"+account+"/", "/other/", 1), status: 400, code: "InvalidUri"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, tc.method, tc.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if code := resp.Header.Get("x-ms-error-code"); code != tc.code {
				t.Fatalf("x-ms-error-code %q, want %q", code, tc.code)
			}
			if tc.code != "" && tc.method != "HEAD" {
				var e struct{ Code string }
				if err := xml.Unmarshal(b, &e); err != nil || e.Code != tc.code {
					t.Fatalf("error body %s: %v", b, err)
				}
				if strings.Contains(string(b), query(t, tc.url, "sig")) && query(t, tc.url, "sig") != "" {
					t.Fatalf("the error shows the signature: %s", b)
				}
			}
			if !strings.Contains(string(b), tc.want) {
				t.Fatalf("body %q, want %q in it", b, tc.want)
			}
		})
	}
	if got := srv.Blobs("data", ""); strings.Join(got, " ") != "dir/new dir/obj" {
		t.Fatalf("blobs %q", got)
	}
	r, err := c.DownloadStream(ctx, "data", "dir/new", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if string(b) != "uploaded" {
		t.Fatalf("blob put through SAS reads %q", b)
	}
}

// otherBlob is rawURL (signed for one blob) pointed at another blob.
func otherBlob(t *testing.T, rawURL, name string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path, u.RawPath = "/"+account+"/data/"+name, ""
	return u.String()
}

func query(t *testing.T, rawURL, name string) string {
	t.Helper()
	req, err := http.NewRequest("GET", rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req.URL.Query().Get(name)
}

func TestOldSharedKeyDate(t *testing.T) {
	_, ts, c := start(t)
	ctx := context.Background()
	if _, err := c.CreateContainer(ctx, "dated", nil); err != nil {
		t.Fatal(err)
	}
	// A replayed request: its x-ms-date is an hour old.
	req, _ := http.NewRequest("GET", ts.URL+"/"+account+"/dated?restype=container", nil)
	req.Header.Set("x-ms-date", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat))
	req.Header.Set("Authorization", "SharedKey "+account+":AAAA")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("x-ms-error-code") != "AuthenticationFailed" {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("x-ms-error-code"))
	}
}
