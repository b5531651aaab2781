package runstore_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/leptonml/lepton/runtime/runstore/storetest"
)

func TestDirConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) runstore.Store { return runstore.NewDir(t.TempDir(), runstore.DirOptions{}) })
}

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) runstore.Store { return runstore.NewMemory() })
}

func TestSubConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) runstore.Store {
		return runstore.Sub(runstore.NewDir(t.TempDir(), runstore.DirOptions{}), "nested/root/")
	})
}

// TestDirFiles: the local store writes the files .lepton always held, at the
// same paths and with the same modes, and leaves no temporary file.
func TestDirFiles(t *testing.T) {
	root := t.TempDir()
	s := runstore.NewDir(root, runstore.DirOptions{Private: []string{"datasets/*.bin"}, NoSync: []string{"datasets/*"}})
	ctx := context.Background()
	for _, k := range []string{"artifacts/sha256-00.lmodel", "datasets/00.txt", "datasets/00.bin", "runs/training.x/spec.sha256"} {
		if err := runstore.PutBytes(ctx, s, k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	w, err := s.Append(ctx, "runs/training.x/train.log")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("line\n"))
	w.Close()
	want := map[string]os.FileMode{
		"artifacts/sha256-00.lmodel":  0o644,
		"datasets/00.txt":             0o644,
		"datasets/00.bin":             0o600,
		"runs/training.x/spec.sha256": 0o644,
		"runs/training.x/train.log":   0o644,
	}
	got := map[string]os.FileMode{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(root, p)
			got[filepath.ToSlash(rel)] = fi.Mode().Perm()
		}
		return err
	})
	for k, m := range want {
		if got[k] != m {
			t.Errorf("%s: mode %v, want %v", k, got[k], m)
		}
		delete(got, k)
	}
	for k := range got {
		t.Errorf("unexpected file %s", k)
	}
	if p, _ := s.Path("runs/training.x/train.log"); p != filepath.Join(root, "runs", "training.x", "train.log") || s.Where("runs/training.x/train.log") != p {
		t.Errorf("Path %q, Where %q", p, s.Where("runs/training.x/train.log"))
	}
}

// TestFollow: Follow prints what is appended while it runs and ends with EOF
// when its context does.
func TestFollow(t *testing.T) {
	s := runstore.NewDir(t.TempDir(), runstore.DirOptions{})
	ctx := context.Background()
	w, err := s.Append(ctx, "log")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	io.WriteString(w, "one\n")
	rc, err := s.Get(ctx, "log")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	fctx, cancel := context.WithCancel(ctx)
	out := &lockedBuffer{}
	done := make(chan error)
	go func() {
		_, err := io.Copy(out, runstore.Follow(fctx, rc, 5*time.Millisecond))
		done <- err
	}()
	time.Sleep(30 * time.Millisecond)
	io.WriteString(w, "two\n")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "two") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("copy: %v", err)
	}
	if out.String() != "one\ntwo\n" {
		t.Errorf("followed %q", out.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
