package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/clusters"
	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/data"
	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/leptonml/lepton/runtime/serve"
	"github.com/zclconf/go-cty/cty"
)

// Runs on a cloud cluster's nodes: lepton hands the run to the node's agent
// through the run storage (providers/remote) and follows its status there.
// A killed apply leaves the run going; its id is recorded in state (the
// instance's private data) before the node is told, so the next apply waits
// for that run instead of starting another.

// target is the cloud cluster a run is placed on.
type target struct {
	address string // cluster.gpu
	key     string // its name in the run storage
	cloud   string
	hosts   []string
	ids     []string
	// compute is set for a run on nodes of its own (resources { }) or on
	// a named cluster's: they are replaced when lost (remote_recover.go).
	compute *runCompute
}

// targetOf returns the cluster at clusterAddr when it is on cloud nodes;
// ok is false for a local cluster (the run stays on this machine).
func targetOf(env providers.Env, clusterAddr string) (target, bool, error) {
	if clusterAddr == "" {
		return target{}, false, nil
	}
	if env.Lookup == nil {
		return target{}, false, fmt.Errorf("%s is not known here", clusterAddr)
	}
	v, found := env.Lookup(clusterAddr)
	if !found || v.IsNull() {
		return target{}, false, fmt.Errorf("%s is not in state: apply it first", clusterAddr)
	}
	cloudName := str(attr(v, "cloud"))
	if cloudName == "" || cloudName == clusters.Local {
		return target{}, false, nil
	}
	t := target{address: clusterAddr, key: remote.ClusterKey(clusterAddr), cloud: cloudName,
		hosts: strList(attr(v, "node_addresses")), ids: strList(attr(v, "node_ids"))}
	if len(t.ids) == 0 {
		return t, false, fmt.Errorf("%s has no running node", clusterAddr)
	}
	return t, true, nil
}

// host names node i for messages.
func (t target) host(i int) string {
	if i < len(t.ids) && i < len(t.hosts) {
		return t.ids[i] + ", " + t.hosts[i]
	}
	if i < len(t.ids) {
		return t.ids[i]
	}
	return "gone"
}

// runPrivate is what state keeps of a remote run (the instance's private
// data).
type runPrivate struct {
	Run     string    `json:"run"`
	Cluster string    `json:"cluster"` // the cluster's address
	Cloud   string    `json:"cloud"`
	Storage string    `json:"storage"` // the run storage's URL
	Nodes   []int     `json:"nodes"`
	Started time.Time `json:"started"`
	// Workdir is the digest of a run block's work folder (its canonical
	// tar): a plan retrains when the folder's content changed.
	Workdir string `json:"workdir,omitempty"`
	// Kube is set for a run or endpoint on a Kubernetes cluster.
	Kube *kubeRun `json:"kube,omitempty"`
	// Recovery (remote_recover.go): Series is the first attempt's run id
	// (the checkpoints' key), Attempt the restarts so far, Restarts why.
	Series   string        `json:"series,omitempty"`
	Attempt  int           `json:"attempt,omitempty"`
	Restarts []restart     `json:"restarts,omitempty"`
	Compute  *computeNodes `json:"compute,omitempty"` // the run's own nodes (resources.go)
	// Replacing is a named cluster's node being replaced (remote_recover.go).
	Replacing *nodeReplacing `json:"replacing,omitempty"`
}

func parsePrivate(b []byte) (runPrivate, bool) {
	var p runPrivate
	if len(b) == 0 || json.Unmarshal(b, &p) != nil || p.Run == "" {
		return runPrivate{}, false
	}
	return p, true
}

func (p runPrivate) bytes() []byte {
	b, _ := json.Marshal(p)
	return b
}

// newRunID names a run: the address's storage name and random bits, so a
// new start is always a new run.
func newRunID(address string) string {
	var b [6]byte
	rand.Read(b[:])
	return remote.ClusterKey(address) + "-" + hex.EncodeToString(b[:])
}

// open opens the run storage of the target's cloud.
func openRuns(ctx context.Context, runs *remote.Runs, env providers.Env, t target) (*remote.Client, error) {
	return runs.Open(ctx, t.cloud, env.Providers[t.cloud], env.Lineage, false)
}

// runObjects signs a run's per-node status and log objects.
func runObjects(ctx context.Context, c *remote.Client, id string, node int) (status, log runspec.Object, err error) {
	if status, err = c.Store.Sign(ctx, runspec.StatusKey(id, node), "PUT", remote.URLTTL); err != nil {
		return
	}
	log, err = c.Store.Sign(ctx, runspec.LogKey(id, node), "PUT", remote.URLTTL)
	return
}

// uploadArtifact puts a local model artifact in the run storage (once) and
// signs a GET of it.
func uploadArtifact(ctx context.Context, c *remote.Client, dataDir, digest string) (runspec.Object, error) {
	key := runspec.ArtifactKey(digest)
	err := c.Upload(ctx, key, func() (io.ReadCloser, error) {
		b, err := artifactStore(dataDir).GetEncoded(ctx, digest)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader(string(b))), nil
	})
	if err != nil {
		return runspec.Object{}, err
	}
	o, err := c.Store.Sign(ctx, key, "GET", remote.URLTTL)
	o.Digest = digest
	return o, err
}

// uploadDataset puts a dataset's processed snapshot (the local cache) in
// the run storage, once per digest, and signs a GET of it. The snapshot is
// made first when this machine has none.
func uploadDataset(ctx context.Context, c *remote.Client, env providers.Env, dsAddr string, dsVal cty.Value) (runspec.Object, error) {
	digest, err := snapshotDataset(ctx, env, dsAddr, dsVal)
	if err != nil {
		return runspec.Object{}, err
	}
	local := storeOf(env.DataDir)
	key := runspec.DatasetKey(digest)
	if err := c.Upload(ctx, key, func() (io.ReadCloser, error) { return local.Get(ctx, cacheKey(digest)) }); err != nil {
		return runspec.Object{}, err
	}
	return c.Store.Sign(ctx, key, "GET", remote.URLTTL)
}

// snapshotDataset makes sure this machine has the processed snapshot of a
// dataset (its local cache, key cacheKey(digest)) and returns its digest.
func snapshotDataset(ctx context.Context, env providers.Env, dsAddr string, dsVal cty.Value) (string, error) {
	digest := str(attr(dsVal, "digest"))
	if digest == "" {
		return "", fmt.Errorf("%s has no digest: apply it first", dsAddr)
	}
	if ok, _ := runstore.Exists(ctx, storeOf(env.DataDir), cacheKey(digest)); !ok {
		ds, err := loadDataset(ctx, env, dsAddr, dsVal)
		if err != nil {
			return "", err
		}
		if ds.Digest != digest {
			return "", fmt.Errorf("%s changed since it was applied (digest %s, state has %s): run plan again", dsAddr, ds.Digest, digest)
		}
		if err := writeCache(ctx, env.DataDir, ds); err != nil {
			return "", fmt.Errorf("snapshotting %s: %w", dsAddr, err)
		}
	}
	return digest, nil
}

// loadDataset reads and processes a dataset as its apply did.
func loadDataset(ctx context.Context, env providers.Env, dsAddr string, dsVal cty.Value) (*data.Dataset, error) {
	spec, err := SpecFromValue(dsVal, env.Dir)
	if err != nil {
		return nil, err
	}
	ds, err := data.Load(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", dsAddr, err)
	}
	sub, err := subsetOf(dsVal)
	if err != nil {
		return nil, err
	}
	if err := sub.apply(ds); err != nil {
		return nil, err
	}
	ds.Digest = sub.digest(ds.Digest)
	return ds, nil
}

// runningDetail describes a remote run for the plan: where, since when, and
// its last progress line.
func runningDetail(ctx context.Context, runs *remote.Runs, env providers.Env, p runPrivate) []string {
	where := fmt.Sprintf("run %s is going on %s", p.Run, p.Cluster)
	if !p.Started.IsZero() {
		where += " since " + p.Started.UTC().Format(time.RFC3339)
	}
	lines := []string{where + "; apply waits for it"}
	if p.Kube != nil {
		return append(lines, kubePods(ctx, *p.Kube, p.Kube.Selector))
	}
	c, err := openPrivate(ctx, runs, env, p)
	if err != nil {
		return append(lines, "status unknown: "+err.Error())
	}
	for _, n := range p.Nodes {
		st, found, err := c.Status(ctx, p.Run, n)
		switch {
		case err != nil:
			lines = append(lines, fmt.Sprintf("node %d: status unknown: %v", n, err))
		case !found:
			lines = append(lines, fmt.Sprintf("node %d: not started yet", n))
		default:
			s := fmt.Sprintf("node %d (%s): %s", n, st.Host, st.State)
			if len(st.Lines) > 0 {
				s += ", " + strings.TrimSpace(st.Lines[len(st.Lines)-1])
			}
			if !runspec.Terminal(st.State) && runspec.Stale(st.Updated, time.Now()) {
				s += fmt.Sprintf(" (no report since %s)", st.Updated.UTC().Format(time.RFC3339))
			}
			lines = append(lines, s)
		}
	}
	return lines
}

func logger(env providers.Env) func(string, ...any) {
	if env.Log == nil {
		return func(string, ...any) {}
	}
	return env.Log
}

func nowUTC() time.Time { return time.Now().UTC().Truncate(time.Second) }

// deleteRemoteRun takes a run off its nodes and removes its objects; a run
// with nodes of its own deletes them (compute).
func deleteRemoteRun(ctx context.Context, runs *remote.Runs, compute *clusters.Cluster, env providers.Env, p runPrivate) error {
	if p.Compute != nil {
		if err := deleteComputeNodes(ctx, compute, env, p); err != nil {
			return fmt.Errorf("deleting the nodes of run %s: %w", p.Run, err)
		}
	}
	if p.Storage == "" && p.Cloud == "" {
		return nil // its nodes were never made
	}
	c, err := openPrivate(ctx, runs, env, p)
	if err != nil {
		return fmt.Errorf("removing run %s: %w", p.Run, err)
	}
	key := remote.ClusterKey(p.Cluster)
	if p.Compute == nil {
		for _, n := range p.Nodes {
			if err := c.RemoveRun(ctx, key, n, p.Run); err != nil {
				return err
			}
		}
	}
	for _, r := range p.Restarts {
		if err := c.DeleteRun(ctx, r.Run); err != nil {
			return err
		}
	}
	if p.Compute != nil {
		if err := deleteComputeObjects(ctx, c, p); err != nil {
			return err
		}
	}
	return c.DeleteRun(ctx, p.Run)
}

// openPrivate opens the run storage a recorded run lives in.
func openPrivate(ctx context.Context, runs *remote.Runs, env providers.Env, p runPrivate) (*remote.Client, error) {
	if p.Storage != "" {
		return runs.OpenURL(ctx, p.Storage, env.Providers[p.Cloud], env.Lineage)
	}
	return runs.Open(ctx, p.Cloud, env.Providers[p.Cloud], env.Lineage, false)
}

// remoteLog is one node's log of a remote run (in.Node; node 0 by default).
func remoteLog(ctx context.Context, runs *remote.Runs, in providers.InstanceView, p runPrivate, follow bool) (io.ReadCloser, error) {
	node := 0
	if len(p.Nodes) > 0 {
		node = p.Nodes[0]
	}
	if in.Node != 0 {
		if !slices.Contains(p.Nodes, in.Node) {
			return nil, fmt.Errorf("%s ran on %s on node(s) %s: there is no node %d", in.Address, p.Cluster, nodeList(p.Nodes), in.Node)
		}
		node = in.Node
	}
	c, err := openPrivate(ctx, runs, in.Env, p)
	if err != nil {
		return nil, err
	}
	return c.Log(ctx, p.Run, node, follow)
}

// localLogOnly refuses another node's log of a run on this machine.
func localLogOnly(in providers.InstanceView) error {
	if in.Node != 0 {
		return fmt.Errorf("%s ran on this machine: it has no node %d, only one log (leave out -node)", in.Address, in.Node)
	}
	return nil
}

func nodeList(nodes []int) string {
	s := make([]string, len(nodes))
	for i, n := range nodes {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// remoteDetail is a remote run's line in `lepton status`.
func remoteDetail(ctx context.Context, runs *remote.Runs, in providers.InstanceView, p runPrivate) string {
	lines := runningDetail(ctx, runs, in.Env, p)
	return strings.Join(lines, "; ")
}

// remoteEndpointStatus health-checks an endpoint on every node.
func remoteEndpointStatus(ctx context.Context, runs *remote.Runs, in providers.InstanceView, p runPrivate, a map[string]any) providers.StatusReport {
	var rep providers.StatusReport
	c, err := openPrivate(ctx, runs, in.Env, p)
	if err != nil {
		return providers.StatusReport{Status: "unknown", Detail: err.Error()}
	}
	healthy := 0
	var urls []string
	for _, n := range p.Nodes {
		st, found, err := c.Status(ctx, p.Run, n)
		if err != nil || !found || st.Result == nil || st.State != runspec.StateServing {
			urls = append(urls, fmt.Sprintf("node %d: not serving", n))
			continue
		}
		if err := serve.Health(ctx, st.Result.URL); err != nil {
			urls = append(urls, fmt.Sprintf("node %d: %s (down)", n, st.Result.URL))
			continue
		}
		healthy++
		urls = append(urls, st.Result.URL)
		if rep.Extra == nil {
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			tr, _ := serve.ReadTraffic(sctx, st.Result.URL)
			cancel()
			rep.Extra = map[string]string{"requests": strconv.FormatFloat(tr.HTTPRequests, 'f', 0, 64), "model_version": st.Result.ModelVersion}
		}
	}
	switch {
	case healthy == len(p.Nodes) && healthy > 0:
		rep.Status = "healthy"
	case healthy > 0:
		rep.Status = "degraded"
	default:
		rep.Status = "down"
	}
	rep.Detail = fmt.Sprintf("%s on %s: %s", p.Run, p.Cluster, strings.Join(urls, ", "))
	return rep
}
