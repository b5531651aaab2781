package signed_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leptonml/lepton/runtime/objstore/signed"
	"github.com/leptonml/lepton/runtime/runspec"
)

const secret = "sig=c2VjcmV0LXNpZ25hdHVyZS1vZi10aGUtdXJs"

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}

// server answers with the statuses in order (the last one from then on),
// counting requests and keeping the last body and headers.
type server struct {
	statuses []int
	body     string // the body of a 200
	errBody  string
	n        atomic.Int32
	gotBody  atomic.Value
	gotHead  atomic.Value
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(s.n.Add(1)) - 1
	st := s.statuses[min(i, len(s.statuses)-1)]
	b, _ := io.ReadAll(r.Body)
	s.gotBody.Store(string(b))
	s.gotHead.Store(r.Header.Clone())
	w.WriteHeader(st)
	if st == 200 {
		io.WriteString(w, s.body)
	} else {
		io.WriteString(w, s.errBody)
	}
}

func TestGet(t *testing.T) {
	s3SigMismatch := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><CanonicalRequest>GET /b/k X-Amz-Security-Token=TOKEN-SECRET-VALUE</CanonicalRequest></Error>`
	for _, tc := range []struct {
		name     string
		statuses []int
		errBody  string
		digest   string
		requests int
		want     string // in the error; "" for success
		notExist bool
	}{
		{name: "ok", statuses: []int{200}, requests: 1},
		{name: "digest checked", statuses: []int{200}, digest: digest("payload"), requests: 1},
		{name: "5xx retried", statuses: []int{503, 500, 200}, requests: 3},
		{name: "429 retried", statuses: []int{429, 200}, requests: 2},
		{name: "5xx until the end", statuses: []int{503}, requests: signed.Attempts, want: "503 Service Unavailable"},
		{name: "expired", statuses: []int{403}, errBody: `<?xml version="1.0"?><Error><Code>AuthenticationFailed</Code><Message>Signed expiry time must be after the current time</Message></Error>`, requests: 1, want: "AuthenticationFailed: Signed expiry time must be after the current time (the signed URL is wrong or has expired)"},
		{name: "s3 echo of the request", statuses: []int{403}, errBody: s3SigMismatch, requests: 1, want: "SignatureDoesNotMatch"},
		{name: "missing", statuses: []int{404}, errBody: `{"error":{"code":404,"message":"No such object: runs/x"}}`, requests: 1, want: "No such object", notExist: true},
		{name: "wrong digest", statuses: []int{200}, digest: digest("other"), requests: 1, want: "the object's digest is sha256:"},
		{name: "bad digest", statuses: []int{200}, digest: "md5:00", requests: 0, want: "is not sha256:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &server{statuses: tc.statuses, body: "payload", errBody: tc.errBody}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			o := runspec.Object{Key: "runs/r/spec.json", URL: ts.URL + "/b/runs/r/spec.json?" + secret, Digest: tc.digest}
			b, err := signed.Get(context.Background(), ts.Client(), o)
			if int(srv.n.Load()) != tc.requests {
				t.Errorf("%d requests, want %d", srv.n.Load(), tc.requests)
			}
			if tc.want == "" {
				if err != nil || string(b) != "payload" {
					t.Fatalf("%q, %v", b, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q in it", err, tc.want)
			}
			for _, leak := range []string{secret, "c2VjcmV0", "TOKEN-SECRET-VALUE"} {
				if strings.Contains(err.Error(), leak) {
					t.Fatalf("the error shows %q: %v", leak, err)
				}
			}
			if !strings.Contains(err.Error(), "runs/r/spec.json") {
				t.Fatalf("the error does not name the key: %v", err)
			}
			if errors.Is(err, fs.ErrNotExist) != tc.notExist {
				t.Fatalf("errors.Is(err, fs.ErrNotExist) = %v", !tc.notExist)
			}
		})
	}
}

func TestPut(t *testing.T) {
	for _, tc := range []struct {
		name     string
		statuses []int
		body     io.Reader
		size     int64
		requests int
		fails    bool
	}{
		{name: "seekable", statuses: []int{200}, body: strings.NewReader("status json"), size: 11, requests: 1},
		{name: "unknown size", statuses: []int{201}, body: strings.NewReader("status json"), size: -1, requests: 1},
		{name: "a stream, retried whole", statuses: []int{500, 502, 200}, body: io.MultiReader(strings.NewReader("status "), strings.NewReader("json")), size: -1, requests: 3},
		{name: "refused", statuses: []int{403}, body: strings.NewReader("status json"), size: 11, requests: 1, fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &server{statuses: tc.statuses}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			o := runspec.Object{Key: "runs/r/node-0/status.json", URL: ts.URL + "/k?" + secret, Header: map[string]string{"x-ms-blob-type": "BlockBlob"}}
			err := signed.Put(context.Background(), nil, o, tc.body, tc.size)
			if int(srv.n.Load()) != tc.requests {
				t.Errorf("%d requests, want %d", srv.n.Load(), tc.requests)
			}
			if tc.fails {
				if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), o.Key) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := srv.gotBody.Load(); got != "status json" {
				t.Fatalf("the last request's body %q", got)
			}
			if h := srv.gotHead.Load().(http.Header); h.Get("x-ms-blob-type") != "BlockBlob" {
				t.Fatalf("headers %v", h)
			}
		})
	}
}

// TestConnectionRefused: a failed connection is retried, and its error
// (net/http's names the whole URL) does not show the signature.
func TestConnectionRefused(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	u := ts.URL
	ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	_, err := signed.Get(ctx, nil, runspec.Object{Key: "agent/lepton-agent-ab", URL: u + "/agent?" + secret})
	if err == nil || strings.Contains(err.Error(), "c2VjcmV0") || !strings.Contains(err.Error(), "agent/lepton-agent-ab") || !strings.Contains(err.Error(), "?REDACTED") {
		t.Fatalf("err %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://b.s3.amazonaws.com/k?X-Amz-Signature=abc": "https://b.s3.amazonaws.com/k?REDACTED",
		"http://127.0.0.1:1/acct/c/k":                      "http://127.0.0.1:1/acct/c/k",
		"https://user:pw@host/k?sig=1#frag":                "https://host/k?REDACTED",
		"::bad?sig=1":                                      "::bad?REDACTED",
	} {
		if got := signed.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNoCloudSDK: the agent links this package; it must not bring any
// cloud SDK into the agent binary.
func TestNoCloudSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/leptonml/lepton/runtime/objstore/signed").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed %d packages", len(deps))
	}
	for _, d := range deps {
		for _, sdk := range []string{"github.com/aws/", "github.com/Azure/", "cloud.google.com/", "google.golang.org/api", "google.golang.org/grpc", "golang.org/x/oauth2"} {
			if strings.HasPrefix(d, sdk) {
				t.Errorf("runtime/objstore/signed depends on %s", d)
			}
		}
	}
}
