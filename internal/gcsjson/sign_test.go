package gcsjson

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	// The reference only: a test's imports do not reach the binary.
	"cloud.google.com/go/storage"
)

// TestSignV4MatchesStorage: for the same key, time and expiry, SignV4 gives
// the URL cloud.google.com/go/storage gives, byte for byte (RSA PKCS#1 v1.5
// signatures are deterministic, so the signatures agree only when the
// canonical requests do).
func TestSignV4MatchesStorage(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	for _, tc := range []struct {
		name, bucket, object, host, method string
		insecure                           bool
		key                                []byte
		ttl                                time.Duration
	}{
		{"get", "runs", "lepton/artifacts/m.lmodel", "storage.googleapis.com", "GET", false, pkcs8, time.Hour},
		{"put on an emulator", "runs", "lepton/runs/r-1/status.json", "127.0.0.1:4443", "PUT", true, pkcs8, 15 * time.Minute},
		{"odd names", "b", "dir/a b+c=d&e?f~g@h:i,j;k'(l)*!$/ü.txt", "localhost:9000", "get", true, pkcs1, 7 * 24 * time.Hour},
		{"empty segments", "b", "a//b/", "[::1]:4443", "HEAD", true, pkcs8, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const id = "lepton@lepton-test.iam.gserviceaccount.com"
			want, err := storage.SignedURL(tc.bucket, tc.object, &storage.SignedURLOptions{
				Scheme: storage.SigningSchemeV4, Method: tc.method, Expires: time.Now().Add(tc.ttl),
				Insecure: tc.insecure, GoogleAccessID: id, PrivateKey: tc.key, Hostname: tc.host,
			})
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(want)
			if err != nil {
				t.Fatal(err)
			}
			now, err := time.Parse("20060102T150405Z", u.Query().Get("X-Goog-Date"))
			if err != nil {
				t.Fatal(err)
			}
			secs, err := strconv.Atoi(u.Query().Get("X-Goog-Expires"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := SignV4(tc.bucket, tc.object, tc.host, SignOptions{Method: tc.method, Expires: now.Add(time.Duration(secs) * time.Second),
				Insecure: tc.insecure, GoogleAccessID: id, PrivateKey: tc.key}, now, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("SignV4:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestSignV4Refuses(t *testing.T) {
	now := time.Now()
	key := []byte("not a key")
	sign := func(b []byte) ([]byte, error) { return b, nil }
	for _, tc := range []struct {
		o    SignOptions
		sign func([]byte) ([]byte, error)
		want string
	}{
		{SignOptions{Method: "GET", Expires: now.Add(time.Hour), PrivateKey: key}, nil, "GoogleAccessID"},
		{SignOptions{Method: "GET", Expires: now.Add(time.Hour), GoogleAccessID: "a"}, nil, "exactly one"},
		{SignOptions{Method: "GET", Expires: now.Add(time.Hour), GoogleAccessID: "a", PrivateKey: key}, sign, "exactly one"},
		{SignOptions{Method: "PATCH", Expires: now.Add(time.Hour), GoogleAccessID: "a"}, sign, "HTTP method"},
		{SignOptions{Method: "GET", GoogleAccessID: "a"}, sign, "expires"},
		{SignOptions{Method: "GET", Expires: now.Add(8 * 24 * time.Hour), GoogleAccessID: "a"}, sign, "seven days"},
		{SignOptions{Method: "GET", Expires: now.Add(time.Hour), GoogleAccessID: "a", PrivateKey: key}, nil, "asn1"},
	} {
		if _, err := SignV4("b", "o", "", tc.o, now, tc.sign); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SignV4(%+v): %v, want %q", tc.o, err, tc.want)
		}
	}
}
