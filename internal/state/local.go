package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/gofrs/flock"

	"github.com/leptonml/lepton/internal/fsutil"
)

// Local stores state in a file, with a backup of the previous version and an
// OS file lock beside it (released by the kernel when the holder dies). It is
// the default Backend.
type Local struct {
	Path       string
	BackupPath string
	lock       *flock.Flock
	lockInfo   LockInfo
	backedUp   bool
}

var _ Backend = (*Local)(nil)

// NewLocal returns the local backend for path.
func NewLocal(path string) *Local {
	return &Local{Path: path, BackupPath: path + ".backup"}
}

func (l *Local) lockPath() string { return l.Path + ".lock" }

// String is the state file's path.
func (l *Local) String() string { return l.Path }

// Read returns the state, or nil when there is none yet.
func (l *Local) Read(ctx context.Context) (*State, error) {
	b, err := os.ReadFile(l.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	return l.parse(b)
}

func (l *Local) parse(b []byte) (*State, error) {
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.Path, err)
	}
	return s, nil
}

// Persist replaces the state atomically and durably (fsutil.WriteFile: a
// temporary file, fsync, rename, fsync of the directory), after checking m
// against the stored state's lineage and serial. The first write of a command
// keeps the previous file as the backup.
func (l *Local) Persist(ctx context.Context, m Meta, b []byte, o WriteOptions) error {
	var stored *Meta
	if !l.backedUp {
		prev, err := os.ReadFile(l.Path)
		if err == nil {
			if !o.Force {
				sm, err := ReadMeta(bytes.NewReader(prev))
				if err != nil {
					return fmt.Errorf("checking the stored state before writing: %s: %w", l.Path, err)
				}
				stored = &sm
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading state: %w", err)
		}
		if err := CheckWrite(l.Path, stored, m, o); err != nil {
			return err
		}
		if prev != nil {
			if err := fsutil.WriteFile(l.BackupPath, prev, 0o600, fsutil.Options{}); err != nil {
				return fmt.Errorf("writing state backup: %w", err)
			}
		}
		l.backedUp = true
	} else if !o.Force {
		// Only the first fields are read: the check costs little even for a
		// state of tens of megabytes written dozens of times by an apply.
		sm, err := l.storedMeta()
		if err != nil {
			return err
		}
		if err := CheckWrite(l.Path, sm, m, o); err != nil {
			return err
		}
	}
	if err := fsutil.WriteFile(l.Path, b, 0o600, fsutil.Options{}); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	return nil
}

func (l *Local) storedMeta() (*Meta, error) {
	f, err := os.Open(l.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	defer f.Close()
	m, err := ReadMeta(f)
	if err != nil {
		return nil, fmt.Errorf("checking the stored state before writing: %s: %w", l.Path, err)
	}
	return &m, nil
}

// Lock takes the lock, waiting up to timeout (0: fail at once).
func (l *Local) Lock(ctx context.Context, want LockInfo, timeout time.Duration) (LockInfo, error) {
	fl := flock.New(l.lockPath(), flock.SetPermissions(0o600))
	deadline := time.Now().Add(timeout)
	for {
		ok, err := fl.TryLock()
		if err != nil {
			return LockInfo{}, fmt.Errorf("locking state: %w", err)
		}
		if ok {
			break
		}
		if timeout <= 0 || time.Now().After(deadline) {
			return LockInfo{}, &LockError{Info: l.readLockInfo(), Err: errors.New("held by another process")}
		}
		select {
		case <-ctx.Done():
			return LockInfo{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	info := NewLockInfo(want.Operation, want.Version)
	info.Path = l.Path
	b, _ := json.Marshal(info)
	// The OS lock is advisory: the information beside it is plain file content.
	if err := os.WriteFile(l.lockPath(), b, 0o600); err != nil {
		fl.Unlock()
		return LockInfo{}, fmt.Errorf("writing lock information: %w", err)
	}
	l.lock, l.lockInfo = fl, info
	return info, nil
}

func (l *Local) readLockInfo() LockInfo {
	var info LockInfo
	if b, err := os.ReadFile(l.lockPath()); err == nil {
		json.Unmarshal(b, &info)
	}
	return info
}

// Unlock releases the lock.
func (l *Local) Unlock(ctx context.Context, id string) error {
	if l.lock == nil {
		return nil
	}
	if id != l.lockInfo.ID {
		return fmt.Errorf("lock ID %q is not the lock this command holds (%q)", id, l.lockInfo.ID)
	}
	os.Truncate(l.lockPath(), 0)
	err := l.lock.Unlock()
	l.lock = nil
	return err
}

// ForceUnlock clears a lock with the given ID. An OS lock cannot be taken from a
// live process; when its holder died the kernel already released it, and this
// only clears the stale lock information.
func (l *Local) ForceUnlock(ctx context.Context, id string) error {
	info := l.readLockInfo()
	if info.ID == "" {
		return fmt.Errorf("the state is not locked")
	}
	if info.ID != id {
		return fmt.Errorf("lock ID %q does not match the current lock %q", id, info.ID)
	}
	fl := flock.New(l.lockPath())
	ok, err := fl.TryLock()
	if err != nil {
		return fmt.Errorf("checking the lock: %w", err)
	}
	if !ok {
		return fmt.Errorf("the lock is held by a live process (%s, pid %d): the local backend uses an OS lock, which is released when that process exits; stop it instead", info.Who, info.PID)
	}
	defer fl.Unlock()
	return os.Truncate(l.lockPath(), 0)
}

// ReadRaw returns the state file's bytes, or nil when there is none.
func (l *Local) ReadRaw(ctx context.Context) ([]byte, error) {
	b, err := os.ReadFile(l.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	return b, nil
}
