package runstore

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"
)

// Memory is a store in memory: for tests, and for runs whose objects need
// not outlive the process. It also shows what the interface asks of an
// implementation without a filesystem.
type Memory struct {
	mu   sync.Mutex
	objs map[string]memObject
}

type memObject struct {
	b   []byte
	mod time.Time
}

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{objs: map[string]memObject{}} }

func notExist(op, key string) error {
	return &fs.PathError{Op: op, Path: "mem:" + key, Err: fs.ErrNotExist}
}

// Where is mem:KEY.
func (m *Memory) Where(key string) string { return "mem:" + key }

// Put reads r whole before replacing the object.
func (m *Memory) Put(ctx context.Context, key string, r io.Reader) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	b, err := io.ReadAll(ctxReader{ctx, r})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.objs[key] = memObject{b: b, mod: time.Now()}
	m.mu.Unlock()
	return nil
}

// Get returns the object as it is now.
func (m *Memory) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	o, ok := m.objs[key]
	m.mu.Unlock()
	if !ok {
		return nil, notExist("open", key)
	}
	return io.NopCloser(bytes.NewReader(o.b)), nil
}

func (m *Memory) Stat(ctx context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	m.mu.Lock()
	o, ok := m.objs[key]
	m.mu.Unlock()
	if !ok {
		return Info{}, notExist("stat", key)
	}
	return Info{Key: key, Size: int64(len(o.b)), ModTime: o.mod}, nil
}

func (m *Memory) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	m.mu.Lock()
	var out []Info
	for k, o := range m.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, Info{Key: k, Size: int64(len(o.b)), ModTime: o.mod})
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.objs, key)
	m.mu.Unlock()
	return nil
}

// Append adds each write to the object at once.
func (m *Memory) Append(ctx context.Context, key string) (io.WriteCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if _, ok := m.objs[key]; !ok {
		m.objs[key] = memObject{mod: time.Now()}
	}
	m.mu.Unlock()
	return &memAppender{m: m, key: key}, nil
}

type memAppender struct {
	m   *Memory
	key string
}

func (a *memAppender) Write(p []byte) (int, error) {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	o := a.m.objs[a.key]
	// Appending writes past the length readers of the old object hold, so
	// they keep seeing what they opened.
	a.m.objs[a.key] = memObject{b: append(o.b, p...), mod: time.Now()}
	return len(p), nil
}

func (a *memAppender) Close() error { return nil }
