package source

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"time"
)

// DefaultTimeout bounds one HTTP attempt (request and body) when the source
// sets no timeout.
const DefaultTimeout = 5 * time.Minute

func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Redacted()
}

func (o Options) retries() int {
	switch {
	case o.Retries < 0:
		return 0
	case o.Retries == 0:
		return 4
	}
	return o.Retries
}

func (o Options) backoff() time.Duration {
	if o.Backoff > 0 {
		return o.Backoff
	}
	return 500 * time.Millisecond
}

func (o Options) maxBytes() int64 {
	if o.MaxBytes > 0 {
		return o.MaxBytes
	}
	return DefaultMaxBytes
}

// retryable reports whether an HTTP status is worth another attempt.
func retryable(code int) bool { return code == http.StatusTooManyRequests || code >= 500 }

// get performs the GET with retries on 5xx, 429 and transport errors, with
// exponential backoff (honouring Retry-After). The returned cancel ends the
// attempt's deadline and must be called once the body is consumed.
func get(ctx context.Context, s Source, o Options) (*http.Response, context.CancelFunc, error) {
	name := redactURL(s.URL)
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("url %s: not an http(s) URL", name)
	}
	client := o.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	attempts := 1 + o.retries()
	delay := o.backoff()
	var last error
	for a := 1; a <= attempts; a++ {
		actx, cancel := context.WithTimeout(ctx, timeout)
		req, err := http.NewRequestWithContext(actx, http.MethodGet, s.URL, nil)
		if err != nil {
			cancel()
			return nil, nil, fmt.Errorf("url %s: %w", name, err)
		}
		for k, v := range s.Headers {
			req.Header.Set(k, v)
		}
		if req.Header.Get("Accept") == "" {
			req.Header.Set("Accept", "application/json, application/x-ndjson, text/csv;q=0.9, */*;q=0.5")
		}
		resp, err := client.Do(req)
		wait := delay
		switch {
		case err != nil:
			cancel()
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("url %s: %w", name, ctx.Err())
			}
			last = fmt.Errorf("GET failed: %w", unwrapURLError(err))
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			if n := resp.ContentLength; n > o.maxBytes() {
				resp.Body.Close()
				cancel()
				return nil, nil, fmt.Errorf("url %s: the response is %d bytes, over the limit of %d", name, n, o.maxBytes())
			}
			return resp, cancel, nil
		default:
			snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			resp.Body.Close()
			cancel()
			last = fmt.Errorf("HTTP %s", resp.Status)
			if len(snippet) > 0 {
				last = fmt.Errorf("HTTP %s: %s", resp.Status, bytesOneLine(snippet))
			}
			if !retryable(resp.StatusCode) {
				return nil, nil, fmt.Errorf("url %s: %w", name, last)
			}
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra >= 0 {
				wait = min(time.Duration(ra)*time.Second, 30*time.Second)
			}
		}
		if a == attempts {
			break
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("url %s: %w (after %v)", name, ctx.Err(), last)
		}
		delay *= 2
	}
	return nil, nil, fmt.Errorf("url %s: %w (gave up after %d attempts)", name, last, attempts)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func bytesOneLine(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == '\n' || c == '\r' || c == '\t' {
			c = ' '
		}
		out = append(out, c)
	}
	return string(out)
}

// limited fails (rather than truncating) once more than n bytes are read.
type limited struct {
	r    io.Reader
	n    int64
	name string
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		if k, _ := l.r.Read(one[:]); k > 0 {
			return 0, fmt.Errorf("url %s: the response is over the size limit", l.name)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	k, err := l.r.Read(p)
	l.n -= int64(k)
	return k, err
}

// urlFormat picks the format: the spec's, the Content-Type's, the URL path's
// extension, or a look at the first byte.
func urlFormat(o Options, resp *http.Response, br *bufio.Reader) string {
	if o.Format != "" {
		return o.Format
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil {
		switch mt {
		case "application/json":
			// could still be JSON lines; look below
		case "application/x-ndjson", "application/jsonl", "application/x-jsonlines":
			return "jsonl"
		case "text/csv", "application/csv", "text/tab-separated-values":
			return "csv"
		}
	}
	if f := InferFormat(path.Base(resp.Request.URL.Path)); f != "" {
		return f
	}
	for i := 0; i < 512; i++ {
		b, err := br.Peek(i + 1)
		if err != nil {
			break
		}
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			continue
		case '[':
			return "json"
		case '{':
			return "jsonl"
		}
		break
	}
	return "csv"
}

type urlReader struct {
	Reader
	body   io.ReadCloser
	tee    io.Reader
	h      hash.Hash
	cancel context.CancelFunc
}

func openURL(ctx context.Context, s Source, o Options) (Reader, error) {
	resp, cancel, err := get(ctx, s, o)
	if err != nil {
		return nil, err
	}
	name := redactURL(s.URL)
	h := sha256.New()
	tee := io.TeeReader(&limited{r: resp.Body, n: o.maxBytes(), name: name}, h)
	br := bufio.NewReaderSize(tee, 1<<20)
	format := urlFormat(o, resp, br)
	rd, err := openStream(br, name, format)
	if err != nil {
		resp.Body.Close()
		cancel()
		return nil, err
	}
	return &urlReader{Reader: rd, body: resp.Body, tee: tee, h: h, cancel: cancel}, nil
}

func (u *urlReader) Next() ([]Value, Position, error) {
	v, p, err := u.Reader.Next()
	if err == io.EOF {
		// Hash the rest of the body too, so the digest equals Fingerprint's.
		if _, cerr := io.Copy(io.Discard, u.tee); cerr != nil {
			return nil, p, cerr
		}
	}
	return v, p, err
}

func (u *urlReader) Digest() (string, error) {
	return "sha256:" + hex.EncodeToString(u.h.Sum(nil)), nil
}

func (u *urlReader) Close() error {
	err := u.Reader.Close()
	u.body.Close()
	u.cancel()
	return err
}

func fingerprintURL(ctx context.Context, s Source, o Options) (string, error) {
	resp, cancel, err := get(ctx, s, o)
	if err != nil {
		return "", err
	}
	defer cancel()
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, &limited{r: resp.Body, n: o.maxBytes(), name: redactURL(s.URL)}); err != nil {
		return "", fmt.Errorf("url %s: reading the response: %w", redactURL(s.URL), err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
