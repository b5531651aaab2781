package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/uuid"
)

// LockInfo says who holds a lock.
type LockInfo struct {
	ID        string    `json:"ID"`
	Operation string    `json:"Operation"`
	Who       string    `json:"Who"`
	Version   string    `json:"Version"`
	Created   time.Time `json:"Created"`
	Path      string    `json:"Path"`
	PID       int       `json:"PID"`
}

func (l LockInfo) String() string {
	return fmt.Sprintf("ID: %s\n  Operation: %s\n  Who: %s (pid %d)\n  Version: %s\n  Created: %s\n  Path: %s",
		l.ID, l.Operation, l.Who, l.PID, l.Version, l.Created.Format(time.RFC3339), l.Path)
}

// LockError is returned when another process holds the lock.
type LockError struct {
	Info LockInfo
	Err  error
}

func (e *LockError) Error() string {
	if e.Info.ID == "" {
		return fmt.Sprintf("Error acquiring the state lock: %v", e.Err)
	}
	return fmt.Sprintf("Error acquiring the state lock: the state is locked by %s, running %q since %s.\n\nLock Info:\n  %s\n\nlepton acquires a lock when it changes state, so that two commands do not write it at once. Wait for that command to finish, or pass -lock-timeout to wait for it. A lock whose holder died is released with it.",
		e.Info.Who, e.Info.Operation, e.Info.Created.Format(time.RFC3339), e.Info)
}

// Local stores state in a file, with a backup of the previous version and an
// OS file lock beside it (released by the kernel when the holder dies).
type Local struct {
	Path       string
	BackupPath string
	lock       *flock.Flock
	lockInfo   LockInfo
	backedUp   bool
}

// NewLocal returns the local backend for path.
func NewLocal(path string) *Local {
	return &Local{Path: path, BackupPath: path + ".backup"}
}

func (l *Local) lockPath() string { return l.Path + ".lock" }

// Read returns the state, or nil when there is none yet.
func (l *Local) Read() (*State, error) {
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

// Write replaces the state atomically: temporary file, fsync, rename, fsync of
// the directory. The first write of a command keeps the previous file as the backup.
func (l *Local) Write(s *State) error {
	b, err := s.Encode()
	if err != nil {
		return err
	}
	return l.WriteBytes(b)
}

// WriteBytes writes already-encoded state atomically.
func (l *Local) WriteBytes(b []byte) error {
	if !l.backedUp {
		if prev, err := os.ReadFile(l.Path); err == nil {
			if err := atomicWrite(l.BackupPath, prev); err != nil {
				return fmt.Errorf("writing state backup: %w", err)
			}
		}
		l.backedUp = true
	}
	if err := atomicWrite(l.Path, b); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	return nil
}

func atomicWrite(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Who names the current user and host for lock messages.
func Who() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// Lock takes the lock, waiting up to timeout (0: fail at once).
func (l *Local) Lock(ctx context.Context, operation, version string, timeout time.Duration) (LockInfo, error) {
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
	info := LockInfo{ID: uuid.NewString(), Operation: operation, Who: Who(), Version: version, Created: time.Now().UTC(), Path: l.Path, PID: os.Getpid()}
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
func (l *Local) Unlock() error {
	if l.lock == nil {
		return nil
	}
	os.Truncate(l.lockPath(), 0)
	err := l.lock.Unlock()
	l.lock = nil
	return err
}

// ForceUnlock clears a lock with the given ID. An OS lock cannot be taken from a
// live process; when its holder died the kernel already released it, and this
// only clears the stale lock information.
func (l *Local) ForceUnlock(id string) error {
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
