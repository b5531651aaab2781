package local

import "path/filepath"

// EndpointLogPath is the log `lepton logs` prints for an endpoint.
func EndpointLogPath(dataDir, address string) string {
	return filepath.Join(endpointDir(dataDir, address), "server.log")
}
