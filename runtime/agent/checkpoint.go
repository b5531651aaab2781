package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/leptonml/lepton/runtime/objstore/signed"
	"github.com/leptonml/lepton/runtime/runstore"
)

// A built-in kernel's checkpoint (train's checkpoint.gob, rl's
// q_learning.checkpoint.json) is written to the node's run store after each
// checkpointed epoch or episode block. When the run names a
// runspec.Checkpoint, the agent also keeps a copy in the run storage (a tar
// archive holding that one file, the format a command's checkpoint_dir uses
// too), so that the run started again on another node after a preemption
// restores it first and goes on exactly where the lost node stopped: the
// checkpoint carries weights, optimizer state, data order and history, so
// the resumed run ends with the model an uninterrupted one would have.

// maxCheckpoint bounds what a restore reads.
const maxCheckpoint = 4 << 30

// restoreKernelCheckpoint copies the run storage's checkpoint (Checkpoint.Get)
// into run as file. It reports whether there was one; none is a fresh
// start.
func (r *run) restoreKernelCheckpoint(run runstore.Store, file string) (bool, error) {
	cp := r.spec.Checkpoint
	if cp == nil || cp.Get == nil {
		return false, nil
	}
	rc, err := signed.Open(r.ctx, r.a.opts.Client, *cp.Get)
	if errors.Is(err, fs.ErrNotExist) {
		r.logf("no checkpoint in %s yet: starting from the beginning (attempt %d)", cp.Get.Key, r.spec.Attempt)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("restoring the checkpoint: %w", err)
	}
	defer rc.Close()
	tr := tar.NewReader(io.LimitReader(rc, maxCheckpoint))
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, fmt.Errorf("the checkpoint %s is not a tar archive: %w", cp.Get.Key, err)
		}
		// Only the kernel's own file is taken: an archive names no path
		// of the node.
		if h.Typeflag != tar.TypeReg || h.Name != file {
			continue
		}
		if err := run.Put(r.ctx, file, tr); err != nil {
			return false, fmt.Errorf("restoring the checkpoint: %w", err)
		}
		found = true
	}
	if !found {
		return false, fmt.Errorf("the checkpoint %s holds no %s: it was not written by this run's kernel", cp.Get.Key, file)
	}
	r.logf("restored the checkpoint %s (attempt %d)", cp.Get.Key, r.spec.Attempt)
	return true, nil
}

// syncedStore is the node's run store with every write of the kernel's
// checkpoint also uploaded to Checkpoint.Put, the latest first: a slow
// upload is overtaken by newer checkpoints, never queued behind them.
type syncedStore struct {
	runstore.Store
	r    *run
	file string

	mu      sync.Mutex
	pending []byte // the newest checkpoint not uploaded yet
	kick    chan struct{}
	done    chan struct{}
	stop    chan struct{}
	uploads int
	lastErr error
}

// syncKernelCheckpoints wraps run when the run has somewhere to keep its
// checkpoint; close it (flush) before the run reports its end.
func (r *run) syncKernelCheckpoints(run runstore.Store, file string) *syncedStore {
	s := &syncedStore{Store: run, r: r, file: file}
	if r.spec.Checkpoint == nil || r.spec.Checkpoint.Put.URL == "" {
		return s
	}
	s.kick, s.done, s.stop = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go s.loop()
	return s
}

func (s *syncedStore) Put(ctx context.Context, key string, rd io.Reader) error {
	if key != s.file || s.kick == nil {
		return s.Store.Put(ctx, key, rd)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	if err := s.Store.Put(ctx, key, bytes.NewReader(b)); err != nil {
		return err
	}
	s.mu.Lock()
	s.pending = b
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

func (s *syncedStore) loop() {
	defer close(s.done)
	for {
		select {
		case <-s.kick:
			s.upload()
		case <-s.stop:
			s.upload() // the last checkpoint (an interrupted run's too)
			return
		}
	}
}

func (s *syncedStore) upload() {
	s.mu.Lock()
	b := s.pending
	s.pending = nil
	s.mu.Unlock()
	if b == nil {
		return
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: s.file, Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
	tw.Write(b)
	tw.Close()
	// Its own deadline: the run's context ends on a preemption, and the
	// checkpoint saved then is the one most worth keeping.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := s.r.spec.Checkpoint.Put
	err := signed.Put(ctx, s.r.a.opts.Client, o, bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	s.mu.Lock()
	if err == nil {
		s.uploads++
	} else {
		s.lastErr = err
	}
	s.mu.Unlock()
	if err != nil {
		s.r.a.log.Warn("checkpoint", "run", s.r.spec.ID, "err", err)
	}
}

// flush uploads the last checkpoint and stops the uploader.
func (s *syncedStore) flush() {
	if s.kick == nil {
		return
	}
	close(s.stop)
	<-s.done
	s.mu.Lock()
	n, err := s.uploads, s.lastErr
	s.mu.Unlock()
	if err != nil {
		s.r.logf("checkpoint uploads: %d done, the last failure: %v", n, err)
	}
}
