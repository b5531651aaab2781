package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"

	"github.com/leptonml/lepton/runtime/objstore/signed"
	"github.com/leptonml/lepton/runtime/runspec"
)

// maxInbox bounds the inbox the agent reads.
const maxInbox = 16 << 20

// getIfChanged reads a small object (the inbox) unless its ETag is still
// etag: changed is false on 304 Not Modified. It is polled, so it tries
// once; a failure shows in the heartbeat and the next poll tries again.
// Errors never show the URL's query string (its signature).
func getIfChanged(ctx context.Context, c *http.Client, o runspec.Object, etag string) (b []byte, newTag string, changed bool, err error) {
	fail := func(status int, err error) error {
		return &signed.Error{Method: "GET", Key: o.Key, URL: signed.Redact(o.URL), Status: status, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
	if err != nil {
		return nil, "", false, fail(0, fmt.Errorf("bad URL"))
	}
	for k, v := range o.Header {
		req.Header.Set(k, v)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", false, fail(0, redactURLError(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return nil, etag, false, nil
	case resp.StatusCode == http.StatusNotFound:
		return nil, "", false, fail(resp.StatusCode, fs.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		return nil, "", false, fail(resp.StatusCode, fmt.Errorf("the storage refused the request"))
	}
	b, err = io.ReadAll(io.LimitReader(resp.Body, maxInbox+1))
	if err != nil {
		return nil, "", false, fail(0, redactURLError(err))
	}
	if len(b) > maxInbox {
		return nil, "", false, fail(0, fmt.Errorf("larger than %d bytes", maxInbox))
	}
	return b, resp.Header.Get("ETag"), true, nil
}

// redactURLError drops the URL (and with it the signature) from a
// transport error, keeping its cause.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
