// Package remote is lepton's side of remote runs: the run storage of a state
// in a cloud (an S3, GCS or Azure Blob prefix), the node agent uploaded there,
// the nodes' user data, their inboxes, and waiting on a run's status. The
// agent's side is runtime/agent; the contract between them is
// runtime/runspec.
//
// Layout under a state's run prefix (see RootURL):
//
//	agent/lepton-agent-<sha256>      the agent binary, uploaded once
//	clusters/<cluster>/node-<i>/…    a node's inbox and heartbeat
//	runs/<run>/…                     a run's statuses, logs and outputs
//	datasets/<digest>.bin            dataset snapshots, uploaded once
//	artifacts/sha256-<hex>.lmodel    models, uploaded once
package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/runstore"
)

// Storage is a run storage: objects, and signed URLs to them for the nodes.
type Storage interface {
	runstore.Store
	Sign(ctx context.Context, key, method string, ttl time.Duration) (runspec.Object, error)
}

// Opener opens the storage at url (s3://, gs://, azblob://) with the
// settings of the cloud's provider block; create makes the bucket when it is
// missing (tagged with the lineage).
type Opener func(ctx context.Context, url string, block map[string]string, lineage string, create bool) (Storage, error)

// URLTTL is how long the signed URLs given to nodes live: the longest S3
// SigV4 and GCS V4 signatures allow. Every inbox write renews a node's own.
const URLTTL = 7*24*time.Hour - time.Hour

// RootURL is where a state's run objects live in a cloud: under the
// provider block's `storage` URL, or in a bucket of its own named after the
// lineage.
func RootURL(cloudName string, block map[string]string, lineage string) (string, error) {
	if lineage == "" {
		return "", errors.New("remote runs need a state lineage")
	}
	if s := strings.TrimSuffix(block["storage"], "/"); s != "" {
		return s + "/" + lineage, nil
	}
	bucket := "lepton-" + strings.ToLower(lineage)
	switch cloudName {
	case "aws":
		return "s3://" + bucket, nil
	case "gcp":
		return "gs://" + bucket, nil
	case "azure":
		account := block["storage_account"]
		if account == "" {
			account = os.Getenv("AZURE_STORAGE_ACCOUNT")
		}
		if account == "" {
			return "", errors.New(`runs on Azure keep their objects in a storage account: set storage = "azblob://ACCOUNT/CONTAINER" in the provider "azure" block, or AZURE_STORAGE_ACCOUNT`)
		}
		return "azblob://" + account + "/" + bucket, nil
	}
	return "", fmt.Errorf("lepton cannot run on %q nodes", cloudName)
}

// Client is the run storage of one state in one cloud.
type Client struct {
	Store Storage
	URL   string

	agentOnce sync.Once
	agentKey  string
	agentSum  string
	agentErr  error

	inboxMu sync.Mutex
	inboxes map[string]*sync.Mutex
}

// Runs opens run storages and keeps them for the rest of the command, so
// the resources of one apply share clients and the agent is uploaded once.
type Runs struct {
	open Opener
	mu   sync.Mutex
	c    map[string]*entry
}

type entry struct {
	once sync.Once
	c    *Client
	err  error
}

// NewRuns returns run storages opened with open.
func NewRuns(open Opener) *Runs { return &Runs{open: open, c: map[string]*entry{}} }

// Open returns the run storage of lineage in cloudName (create: make the
// bucket when missing, for a cluster being created).
func (r *Runs) Open(ctx context.Context, cloudName string, block map[string]string, lineage string, create bool) (*Client, error) {
	if r == nil || r.open == nil {
		return nil, errors.New("remote runs are not available in this build")
	}
	url, err := RootURL(cloudName, block, lineage)
	if err != nil {
		return nil, err
	}
	return r.open1(ctx, url, block, lineage, create)
}

// OpenURL returns the run storage at url (recorded with a run).
func (r *Runs) OpenURL(ctx context.Context, url string, block map[string]string, lineage string) (*Client, error) {
	if r == nil || r.open == nil {
		return nil, errors.New("remote runs are not available in this build")
	}
	return r.open1(ctx, url, block, lineage, false)
}

func (r *Runs) open1(ctx context.Context, url string, block map[string]string, lineage string, create bool) (*Client, error) {
	r.mu.Lock()
	e, ok := r.c[url]
	if !ok {
		e = &entry{}
		r.c[url] = e
	}
	r.mu.Unlock()
	e.once.Do(func() {
		var s Storage
		s, e.err = r.open(context.WithoutCancel(ctx), url, block, lineage, create)
		if e.err != nil {
			e.err = fmt.Errorf("run storage %s: %w", url, e.err)
			return
		}
		e.c = &Client{Store: s, URL: url, inboxes: map[string]*sync.Mutex{}}
	})
	if e.err != nil {
		// A failed open is retried by the next call (credentials fixed, bucket made).
		r.mu.Lock()
		delete(r.c, url)
		r.mu.Unlock()
	}
	return e.c, e.err
}

// AgentEnv names a variable that points lepton at the agent binary to
// upload; by default it is lepton-agent beside the lepton executable, else
// the lepton executable itself (which runs as the agent under that name).
const AgentEnv = "LEPTON_AGENT_BINARY"

// AgentPath finds the agent binary to upload.
func AgentPath() (string, error) {
	if p := os.Getenv(AgentEnv); p != "" {
		return p, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the lepton executable: %w", err)
	}
	if p := filepath.Join(filepath.Dir(exe), "lepton-agent"); fileExists(p) {
		return p, nil
	}
	return exe, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Agent uploads the agent binary (once per storage and command; not at all
// when the storage already holds it) and returns a signed GET of it.
func (c *Client) Agent(ctx context.Context) (runspec.Object, error) {
	c.agentOnce.Do(func() {
		c.agentKey, c.agentSum, c.agentErr = c.uploadAgent(ctx)
	})
	if c.agentErr != nil {
		return runspec.Object{}, c.agentErr
	}
	o, err := c.Store.Sign(ctx, c.agentKey, "GET", URLTTL)
	o.Digest = c.agentSum
	return o, err
}

func (c *Client) uploadAgent(ctx context.Context) (key, sum string, err error) {
	p, err := AgentPath()
	if err != nil {
		return "", "", err
	}
	f, err := os.Open(p)
	if err != nil {
		return "", "", fmt.Errorf("the node agent: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", "", fmt.Errorf("reading the node agent %s: %w", p, err)
	}
	sum = "sha256:" + hex.EncodeToString(h.Sum(nil))
	key = runspec.AgentKey(sum)
	if ok, _ := runstore.Exists(ctx, c.Store, key); ok {
		return key, sum, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", "", err
	}
	if err := c.Store.Put(ctx, key, f); err != nil {
		return "", "", fmt.Errorf("uploading the node agent to %s: %w", c.Store.Where(key), err)
	}
	return key, sum, nil
}

var unsafeKey = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// ClusterKey is the storage name of a cluster address (cluster.gpu,
// cluster.x["a"] -> cluster.x-a).
func ClusterKey(address string) string {
	return strings.Trim(unsafeKey.ReplaceAllString(address, "-"), "-")
}

// NodeURLs signs a node's own URLs: its inbox (GET) and heartbeat (PUT).
func (c *Client) NodeURLs(ctx context.Context, cluster string, node int) (runspec.NodeURLs, error) {
	var u runspec.NodeURLs
	var err error
	if u.Inbox, err = c.Store.Sign(ctx, runspec.InboxKey(cluster, node), "GET", URLTTL); err != nil {
		return u, err
	}
	u.Heartbeat, err = c.Store.Sign(ctx, runspec.HeartbeatKey(cluster, node), "PUT", URLTTL)
	return u, err
}

// UserData is the bootstrap script of node `node` of the cluster at
// address on cloudName: it makes sure the agent and an inbox are stored, and
// holds signed URLs only.
func (c *Client) UserData(ctx context.Context, cloudName, address string, node int) (string, error) {
	agent, err := c.Agent(ctx)
	if err != nil {
		return "", err
	}
	cluster := ClusterKey(address)
	key := runspec.InboxKey(cluster, node)
	if ok, _ := runstore.Exists(ctx, c.Store, key); !ok {
		if err := c.putInbox(ctx, key, &runspec.Inbox{Version: runspec.Version}); err != nil {
			return "", err
		}
	}
	u, err := c.NodeURLs(ctx, cluster, node)
	if err != nil {
		return "", err
	}
	return runspec.Bootstrap(runspec.NodeConfig{
		Version: runspec.Version, Cloud: cloudName, Cluster: cluster, Address: address, Node: node,
		Inbox: u.Inbox, Heartbeat: u.Heartbeat,
	}, agent)
}

func (c *Client) inboxLock(key string) *sync.Mutex {
	c.inboxMu.Lock()
	defer c.inboxMu.Unlock()
	m, ok := c.inboxes[key]
	if !ok {
		m = &sync.Mutex{}
		c.inboxes[key] = m
	}
	return m
}

// ReadInbox returns a node's inbox (empty when none was written).
func (c *Client) ReadInbox(ctx context.Context, cluster string, node int) (*runspec.Inbox, error) {
	key := runspec.InboxKey(cluster, node)
	b, err := runstore.ReadAll(ctx, c.Store, key)
	if errors.Is(err, fs.ErrNotExist) {
		return &runspec.Inbox{Version: runspec.Version}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the inbox of %s node %d: %w", cluster, node, err)
	}
	in := &runspec.Inbox{}
	if err := runspec.Decode(c.Store.Where(key), b, in); err != nil {
		return nil, err
	}
	return in, nil
}

// UpdateInbox changes a node's inbox with edit (which returns whether it
// changed anything) and writes it with renewed node URLs. Resources of one
// apply that share a node take turns.
func (c *Client) UpdateInbox(ctx context.Context, cluster string, node int, edit func(*runspec.Inbox) bool) error {
	key := runspec.InboxKey(cluster, node)
	mu := c.inboxLock(key)
	mu.Lock()
	defer mu.Unlock()
	in, err := c.ReadInbox(ctx, cluster, node)
	if err != nil {
		return err
	}
	if !edit(in) {
		return nil
	}
	in.Version = runspec.Version
	in.Generation++
	u, err := c.NodeURLs(ctx, cluster, node)
	if err != nil {
		return err
	}
	in.Renew = &u
	return c.putInbox(ctx, key, in)
}

func (c *Client) putInbox(ctx context.Context, key string, in *runspec.Inbox) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if err := runstore.PutBytes(ctx, c.Store, key, b); err != nil {
		return fmt.Errorf("writing %s: %w", c.Store.Where(key), err)
	}
	return nil
}

// AddRun puts run in its node's inbox, replacing any run of the same
// address (an endpoint's new version).
func (c *Client) AddRun(ctx context.Context, cluster string, run runspec.Run) error {
	return c.UpdateInbox(ctx, cluster, run.Node, func(in *runspec.Inbox) bool {
		out := in.Runs[:0]
		for _, r := range in.Runs {
			if r.Address != run.Address && r.ID != run.ID {
				out = append(out, r)
			}
		}
		in.Runs = append(out, run)
		return true
	})
}

// RemoveRun takes a run out of its node's inbox: the agent stops it.
func (c *Client) RemoveRun(ctx context.Context, cluster string, node int, runID string) error {
	return c.UpdateInbox(ctx, cluster, node, func(in *runspec.Inbox) bool {
		out := in.Runs[:0]
		for _, r := range in.Runs {
			if r.ID != runID {
				out = append(out, r)
			}
		}
		changed := len(out) != len(in.Runs)
		in.Runs = out
		return changed
	})
}

// InInbox reports whether a node's inbox holds the run.
func (c *Client) InInbox(ctx context.Context, cluster string, node int, runID string) (bool, error) {
	in, err := c.ReadInbox(ctx, cluster, node)
	if err != nil {
		return false, err
	}
	for _, r := range in.Runs {
		if r.ID == runID {
			return true, nil
		}
	}
	return false, nil
}

// Heartbeat reads a node's heartbeat; found is false before its agent
// first wrote one.
func (c *Client) Heartbeat(ctx context.Context, cluster string, node int) (hb runspec.NodeHeartbeat, found bool, err error) {
	key := runspec.HeartbeatKey(cluster, node)
	b, err := runstore.ReadAll(ctx, c.Store, key)
	if errors.Is(err, fs.ErrNotExist) {
		return hb, false, nil
	}
	if err != nil {
		return hb, false, err
	}
	return hb, true, runspec.Decode("the heartbeat of "+cluster+" node "+fmt.Sprint(node), b, &hb)
}

// Status reads a run's status on a node; found is false until the agent
// wrote one.
func (c *Client) Status(ctx context.Context, runID string, node int) (st runspec.Status, found bool, err error) {
	key := runspec.StatusKey(runID, node)
	b, err := runstore.ReadAll(ctx, c.Store, key)
	if errors.Is(err, fs.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("reading the status of run %s: %w", runID, err)
	}
	if err := runspec.Decode("the status of run "+runID+" node "+fmt.Sprint(node)+" ("+c.Store.Where(key)+")", b, &st); err != nil {
		return st, false, err
	}
	return st, true, nil
}

// DeleteRun removes a run's objects.
func (c *Client) DeleteRun(ctx context.Context, runID string) error {
	return runstore.DeletePrefix(ctx, c.Store, runspec.RunPrefix(runID))
}

// DeleteCluster removes a cluster's node objects and, when it was the
// state's last cluster in this storage, every object of the state there
// (agent, dataset snapshots, models, runs left over).
func (c *Client) DeleteCluster(ctx context.Context, address string) error {
	if err := runstore.DeletePrefix(ctx, c.Store, runspec.ClusterPrefix(ClusterKey(address))); err != nil {
		return fmt.Errorf("removing the node objects of %s: %w", address, err)
	}
	left, err := c.Store.List(ctx, "clusters/")
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return nil
	}
	all, err := c.Store.List(ctx, "")
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range all {
		errs = append(errs, c.Store.Delete(ctx, o.Key))
	}
	return errors.Join(errs...)
}

// Upload stores the object at key from open when the storage does not hold
// it yet (content-addressed keys: uploaded once).
func (c *Client) Upload(ctx context.Context, key string, open func() (io.ReadCloser, error)) error {
	if ok, _ := runstore.Exists(ctx, c.Store, key); ok {
		return nil
	}
	r, err := open()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := c.Store.Put(ctx, key, r); err != nil {
		return fmt.Errorf("uploading %s: %w", c.Store.Where(key), err)
	}
	return nil
}
