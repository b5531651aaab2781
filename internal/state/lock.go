package state

import (
	"fmt"
	"os"
	"os/user"
	"time"

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
	// Hint ends the message: what to do about the lock. Empty: the local
	// backend's (an OS lock, released when its holder dies).
	Hint string
}

func (e *LockError) Error() string {
	if e.Info.ID == "" {
		return fmt.Sprintf("Error acquiring the state lock: %v", e.Err)
	}
	hint := e.Hint
	if hint == "" {
		hint = "A lock whose holder died is released with it."
	}
	return fmt.Sprintf("Error acquiring the state lock: the state is locked by %s, running %q since %s.\n\nLock Info:\n  %s\n\nlepton acquires a lock when it changes state, so that two commands do not write it at once. Wait for that command to finish, or pass -lock-timeout to wait for it. %s",
		e.Info.Who, e.Info.Operation, e.Info.Created.Format(time.RFC3339), e.Info, hint)
}

// RemoteLockHint is the LockError hint of backends whose lock outlives a
// killed holder (every one but local).
const RemoteLockHint = "This backend's lock stays when its holder is killed: once sure that command is not running, clear it with lepton force-unlock and the lock ID above."

// NewLockInfo returns the information of a new lock for operation, taken now
// by this process; the backend sets Path.
func NewLockInfo(operation, version string) LockInfo {
	return LockInfo{ID: uuid.NewString(), Operation: operation, Who: Who(), Version: version, Created: time.Now().UTC(), PID: os.Getpid()}
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
