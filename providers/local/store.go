package local

import (
	"path/filepath"
	"strings"

	"github.com/leptonml/lepton/runtime/rl"
	"github.com/leptonml/lepton/runtime/runstore"
)

// This machine keeps what runs produce in the .lepton directory, through
// the runtime's store interface: the keys below are the paths .lepton has
// always had, so a directory written by an older lepton reads the same.
//
//	artifacts/sha256-<hex>.lmodel   model artifacts (runtime/artifact)
//	datasets/<hex>.txt, <hex>.bin   a dataset's report and processed cache
//	runs/<address>/                 a training's log, checkpoints, spec marker
//	endpoints/<address>/            a server's spec, ready file and log

// dirOptions: processed caches and q-learning checkpoints hold a user's
// data (0600); reports and caches are rebuilt when missing, and an fsync
// per dataset would slow applies of thousands of them.
var dirOptions = runstore.DirOptions{
	Private: []string{"datasets/*.bin", "runs/*/" + rl.CheckpointFile},
	NoSync:  []string{"datasets/*.txt", "datasets/*.bin"},
}

// storeOf is the store under dataDir (.lepton).
func storeOf(dataDir string) *runstore.Dir {
	return runstore.NewDir(dataDir, dirOptions)
}

func safeName(address string) string {
	r := strings.NewReplacer("[", "_", "]", "", "\"", "", "/", "_", " ", "_")
	return r.Replace(address)
}

// runPrefix holds a training's files.
func runPrefix(address string) string { return "runs/" + safeName(address) + "/" }

// endpointPrefix holds an endpoint's files.
func endpointPrefix(address string) string { return "endpoints/" + safeName(address) + "/" }

// Keys within a run's or an endpoint's prefix.
const (
	trainLogKey   = "train.log"
	specMarkerKey = "spec.sha256" // the arguments the run's checkpoints belong to
	serverLogKey  = "server.log"
)

// RunDir is the local directory of a training's objects (runs/ADDRESS/ in
// the .lepton store), for files written beside them outside the store (the
// run metrics the UI reads).
func RunDir(dataDir, address string) string {
	return filepath.Join(storeOf(dataDir).Root(), filepath.FromSlash(strings.TrimSuffix(runPrefix(address), "/")))
}

// LogPath is the file of a training's log (for readers on this machine,
// like the UI; the CLI reads it through Training.Logs).
func LogPath(dataDir, address string) string {
	return filepath.Join(RunDir(dataDir, address), trainLogKey)
}

// EndpointLogPath is the file of an endpoint's server log.
func EndpointLogPath(dataDir, address string) string {
	return processFiles(dataDir, address).LogPath
}
