package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// Prefetch reads and parses a local state file ahead of time, before the
// configuration says where state lives and before the lock is held, so that
// parsing a large state overlaps loading the configuration. Its result is used
// only through Local.ReadPrefetched, which reads the file again under the lock
// and takes the early parse only if the bytes are the same.
type Prefetch struct {
	path string
	done chan struct{}
	b    []byte
	s    *State
	err  error
}

// PrefetchLocal starts reading the state file at path.
func PrefetchLocal(path string) *Prefetch {
	p := &Prefetch{path: path, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		b, err := os.ReadFile(path)
		if err != nil {
			p.err = err
			return
		}
		p.b = b
		p.s, p.err = Parse(b)
	}()
	return p
}

// ReadPrefetched is Read, using p's parse when p read this backend's file
// and the file has not changed since.
func (l *Local) ReadPrefetched(ctx context.Context, p *Prefetch) (*State, error) {
	if p == nil || p.path != l.Path {
		return l.Read(ctx)
	}
	<-p.done
	same, err := sameContent(l.Path, p.b)
	p.b = nil
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	if !same {
		return l.Read(ctx)
	}
	if p.err != nil {
		return nil, fmt.Errorf("%s: %w", l.Path, p.err)
	}
	s := p.s
	p.s = nil // one use: the State is the caller's now
	return s, nil
}

// sameContent reports whether the file at path holds exactly b (nil b: the
// prefetch found no file), reading it in pieces rather than whole.
func sameContent(path string, b []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if b == nil {
		return false, nil
	}
	buf := make([]byte, 256<<10)
	for {
		n, err := io.ReadFull(f, buf)
		if n > len(b) || !bytes.Equal(buf[:n], b[:n]) {
			return false, nil
		}
		b = b[n:]
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return len(b) == 0, nil
		}
		if err != nil {
			return false, err
		}
	}
}
