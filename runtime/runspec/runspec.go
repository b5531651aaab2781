// Package runspec is the wire contract between lepton (on the user's machine)
// and the node agent (cmd/lepton-agent) on a cluster's instances. The two
// never talk directly: they meet in the run storage (an S3, GCS or Azure Blob
// prefix), and the agent reaches it only through signed URLs that expire, so
// no cloud credential is ever written into user data, a run spec or a log.
//
// A node is started by its user data (Bootstrap), which fetches the agent and
// runs it with a NodeConfig. The agent then
//   - polls its Inbox (GET) for the runs the node should have, a desired
//     state: a run that appears is started once, a run that disappears is
//     stopped;
//   - writes its NodeHeartbeat (PUT) every HeartbeatEvery;
//   - for each run, writes the run's Status (PUT) at least every
//     HeartbeatEvery and on every progress line, and its whole log (PUT);
//   - uploads what the run produced (a model, a batch output) to the signed
//     PUT URLs the run names, then reports the result in its Status.
//
// Keys (relative to the run storage's prefix) are built by the functions at
// the end of this file so both sides agree.
package runspec

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/leptonml/lepton/runtime/rl"
	"github.com/leptonml/lepton/runtime/serve"
	"github.com/leptonml/lepton/runtime/train"
)

// Version is the contract's version; an agent refuses a NodeConfig or Inbox
// of another major version with a clear error in its heartbeat.
const Version = 1

// HeartbeatEvery is how often the agent writes its heartbeat and each run's
// status when nothing else changed. A status older than StaleAfter means the
// agent (or its node) is gone.
const (
	HeartbeatEvery = 2 * time.Second
	StaleAfter     = 15 * time.Second
	// PollEvery is how often the agent reads its inbox.
	PollEvery = 500 * time.Millisecond
)

// Object is one object of the run storage, reached through a signed URL.
type Object struct {
	Key string `json:"key"`
	// URL is signed for one method (GET or PUT) and expires.
	URL string `json:"url"`
	// Header are headers the request must carry for the signature to hold
	// (Azure Blob's x-ms-blob-type on PUT).
	Header map[string]string `json:"header,omitempty"`
	// Digest, when set, is the sha256 ("sha256:<hex>") the object's bytes
	// must have; the agent checks it after a GET.
	Digest string `json:"digest,omitempty"`
}

// NodeConfig is what the user data gives the agent.
type NodeConfig struct {
	Version int    `json:"version"`
	Cloud   string `json:"cloud"`   // aws, gcp or azure: which metadata service gives the node's address
	Cluster string `json:"cluster"` // the cluster's id
	Address string `json:"address"` // the cluster's lepton address, for logs
	Node    int    `json:"node"`    // the node's index in the cluster
	// Inbox is a GET of this node's Inbox; Heartbeat a PUT of its NodeHeartbeat.
	Inbox     Object `json:"inbox"`
	Heartbeat Object `json:"heartbeat"`
}

// Inbox is the desired state of one node, written by lepton.
type Inbox struct {
	Version int `json:"version"`
	// Generation grows with every write.
	Generation int64 `json:"generation"`
	Runs       []Run `json:"runs"`
	// Renew, when set, replaces the node's Inbox and Heartbeat URLs (they
	// expire; every apply that writes an inbox renews them).
	Renew *NodeURLs `json:"renew,omitempty"`
}

// NodeURLs are a node's own signed URLs.
type NodeURLs struct {
	Inbox     Object `json:"inbox"`
	Heartbeat Object `json:"heartbeat"`
}

// NodeHeartbeat is the agent's report on its node.
type NodeHeartbeat struct {
	Node     int       `json:"node"`
	Host     string    `json:"host"` // the node's address from the cloud's metadata service
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	Agent    string    `json:"agent"` // agent version
	Inbox    int64     `json:"inbox_generation"`
	Runs     []string  `json:"runs"` // ids of the runs the agent has going
	Error    string    `json:"error,omitempty"`
	Restarts int       `json:"restarts,omitempty"`
}

// Kinds of run.
const (
	KindTraining = "training"
	KindBatch    = "batch_inference"
	KindEndpoint = "endpoint"
)

// Run is one run on one node.
type Run struct {
	ID      string    `json:"id"` // unique per start: a new id is a new run
	Kind    string    `json:"kind"`
	Address string    `json:"address"` // lepton address (training.mnist)
	Node    int       `json:"node"`
	Nodes   int       `json:"nodes"`
	Expires time.Time `json:"expires"` // when the run's URLs expire

	Training *Training `json:"training,omitempty"`
	Batch    *Batch    `json:"batch,omitempty"`
	Endpoint *Endpoint `json:"endpoint,omitempty"`

	Status Object `json:"status"` // PUT this node's Status (JSON)
	Log    Object `json:"log"`    // PUT this node's whole log (text)

	// Attempt counts restarts: 0 for a first start, n for the run started
	// again after n preemptions or lost nodes (a new ID each time).
	Attempt int `json:"attempt,omitempty"`
	// Checkpoint, when set, is where this node keeps the run's checkpoint so
	// that a restart on another node resumes from it.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
}

// Checkpoint is a run's checkpoint in the run storage, one object per node
// for a whole series of attempts (CheckpointKey): the agent restores it with
// Get before it starts (absent: start fresh) and saves it with Put as the
// run goes (built-in kernels after each checkpointed epoch; a command's
// checkpoint_dir, as a tar archive of one snapshot, when it changed but at
// most every Every seconds, and when the program ends).
type Checkpoint struct {
	Get   *Object `json:"get,omitempty"`
	Put   Object  `json:"put"`
	Every int     `json:"every_seconds,omitempty"`
}

// Training is a built-in training.
type Training struct {
	Objective string      `json:"objective"` // classification, regression, q_learning
	Train     *train.Spec `json:"train,omitempty"`
	RL        *rl.Spec    `json:"rl,omitempty"`
	// Dataset is a GET of the processed dataset snapshot (the local
	// provider's dataset cache format), by digest.
	Dataset   *Object `json:"dataset,omitempty"`
	BaseModel *Object `json:"base_model,omitempty"` // GET of the base model artifact
	// Model is a PUT for the trained model artifact (its .lmodel bytes);
	// Metrics a PUT for the run's curves (the local run metrics JSON).
	Model   Object  `json:"model"`
	Metrics *Object `json:"metrics,omitempty"`
	// Command, when set, replaces the built-in kernel with the user's own
	// program (a training's run block); Model and Metrics are then unused.
	Command *Command `json:"command,omitempty"`
}

// DefaultMasterPort is MASTER_PORT when a run names none: torchrun's own
// default, so a program written for torchrun finds its rendezvous there.
const DefaultMasterPort = 29500

// CommandModelFile is the name in LEPTON_OUTPUT_DIR of a lepton model the
// program made (the .lmodel encoding): the training records it as its model.
const CommandModelFile = "model.lmodel"

// Command is the user's own program, started on every node of the run with
// the torchrun conventions in its environment:
//
//	NODE_RANK              Run.Node
//	NUM_NODES, NNODES      Run.Nodes
//	MASTER_ADDR            MasterAddr (node 0's private address)
//	MASTER_PORT            MasterPort
//	GPUS_PER_NODE          GPUsPerNode
//	CUDA_VISIBLE_DEVICES   0,1,…,GPUsPerNode-1 (unset without GPUs)
//	LEPTON_RUN_ID          Run.ID
//	LEPTON_OUTPUT_DIR      an empty folder; node 0's is uploaded to Output
//	LEPTON_CHECKPOINT_DIR  CheckpointDir, synced through Run.Checkpoint
//
// and Env on top (the user's own values win).
type Command struct {
	// Args is the program and its arguments, run without a shell.
	Args []string `json:"args"`
	// Image, when set, runs Args in that container image with the node's
	// docker or podman (GPUs passed through, the folders mounted at the same
	// paths, the host's network so MASTER_ADDR is reachable).
	Image string            `json:"image,omitempty"`
	Env   map[string]string `json:"env,omitempty"`
	// Workdir is a GET of the user's work folder as a gzipped tar (its key
	// and Digest are the archive's sha256: uploaded once), unpacked as the
	// program's working directory. Absent: an empty folder.
	Workdir *Object `json:"workdir,omitempty"`
	// CheckpointDir is LEPTON_CHECKPOINT_DIR: a path on the node, relative
	// ones inside the working directory; empty: a folder of the run's own.
	CheckpointDir string `json:"checkpoint_dir,omitempty"`
	MasterAddr    string `json:"master_addr,omitempty"`
	MasterPort    int    `json:"master_port,omitempty"`
	GPUsPerNode   int    `json:"gpus_per_node,omitempty"`
	// Output is a PUT of LEPTON_OUTPUT_DIR as a tar (OutputTar's canonical
	// form), given to node 0 only; Result.Digest is its sha256 and
	// Result.Model the digest of a lepton model found in it
	// (CommandModelFile).
	Output *Object `json:"output,omitempty"`
}

// Batch is a batch inference.
type Batch struct {
	Dataset Object `json:"dataset"` // GET of the raw rows snapshot (dataset cache format)
	Model   Object `json:"model"`   // GET of the model artifact
	Output  Object `json:"output"`  // PUT of the scored rows (JSON lines, as locally)
}

// Endpoint is a model server on the node.
type Endpoint struct {
	// Server is the server's configuration as locally, with Host and
	// Model.Store/Artifact left for the agent to fill (the node's address, its
	// download of Model).
	Server serve.ProcessSpec `json:"server"`
	Model  Object            `json:"model"` // GET of the model artifact; a new digest is a rolling swap
}

// States of a run.
const (
	StateStarting  = "starting"
	StateRunning   = "running"
	StateServing   = "serving"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateStopped   = "stopped"
)

// Status is one node's report on one run.
type Status struct {
	Run     string    `json:"run"`
	Node    int       `json:"node"`
	Host    string    `json:"host"`
	State   string    `json:"state"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"` // the run's heartbeat
	// Lines are the last progress lines (epoch, loss, samples/s, eta) as a
	// local run prints them; LineSeq counts every progress line so far, so a
	// reader prints those it has not seen.
	Lines   []string `json:"lines,omitempty"`
	LineSeq int      `json:"line_seq"`
	Error   string   `json:"error,omitempty"`
	Result  *Result  `json:"result,omitempty"`
	// Ended is when the run reached its terminal state: of several failed
	// nodes, the one that ended first is the cause.
	Ended time.Time `json:"ended,omitzero"`
	// ExitCode is a command's exit status once it ended (-1: killed by a
	// signal); nil for built-in runs and commands that never started.
	ExitCode *int `json:"exit_code,omitempty"`
	// Interrupted says a failed run did not fail of itself: its node's
	// agent was stopped under it (SIGTERM: the instance is being preempted
	// or shut down). lepton starts such a run again elsewhere (Run.Attempt)
	// instead of reporting its failure.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Result is what a finished run (or a serving endpoint) reports.
type Result struct {
	Model           string             `json:"model,omitempty"` // digest of the uploaded model artifact
	Metrics         map[string]float64 `json:"metrics,omitempty"`
	EpochsCompleted int                `json:"epochs_completed,omitempty"`
	Rows            int                `json:"rows,omitempty"`   // batch: rows scored
	Digest          string             `json:"digest,omitempty"` // batch: digest of the output; command: of node 0's output tar
	URL             string             `json:"url,omitempty"`    // endpoint: the node's server
	ModelVersion    string             `json:"model_version,omitempty"`
}

// MaxLines bounds Status.Lines.
const MaxLines = 50

// Terminal reports whether a run in state s will not change again.
func Terminal(s string) bool {
	return s == StateSucceeded || s == StateFailed || s == StateStopped
}

// Stale reports whether a status or heartbeat written at updated is too old
// to be believed at now.
func Stale(updated, now time.Time) bool { return now.Sub(updated) > StaleAfter }

// Decode reads a JSON document of the contract, refusing unknown versions
// and naming what it was.
func Decode(what string, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return &DecodeError{What: what, Size: len(b), Err: err}
	}
	return nil
}

// DecodeError is a document of the contract that is not valid JSON of its
// type (a torn or corrupted object).
type DecodeError struct {
	What string
	Size int
	Err  error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("%s is not valid (%d bytes): %v", e.What, e.Size, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

func hexOf(digest string) string { return strings.TrimPrefix(digest, "sha256:") }

// Keys of the run storage.
func AgentKey(sha string) string          { return "agent/lepton-agent-" + hexOf(sha) }
func DatasetKey(digest string) string     { return "datasets/" + hexOf(digest) + ".bin" }
func ArtifactKey(digest string) string    { return "artifacts/sha256-" + hexOf(digest) + ".lmodel" }
func ClusterPrefix(cluster string) string { return "clusters/" + cluster + "/" }
func InboxKey(cluster string, node int) string {
	return fmt.Sprintf("clusters/%s/node-%d/inbox.json", cluster, node)
}
func HeartbeatKey(cluster string, node int) string {
	return fmt.Sprintf("clusters/%s/node-%d/heartbeat.json", cluster, node)
}
func RunPrefix(run string) string { return "runs/" + run + "/" }
func StatusKey(run string, node int) string {
	return fmt.Sprintf("runs/%s/node-%d/status.json", run, node)
}
func LogKey(run string, node int) string { return fmt.Sprintf("runs/%s/node-%d/log", run, node) }
func ModelKey(run string) string         { return "runs/" + run + "/model.lmodel" }
func MetricsKey(run string) string       { return "runs/" + run + "/metrics.json" }
func OutputKey(run string) string        { return "runs/" + run + "/output.jsonl" }
func BatchInputKey(digest string) string { return "datasets/raw-" + hexOf(digest) + ".bin" }

// WorkdirKey is a command's work folder archive (tar.gz), by digest.
func WorkdirKey(digest string) string { return "workdirs/" + hexOf(digest) + ".tar.gz" }

// CommandOutputKey is node 0's LEPTON_OUTPUT_DIR of a command run (tar).
func CommandOutputKey(run string) string { return "runs/" + run + "/output.tar" }

// CheckpointKey is node's checkpoint for a series of attempts of one run
// (series is the first attempt's run id).
func CheckpointKey(series string, node int) string {
	return fmt.Sprintf("checkpoints/%s/node-%d.tar", series, node)
}
