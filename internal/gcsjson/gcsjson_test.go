package gcsjson

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/googleapi"
)

// TestEmulatorAndRetry: STORAGE_EMULATOR_HOST (without a scheme) is the
// endpoint, used without credentials; a read retries a 503 and reports
// the generation; a 404 is NotFound and not retried.
func TestEmulatorAndRetry(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Header.Get("Authorization") != "" {
			t.Errorf("credentials sent to the emulator")
		}
		switch {
		case r.URL.Path == "/storage/v1/b/bkt/o/missing":
			http.Error(w, `{"error":{"code":404,"message":"No such object"}}`, http.StatusNotFound)
		case r.URL.Path != "/storage/v1/b/bkt/o/dir/k" || r.URL.Query().Get("alt") != "media":
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			http.Error(w, "no", http.StatusBadRequest)
		case n == 1:
			http.Error(w, `{"error":{"code":503,"message":"try again"}}`, http.StatusServiceUnavailable)
		default:
			w.Header().Set("X-Goog-Generation", "1712")
			io.WriteString(w, "body")
		}
	}))
	defer srv.Close()
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.URL, "http://"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint != srv.URL+"/storage/v1/" {
		t.Fatalf("endpoint %q", c.Endpoint)
	}
	r, gen, err := c.Download(ctx, c.Objects.Get("bkt", "dir/k"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "body" || gen != 1712 || calls.Load() != 2 {
		t.Fatalf("read %q generation %d after %d calls", b, gen, calls.Load())
	}
	calls.Store(10)
	_, _, err = c.Download(ctx, c.Objects.Get("bkt", "missing"))
	if !NotFound(err) || Code(err) != http.StatusNotFound || calls.Load() != 11 {
		t.Fatalf("missing object: %v after %d calls", err, calls.Load()-10)
	}
}

func TestShouldRetry(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("boom"), false},
		{io.ErrUnexpectedEOF, true},
		{&googleapi.Error{Code: 503}, true},
		{&googleapi.Error{Code: 429}, true},
		{&googleapi.Error{Code: 412}, false},
		{&googleapi.Error{Code: 404}, false},
		{fmt.Errorf("wrapped: %w", &googleapi.Error{Code: 500}), true},
		{&url.Error{Op: "Get", URL: "http://127.0.0.1:1", Err: errors.New("dial tcp: connect: connection refused")}, true},
		{&url.Error{Op: "Get", URL: "http://127.0.0.1:1", Err: errors.New("x509: certificate signed by unknown authority")}, false},
	} {
		if got := ShouldRetry(tc.err); got != tc.want {
			t.Errorf("ShouldRetry(%v) = %v", tc.err, got)
		}
	}
}
