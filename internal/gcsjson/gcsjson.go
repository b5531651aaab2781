// Package gcsjson is Google Cloud Storage over its JSON API, through the
// REST-only generated client google.golang.org/api/storage/v1. It keeps
// what lepton used of cloud.google.com/go/storage, whose gRPC transport
// (xDS, Envoy's protos, RLS, OpenTelemetry exporters) made the binary some
// megabytes larger: the STORAGE_EMULATOR_HOST switch, the choice of
// endpoint and credentials, retries of idempotent calls, the not-found
// test, and V4 signed URLs (sign.go).
package gcsjson

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/auth"
	gax "github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/api/option/internaloption"
	raw "google.golang.org/api/storage/v1"
	htransport "google.golang.org/api/transport/http"
)

// Client is a JSON API client with what signing a URL needs.
type Client struct {
	*raw.Service
	// Endpoint is the JSON API base URL the client uses
	// (https://storage.googleapis.com/storage/v1/ unless overridden).
	Endpoint string
	hc       *http.Client
	creds    *auth.Credentials // nil without authentication
}

// New makes a client as cloud.google.com/go/storage's NewClient does:
// when STORAGE_EMULATOR_HOST is set (HOST:PORT or a URL) it is the default
// endpoint, used without authentication; otherwise Application Default
// Credentials with the full-control scope. opts come last, so an
// option.WithEndpoint in them wins.
func New(ctx context.Context, opts ...option.ClientOption) (*Client, error) {
	var creds *auth.Credentials
	if host := os.Getenv("STORAGE_EMULATOR_HOST"); host == "" {
		opts = append([]option.ClientOption{option.WithScopes(raw.DevstorageFullControlScope, raw.CloudPlatformScope)}, opts...)
		opts = append(opts, internaloption.WithDefaultEndpointTemplate("https://storage.UNIVERSE_DOMAIN/storage/v1/"),
			internaloption.WithDefaultMTLSEndpoint("https://storage.mtls.googleapis.com/storage/v1/"),
			internaloption.WithDefaultUniverseDomain("googleapis.com"),
			internaloption.EnableNewAuthLibrary())
		// No credentials is not an error here: an HTTP client in opts may
		// authenticate by itself.
		if c, err := internaloption.AuthCreds(ctx, opts); err == nil {
			creds = c
			opts = append(opts, option.WithAuthCredentials(c))
		}
	} else {
		u := &url.URL{Scheme: "http", Host: host}
		if strings.Contains(host, "://") {
			var err error
			if u, err = url.Parse(host); err != nil {
				return nil, err
			}
		}
		u.Path = "storage/v1/"
		opts = append([]option.ClientOption{
			option.WithoutAuthentication(),
			internaloption.SkipDialSettingsValidation(),
			internaloption.WithDefaultEndpointTemplate(u.String()),
			internaloption.WithDefaultMTLSEndpoint(u.String()),
		}, opts...)
	}
	// One HTTP client for the service and for signBlob calls; htransport
	// also picks the endpoint among the options.
	hc, ep, err := htransport.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("dialing: %w", err)
	}
	svc, err := raw.NewService(ctx, append(opts, option.WithEndpoint(ep), option.WithHTTPClient(hc))...)
	if err != nil {
		return nil, fmt.Errorf("storage client: %w", err)
	}
	if _, err := url.Parse(ep); err != nil {
		return nil, fmt.Errorf("supplied endpoint %q is not valid: %w", ep, err)
	}
	return &Client{Service: svc, Endpoint: ep, hc: hc, creds: creds}, nil
}

// ErrObjectNotExist is the storage package's words for a 404 on an
// object, kept in the messages lepton shows.
var ErrObjectNotExist = errors.New("storage: object doesn't exist")

// NotFound reports whether err is the API's 404.
func NotFound(err error) bool {
	var e *googleapi.Error
	return errors.As(err, &e) && e.Code == http.StatusNotFound
}

// Code is err's HTTP status, or 0.
func Code(err error) int {
	var e *googleapi.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// Retry calls f until it succeeds, fails for good, or ctx ends, backing off
// as cloud.google.com/go/storage does for idempotent calls (1 s doubling to
// 30 s, with jitter). Use it only for calls that may be repeated.
func Retry(ctx context.Context, f func() error) error {
	var bo gax.Backoff
	for {
		err := f()
		if err == nil || !ShouldRetry(err) || ctx.Err() != nil {
			return err
		}
		if gax.Sleep(ctx, bo.Pause()) != nil {
			return err
		}
	}
}

// ShouldRetry is cloud.google.com/go/storage's test for a transient error:
// 408, 429 and 5xx answers, refused or reset connections, an unexpected EOF.
func ShouldRetry(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	switch e := err.(type) {
	case *googleapi.Error:
		return e.Code == 408 || e.Code == 429 || (e.Code >= 500 && e.Code < 600)
	case *net.OpError, *url.Error:
		for _, s := range []string{"connection refused", "connection reset", "broken pipe", "client connection lost", "server closed idle connection"} {
			if strings.Contains(e.Error(), s) {
				return true
			}
		}
		if errors.Is(err, io.EOF) {
			return true
		}
	case *net.DNSError:
		if e.IsTemporary {
			return true
		}
	case interface{ Temporary() bool }:
		if e.Temporary() {
			return true
		}
	}
	if e, ok := err.(interface{ Unwrap() error }); ok {
		return ShouldRetry(e.Unwrap())
	}
	return false
}

// Download reads an object (JSON API media download), retrying transient
// failures, and returns its body and generation.
func (c *Client) Download(ctx context.Context, call *raw.ObjectsGetCall) (io.ReadCloser, int64, error) {
	var res *http.Response
	err := Retry(ctx, func() error {
		var err error
		res, err = call.Context(ctx).Download()
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	var gen int64
	if g := res.Header.Get("X-Goog-Generation"); g != "" {
		if _, err := fmt.Sscan(g, &gen); err != nil {
			res.Body.Close()
			return nil, 0, fmt.Errorf("storage: generation %q: %w", g, err)
		}
	}
	return res.Body, gen, nil
}

// Time parses the API's RFC 3339 times ("" is the zero time).
func Time(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}
