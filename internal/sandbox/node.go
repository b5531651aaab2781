package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/leptonml/lepton/internal/fsutil"
	"github.com/leptonml/lepton/runtime/runspec"
)

// NodeRecord is a node as DIR/nodes/ID/node.json records it.
type NodeRecord struct {
	Cloud    string    `json:"cloud"`
	ID       string    `json:"id"`
	IP       string    `json:"ip"`
	PID      int       `json:"pid"`
	Metadata string    `json:"metadata"` // the node's metadata server (host:port)
	Started  time.Time `json:"started"`
	// Stopped is when the sandbox stopped the node's processes; Cause why:
	// terminated, deleted, preempted, evicted, stopped, or sandbox-stopped.
	Stopped *time.Time `json:"stopped,omitempty"`
	Cause   string     `json:"cause,omitempty"`
	// Exited is when the user data's bash ended by itself, with its status.
	Exited   *time.Time `json:"exited,omitempty"`
	ExitCode *int       `json:"exit_code,omitempty"`
	Error    string     `json:"error,omitempty"` // the node could not be booted
}

// node is one booted instance: a bash running its user data in its own
// process group, and its metadata server.
type node struct {
	dir  string
	md   *metadataServer
	srv  *http.Server
	info instanceInfo

	mu     sync.Mutex
	rec    NodeRecord
	cmd    *exec.Cmd
	exited chan struct{} // closed when bash has been reaped
	done   chan struct{} // closed when stop has finished
	// crashed is called when the node's process is killed by a signal the
	// sandbox did not send: the machine failed.
	crashed func()
}

// bootNode starts a node for an instance: its directory, its metadata
// server on the instance's own address, and bash on the user data, as
// cloud-init runs it once at first boot. A node that cannot boot is
// recorded with the error (the instance still "runs", as a real one whose
// user data failed does).
func bootNode(nodesDir string, info instanceInfo, grace time.Duration, logf func(string, ...any), crashed func()) *node {
	n := &node{
		crashed: crashed,
		dir:     filepath.Join(nodesDir, info.ID),
		info:    info,
		md:      newMetadataServer(info),
		exited:  make(chan struct{}),
		done:    make(chan struct{}),
		rec:     NodeRecord{Cloud: info.Cloud, ID: info.ID, IP: info.IP, Started: time.Now().UTC()},
	}
	if err := n.boot(); err != nil {
		n.rec.Error = err.Error()
		logf("node %s %s: %v", info.Cloud, info.ID, err)
		close(n.exited)
	}
	n.save()
	return n
}

func (n *node) boot() error {
	// A name used again (an instance recreated with the same name) keeps
	// the earlier node's directory beside the new one.
	if _, err := os.Stat(n.dir); err == nil {
		for i := 1; ; i++ {
			old := fmt.Sprintf("%s.%d", n.dir, i)
			if _, err := os.Stat(old); errors.Is(err, os.ErrNotExist) {
				if err := os.Rename(n.dir, old); err != nil {
					return err
				}
				break
			}
		}
	}
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(n.info.IP, "0"))
	if err != nil {
		return fmt.Errorf("the metadata server on %s: %w", n.info.IP, err)
	}
	n.rec.Metadata = ln.Addr().String()
	n.srv = &http.Server{Handler: n.md, ReadHeaderTimeout: 10 * time.Second}
	go n.srv.Serve(ln)

	script := filepath.Join(n.dir, "user-data")
	if err := os.WriteFile(script, []byte(n.info.UserData), 0o700); err != nil {
		return err
	}
	console, err := os.OpenFile(filepath.Join(n.dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer console.Close()
	bash, err := exec.LookPath("bash")
	if err != nil {
		return fmt.Errorf("nodes run their user data with bash: %w", err)
	}
	cmd := exec.Command(bash, script)
	cmd.Dir = n.dir
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = console, console
	// Its own process group, so terminating the instance ends everything the
	// user data started; nothing of the sandbox's environment (its cloud
	// keys) reaches the node.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + n.dir,
		runspec.NodeDirEnv + "=" + n.dir,
		metadataEnv(n.info.Cloud, n.rec.Metadata),
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting bash on the user data: %w", err)
	}
	n.cmd = cmd
	n.rec.PID = cmd.Process.Pid
	go n.reap()
	return nil
}

// metadataEnv is the variable pointing the cloud's clients at the node's
// metadata server.
func metadataEnv(cloud, hostport string) string {
	switch cloud {
	case "aws":
		return runspec.AWSMetadataEnv + "=http://" + hostport
	case "gcp":
		return runspec.GCEMetadataEnv + "=" + hostport
	default:
		return runspec.AzureMetadataEnv + "=http://" + hostport
	}
}

func (n *node) reap() {
	err := n.cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	now := time.Now().UTC()
	n.mu.Lock()
	n.rec.Exited, n.rec.ExitCode = &now, &code
	stopping := n.rec.Cause != ""
	n.mu.Unlock()
	close(n.exited)
	n.save()
	// The node's process is the machine: one killed from outside (kill -9
	// of its pid) is a failed instance, which the cloud then reports gone.
	// A user data script that ends by itself leaves the machine up, as
	// cloud-init does.
	if ws, ok := n.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && !stopping && n.crashed != nil {
		n.crashed()
	}
}

// stop ends the node: SIGTERM to its process group, SIGKILL after grace to
// what is left, then its metadata server. The directory stays. Only the
// first call acts; every call returns once the node is down.
func (n *node) stop(cause string, grace time.Duration) {
	n.mu.Lock()
	if n.rec.Stopped != nil || n.rec.Cause != "" {
		n.mu.Unlock()
		<-n.done
		return
	}
	n.rec.Cause = cause
	pgid := n.rec.PID
	n.mu.Unlock()
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		deadline := time.Now().Add(grace)
		for groupAlive(pgid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if groupAlive(pgid) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			for i := 0; i < 100 && groupAlive(pgid); i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
		<-n.exited
	}
	if n.srv != nil {
		n.srv.Close()
	}
	now := time.Now().UTC()
	n.mu.Lock()
	n.rec.Stopped = &now
	n.mu.Unlock()
	n.save()
	close(n.done)
}

// groupAlive reports whether any process of group pgid is left.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}

func (n *node) record() NodeRecord {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rec
}

// save writes node.json (atomically: write and rename).
func (n *node) save() {
	b, err := json.MarshalIndent(n.record(), "", "  ")
	if err != nil {
		return
	}
	writeFileAtomic(filepath.Join(n.dir, "node.json"), append(b, '\n'), 0o644)
}

// writeFileAtomic writes a sandbox file atomically (no fsync: they are
// rebuilt by every run).
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	return fsutil.WriteFile(path, b, mode, fsutil.Options{NoSync: true})
}
