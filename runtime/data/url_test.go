package data

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leptonml/lepton/runtime/data/source"
)

// fastRetries keeps retry tests quick; the backoff logic is the same.
var fastRetries = source.Options{Retries: 3, Backoff: time.Millisecond}

func TestURL(t *testing.T) {
	var flaky, limited atomic.Int32
	body := `[{"x":1,"y":"a"},{"x":2,"y":"b"},{"x":3,"y":"a"}]`
	mux := http.NewServeMux()
	mux.HandleFunc("/records", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0k" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	})
	mux.HandleFunc("/data.csv", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("x,y\n1,a\n2,b\n3,a\n"))
	})
	mux.HandleFunc("/ndjson", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Write([]byte("{\"x\":1,\"y\":\"a\"}\n{\"x\":2,\"y\":\"b\"}\n{\"x\":3,\"y\":\"a\"}\n"))
	})
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, r *http.Request) {
		if flaky.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(body))
	})
	mux.HandleFunc("/limited", func(w http.ResponseWriter, r *http.Request) {
		if limited.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		w.Write([]byte(body))
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusBadGateway)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush() // no Content-Length: the limit must trip while reading
		w.Write([]byte("x,y\n"))
		for i := 0; i < 1000; i++ {
			w.Write([]byte("1,a\n"))
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, path := range []string{"/records", "/data.csv", "/ndjson", "/flaky", "/limited"} {
		t.Run(path, func(t *testing.T) {
			spec := Spec{Source: Source{URL: srv.URL + path, Headers: map[string]string{"Authorization": "Bearer t0k"}}, Label: "y", Options: fastRetries}
			ds := load(t, spec)
			if ds.Rows != 3 || len(ds.Classes) != 2 || ds.Train.X[2] != 3 {
				t.Fatalf("rows %d classes %v X %v", ds.Rows, ds.Classes, ds.Train.X)
			}
			fp, err := Fingerprint(context.Background(), spec)
			if err != nil || fp != ds.Digest {
				t.Fatalf("Fingerprint %s (%v) != digest %s", fp, err, ds.Digest)
			}
		})
	}
	if n := flaky.Load(); n != 4 { // 2 failures + success for Load, then success for Fingerprint
		t.Fatalf("flaky endpoint called %d times", n)
	}

	// A free loopback port that nobody listens on: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/x"
	l.Close()

	for _, tc := range []struct {
		name, url string
		opts      source.Options
		timeout   time.Duration
		want      string
	}{
		{"404", srv.URL + "/nope", fastRetries, 0, "/nope: HTTP 404 Not Found: 404 page not found"},
		{"401 no retry", srv.URL + "/records", fastRetries, 0, "HTTP 401 Unauthorized: no token"},
		{"5xx gives up", srv.URL + "/down", fastRetries, 0, "HTTP 502 Bad Gateway: down for maintenance  (gave up after 4 attempts)"},
		{"unreachable", closed, fastRetries, 0, "connection refused (gave up after 4 attempts)"},
		{"timeout", srv.URL + "/slow", source.Options{Retries: -1}, 50 * time.Millisecond, "context deadline exceeded (gave up after 1 attempts)"},
		{"size limit", srv.URL + "/big", source.Options{MaxBytes: 100}, 0, "over the size limit"},
		{"not http", "ftp://example.com/x", fastRetries, 0, "not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := Spec{Source: Source{URL: tc.url, Timeout: tc.timeout}, Options: tc.opts}
			_, err := Load(context.Background(), spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error %v, want %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "url ") && tc.name != "size limit" {
				t.Fatalf("error does not name the source: %v", err)
			}
			if _, err := Fingerprint(context.Background(), spec); err == nil {
				t.Fatal("Fingerprint succeeded")
			}
		})
	}
}

func serveText(t *testing.T, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
