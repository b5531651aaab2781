package local

import (
	"errors"
	"net"
	"strconv"
	"syscall"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/runtime/serve"
	"github.com/zclconf/go-cty/cty"
)

// checkPortFree says, at plan time, whether an endpoint's fixed port is
// already taken on this machine by something other than this endpoint's
// own server (which keeps it, or gives it up to its replacement).
func checkPortFree(address string, port int, prior cty.Value, env providers.Env) error {
	if port <= 0 || ownsPort(address, port, prior, env) {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err == nil {
		ln.Close()
		return nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return providers.ArgErrorf("port", "port %d is already in use on this machine by another program; choose another port, or leave port unset for any free one", port)
	}
	if errors.Is(err, syscall.EACCES) {
		return providers.ArgErrorf("port", "port %d cannot be used without privileges on this machine (ports below 1024 are reserved); choose a port from 1024 up, or leave port unset", port)
	}
	return providers.ArgErrorf("port", "port %d cannot be listened on: %v", port, err)
}

// ownsPort: the endpoint's own server process (from state, or from the ready
// file of one an interrupted apply started) is alive on that port.
func ownsPort(address string, port int, prior cty.Value, env providers.Env) bool {
	if !prior.IsNull() {
		if p := processOf(env.DataDir, address, prior); p.Port == port && serve.Alive(p) {
			return true
		}
	}
	if env.DataDir == "" {
		return false
	}
	info, err := serve.ReadReady(processFiles(env.DataDir, address).ReadyPath)
	return err == nil && info.Port == port && serve.Alive(serve.Process{Pid: info.Pid})
}
