package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"time"

	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/runstore"
)

// Log returns a node's log of a run. With follow, it keeps reading what the
// agent adds (the agent rewrites the whole object as it grows) until the run
// ends or ctx does.
func (c *Client) Log(ctx context.Context, run string, node int, follow bool) (io.ReadCloser, error) {
	key := runspec.LogKey(run, node)
	b, err := runstore.ReadAll(ctx, c.Store, key)
	if err != nil && !(follow && errors.Is(err, fs.ErrNotExist)) {
		return nil, err
	}
	if !follow {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	pr, pw := io.Pipe()
	go func() {
		sent := 0
		for {
			if len(b) < sent {
				sent = 0 // the agent cut the log's head: print what it kept
			}
			if _, err := pw.Write(b[sent:]); err != nil {
				return
			}
			sent = len(b)
			st, found, _ := c.Status(ctx, run, node)
			if found && runspec.Terminal(st.State) {
				// One last read: the agent writes its log before its final status.
				if nb, err := runstore.ReadAll(ctx, c.Store, key); err == nil && len(nb) > sent {
					pw.Write(nb[sent:])
				}
				pw.Close()
				return
			}
			select {
			case <-ctx.Done():
				pw.Close()
				return
			case <-time.After(500 * time.Millisecond):
			}
			if nb, err := runstore.ReadAll(ctx, c.Store, key); err == nil {
				b = nb
			}
		}
	}()
	return pr, nil
}
