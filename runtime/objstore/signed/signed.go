// Package signed reads and writes one object of the run storage through a
// signed URL (runspec.Object), as the node agent does: plain HTTP with the
// standard library, no cloud SDK, so the agent binary stays small and holds
// no credential.
//
// A signed URL is a bearer secret until it expires: errors name the
// object's key and its URL without the query string, never the signature.
package signed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/leptonml/lepton/runtime/runspec"
)

// Attempts is how many times a request is tried when the service answers
// 5xx, 429 or 408, or the connection fails; the waits between them double
// from firstWait.
const (
	Attempts  = 5
	firstWait = 100 * time.Millisecond
)

// Redact is rawURL without its query string (which holds the signature),
// for errors and logs.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if i := strings.IndexAny(rawURL, "?#"); i >= 0 {
			return rawURL[:i] + "?REDACTED"
		}
		return "(an unparsable URL)"
	}
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	u.User, u.Fragment = nil, ""
	return u.String()
}

// Error is a failed request on one object.
type Error struct {
	Method string
	Key    string
	URL    string // redacted
	Status int    // 0 when no response came
	Err    error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s %s (%s): %d %s: %v", e.Method, e.Key, e.URL, e.Status, http.StatusText(e.Status), e.Err)
	}
	return fmt.Sprintf("%s %s (%s): %v", e.Method, e.Key, e.URL, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Get reads the whole object, checking o.Digest when it is set. A missing
// object is an error wrapping fs.ErrNotExist.
func Get(ctx context.Context, c *http.Client, o runspec.Object) ([]byte, error) {
	rc, err := Open(ctx, c, o)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Open opens the object for reading. When o.Digest is set, the reader
// fails at its end if the bytes read do not have that digest: use them
// only once it has returned io.EOF.
func Open(ctx context.Context, c *http.Client, o runspec.Object) (io.ReadCloser, error) {
	want := ""
	if o.Digest != "" {
		hexDigest, ok := strings.CutPrefix(o.Digest, "sha256:")
		if !ok || len(hexDigest) != 64 {
			return nil, &Error{Method: "GET", Key: o.Key, URL: Redact(o.URL), Err: fmt.Errorf("the digest %q is not sha256:<64 hex digits>", o.Digest)}
		}
		want = hexDigest
	}
	resp, err := do(ctx, c, "GET", o, nil)
	if err != nil {
		return nil, err
	}
	if want == "" {
		return resp.Body, nil
	}
	return &checked{body: resp.Body, h: sha256.New(), want: want, o: o}, nil
}

// checked is a body whose sha256 is compared with want at its end.
type checked struct {
	body io.ReadCloser
	h    hash.Hash
	want string
	o    runspec.Object
}

func (c *checked) Read(p []byte) (int, error) {
	n, err := c.body.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(c.h.Sum(nil)); got != c.want {
			return n, &Error{Method: "GET", Key: c.o.Key, URL: Redact(c.o.URL), Err: fmt.Errorf("the object's digest is sha256:%s, want %s", got, c.o.Digest)}
		}
	} else if err != nil {
		err = &Error{Method: "GET", Key: c.o.Key, URL: Redact(c.o.URL), Err: redactErr(err, c.o.URL)}
	}
	return n, err
}

func (c *checked) Close() error { return c.body.Close() }

// Put writes body (size bytes; -1 when unknown) as the object, with the
// headers o.Header names. A body that is not an io.ReadSeeker is read into
// memory first, so that a retry can send it again.
func Put(ctx context.Context, c *http.Client, o runspec.Object, body io.Reader, size int64) error {
	rs, ok := body.(io.ReadSeeker)
	if !ok {
		b, err := io.ReadAll(body)
		if err != nil {
			return &Error{Method: "PUT", Key: o.Key, URL: Redact(o.URL), Err: fmt.Errorf("reading what to upload: %w", err)}
		}
		rs, size = bytes.NewReader(b), int64(len(b))
	}
	start, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return &Error{Method: "PUT", Key: o.Key, URL: Redact(o.URL), Err: err}
	}
	if size < 0 {
		end, err := rs.Seek(0, io.SeekEnd)
		if err != nil {
			return &Error{Method: "PUT", Key: o.Key, URL: Redact(o.URL), Err: err}
		}
		size = end - start
	}
	resp, err := do(ctx, c, "PUT", o, func() (io.Reader, int64, error) {
		_, err := rs.Seek(start, io.SeekStart)
		return io.LimitReader(rs, size), size, err
	})
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return nil
}

// do sends the request, trying again on transient failures, and returns
// a 2xx response.
func do(ctx context.Context, c *http.Client, method string, o runspec.Object, body func() (io.Reader, int64, error)) (*http.Response, error) {
	if c == nil {
		c = http.DefaultClient
	}
	fail := func(status int, err error) error {
		return &Error{Method: method, Key: o.Key, URL: Redact(o.URL), Status: status, Err: err}
	}
	if o.URL == "" {
		return nil, fail(0, errors.New("the object has no URL"))
	}
	wait := firstWait
	var last error
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, o.URL, nil)
		if err != nil {
			return nil, fail(0, redactErr(err, o.URL))
		}
		if body != nil {
			r, n, err := body()
			if err != nil {
				return nil, fail(0, err)
			}
			req.Body, req.ContentLength = io.NopCloser(r), n
			if n == 0 {
				req.Body = http.NoBody
			}
		}
		for k, v := range o.Header {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		retry := false
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, fail(0, ctx.Err())
			}
			last, retry = fail(0, redactErr(err, o.URL)), true
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return resp, nil
		default:
			msg := serviceMessage(resp.Body, o.URL)
			resp.Body.Close()
			e := fmt.Errorf("%s", msg)
			switch resp.StatusCode {
			case http.StatusNotFound:
				e = fmt.Errorf("%s: %w", msg, fs.ErrNotExist)
			case http.StatusForbidden, http.StatusUnauthorized:
				e = fmt.Errorf("%s (the signed URL is wrong or has expired)", msg)
			}
			last = fail(resp.StatusCode, e)
			retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout
		}
		if !retry || attempt == Attempts {
			return nil, last
		}
		select {
		case <-ctx.Done():
			return nil, fail(0, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// redactErr rewrites an error of net/http (a *url.Error names the whole
// URL) so it does not show the query string.
func redactErr(err error, rawURL string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	if u, perr := url.Parse(rawURL); perr == nil && u.RawQuery != "" && strings.Contains(err.Error(), u.RawQuery) {
		return errors.New(strings.ReplaceAll(err.Error(), u.RawQuery, "REDACTED"))
	}
	return err
}

// serviceMessage is the code and message of a service's error body (XML
// for S3, Azure and GCS's XML API, JSON for GCS's JSON API), and nothing
// else of it: S3's SignatureDoesNotMatch, for one, echoes the canonical
// request with its security token.
func serviceMessage(r io.Reader, rawURL string) string {
	b, _ := io.ReadAll(io.LimitReader(r, 1<<16))
	var x struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	var j struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := ""
	if xml.Unmarshal(b, &x) == nil && (x.Code != "" || x.Message != "") {
		msg = strings.TrimSpace(x.Code + ": " + firstLine(x.Message))
	} else if json.Unmarshal(b, &j) == nil && j.Error.Message != "" {
		msg = firstLine(j.Error.Message)
	}
	if u, err := url.Parse(rawURL); err == nil && u.RawQuery != "" {
		msg = strings.ReplaceAll(msg, u.RawQuery, "REDACTED")
		for _, vs := range u.Query() {
			for _, v := range vs {
				if len(v) >= 16 {
					msg = strings.ReplaceAll(msg, v, "REDACTED")
				}
			}
		}
	}
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	if msg == "" {
		msg = "the service refused the request"
	}
	return msg
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
