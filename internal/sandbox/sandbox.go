// Package sandbox is lepton's cloud on one machine: the AWS EC2, GCP Compute
// and Azure Resource Manager fakes and the three object stores (S3 through
// gofakes3, GCS through fake-gcs-server, Azure Blob through azblobfake), all
// on loopback, where launching an instance boots a node: a real process in
// its own directory and process group, on its own loopback address
// (127.0.0.N), running the instance's user data with bash as cloud-init
// would, with a metadata server for its cloud. cmd/lepton-sandbox runs it.
//
// The sandbox's directory:
//
//	DIR/sandbox.env                the export lines (0600: they hold the sandbox's keys)
//	DIR/sandbox.json               addresses and pid of the running sandbox (Info)
//	DIR/control.token              the control endpoint's token (0600)
//	DIR/gcp-service-account.json   the GCP service account (a fresh RSA key) for signing GCS URLs
//	DIR/nodes/ID/                  one node per instance launched, kept after it stops:
//	    user-data                  the script the node ran
//	    console.log                its stdout and stderr
//	    node.json                  NodeRecord: cloud, id, ip, pid, started, stopped, cause
package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/leptonml/lepton/providers/aws/awsfake"
	"github.com/leptonml/lepton/providers/aws/stsfake"
	"github.com/leptonml/lepton/providers/azure/azurefake"
	"github.com/leptonml/lepton/providers/gcp"
	"github.com/leptonml/lepton/providers/gcp/gcpfake"
	"github.com/leptonml/lepton/runtime/objstore/azblobfake"
)

// Fixed names of the sandbox's accounts.
const (
	AWSRegion      = "us-east-1"
	GCPProject     = "lepton-sandbox"
	AzureAccount   = "leptonsandbox"
	GCPServiceUser = "lepton-sandbox@lepton-sandbox.iam.gserviceaccount.com"
)

// Config configures Start.
type Config struct {
	Dir string
	// Grace is how long a terminated node's processes get between SIGTERM
	// and SIGKILL; default 3s.
	Grace time.Duration
	// Log receives one line per event (node booted, stopped); default discard.
	Log io.Writer
}

// Info is DIR/sandbox.json: where the running sandbox listens.
type Info struct {
	PID       int               `json:"pid"`
	Started   time.Time         `json:"started"`
	Control   string            `json:"control"` // base URL of the control endpoint
	TokenFile string            `json:"token_file"`
	Endpoints map[string]string `json:"endpoints"` // aws-ec2, aws-s3, aws-sts, gcp-compute, gcp-storage, azure-arm, azure-blob
}

// Sandbox is a running sandbox.
type Sandbox struct {
	cfg   Config
	nodes string // DIR/nodes
	env   [][2]string
	info  Info
	token string

	subscription string

	aws     *awsfake.Server
	gcp     *gcpfake.Server
	azure   *azurefake.Cloud
	servers []*http.Server
	gcs     *fakestorage.Server

	mu      sync.Mutex
	byID    map[string]*node // the newest node of each instance id
	all     []*node          // every node booted, in order
	nextIP  int
	closed  bool
	stopped sync.WaitGroup // nodes being stopped
}

// Start starts the sandbox's services on loopback and writes its files in
// cfg.Dir. Close it to stop every node and service.
func Start(ctx context.Context, cfg Config) (_ *Sandbox, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("the sandbox needs a directory")
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 3 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if info, err := ReadInfo(dir); err == nil && processAlive(info.PID) {
		return nil, fmt.Errorf("a sandbox is already running in %s (pid %d)", dir, info.PID)
	}
	s := &Sandbox{cfg: cfg, nodes: filepath.Join(dir, "nodes"), byID: map[string]*node{}, nextIP: 2}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	// The nodes of an earlier run are kept aside, not mixed with this run's;
	// those a killed sandbox left running are stopped first.
	if _, err := os.Stat(s.nodes); err == nil {
		for _, id := range reapOrphans(s.nodes) {
			s.logf("stopped node %s, left running by an earlier sandbox", id)
		}
		prev := filepath.Join(dir, "nodes.prev")
		if err := os.RemoveAll(prev); err != nil {
			return nil, err
		}
		if err := os.Rename(s.nodes, prev); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(s.nodes, 0o700); err != nil {
		return nil, err
	}

	// Compute APIs, with hooks that boot and stop nodes.
	s.aws = awsfake.New()
	s.aws.OnLaunch(s.awsLaunch)
	s.aws.OnTerminate(func(in awsfake.Instance, cause string) { s.terminate(in.ID, cause) })
	s.gcp = gcpfake.New()
	s.gcp.SetBootReads(0)
	s.gcp.AddImageFamily(gcp.DefaultImageProject, gcp.DefaultImageFamily, "lepton-sandbox-"+gcp.DefaultImageFamily)
	s.gcp.OnLaunch(s.gcpLaunch)
	s.gcp.OnTerminate(func(in gcpfake.Instance, cause string) { s.terminate(in.Name, cause) })
	subscription, err := uuid()
	if err != nil {
		return nil, err
	}
	s.subscription = subscription
	s.azure = azurefake.New(subscription)
	s.azure.OnLaunch(s.azureLaunch)
	s.azure.OnTerminate(func(vm azurefake.VM, cause string) { s.terminate(vm.Name, cause) })
	azureURL, err := s.serve(s.azure.Handler())
	if err != nil {
		return nil, err
	}

	// Object stores.
	s3URL, err := s.serve(gofakes3.New(s3Store{s3mem.New()}).Server())
	if err != nil {
		return nil, err
	}
	gcsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// Signed URLs name the emulator's host, which fake-gcs-server serves
	// path-style (/BUCKET/OBJECT) as its public host.
	s.gcs, err = fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", NoListener: true, PublicHost: gcsLn.Addr().String(), Writer: io.Discard})
	if err != nil {
		gcsLn.Close()
		return nil, fmt.Errorf("the GCS fake: %w", err)
	}
	gcsURL := s.serveOn(gcsLn, s.gcs.HTTPHandler())
	blobKey := azblobfake.NewKey()
	blob := azblobfake.New(AzureAccount, blobKey)
	blobURL, err := s.serve(blob)
	if err != nil {
		return nil, err
	}

	// Credentials: fresh for every sandbox, so a leak is easy to find.
	akid, err := randomString("AKIASBX", 13, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
	if err != nil {
		return nil, err
	}
	secret, err := randomString("", 40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
	if err != nil {
		return nil, err
	}
	// STS gives lepton sessions to sign S3 URLs with, so the sandbox's access
	// key never appears in them.
	stsURL, err := s.serve(stsfake.New())
	if err != nil {
		return nil, err
	}
	saFile := filepath.Join(dir, "gcp-service-account.json")
	if s.token, err = randomString("", 43, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"); err != nil {
		return nil, err
	}
	controlURL, err := s.serve(s.controlHandler())
	if err != nil {
		return nil, err
	}
	if err := writeServiceAccount(saFile, controlURL+"/oauth2/token"); err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(dir, "control.token")
	if err := writeFileAtomic(tokenFile, []byte(s.token+"\n"), 0o600); err != nil {
		return nil, err
	}

	s.env = [][2]string{
		{"AWS_ACCESS_KEY_ID", akid},
		{"AWS_SECRET_ACCESS_KEY", secret},
		{"AWS_REGION", AWSRegion},
		{"AWS_ENDPOINT_URL_EC2", s.aws.URL},
		{"AWS_ENDPOINT_URL_S3", s3URL},
		{"AWS_ENDPOINT_URL_STS", stsURL},
		{"GOOGLE_CLOUD_PROJECT", GCPProject},
		{"GOOGLE_APPLICATION_CREDENTIALS", saFile},
		{"STORAGE_EMULATOR_HOST", strings.TrimPrefix(gcsURL, "http://")},
		{"LEPTON_GCP_ENDPOINT", s.gcp.URL},
		{"AZURE_SUBSCRIPTION_ID", subscription},
		{"AZURE_STORAGE_ACCOUNT", AzureAccount},
		{"AZURE_STORAGE_KEY", blobKey},
		{"AZURE_STORAGE_BLOB_ENDPOINT", blob.BlobEndpoint(blobURL)},
		{"LEPTON_AZURE_ENDPOINT", azureURL},
	}
	if err := writeFileAtomic(filepath.Join(dir, "sandbox.env"), []byte(s.ExportLines()), 0o600); err != nil {
		return nil, err
	}
	s.info = Info{
		PID: os.Getpid(), Started: time.Now().UTC(), Control: controlURL, TokenFile: tokenFile,
		Endpoints: map[string]string{
			"aws-ec2": s.aws.URL, "aws-s3": s3URL, "aws-sts": stsURL,
			"gcp-compute": s.gcp.URL, "gcp-storage": gcsURL,
			"azure-arm": azureURL, "azure-blob": blob.BlobEndpoint(blobURL),
		},
	}
	b, _ := json.MarshalIndent(s.info, "", "  ")
	if err := writeFileAtomic(filepath.Join(dir, "sandbox.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return s, nil
}

// Env returns the variables that point lepton at the sandbox, in order.
func (s *Sandbox) Env() [][2]string { return append([][2]string(nil), s.env...) }

// ExportLines are the Env as `export NAME=VALUE` lines for a shell.
func (s *Sandbox) ExportLines() string {
	var b strings.Builder
	for _, kv := range s.env {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return b.String()
}

// Info returns what DIR/sandbox.json holds.
func (s *Sandbox) Info() Info { return s.info }

// serve serves h on a fresh loopback port and returns its base URL.
func (s *Sandbox) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	return s.serveOn(ln, h), nil
}

func (s *Sandbox) serveOn(ln net.Listener, h http.Handler) string {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	s.servers = append(s.servers, srv)
	go srv.Serve(ln)
	return "http://" + ln.Addr().String()
}

func (s *Sandbox) logf(format string, args ...any) {
	fmt.Fprintf(s.cfg.Log, "lepton-sandbox: "+format+"\n", args...)
}

// ---- the fakes' hooks (called with the fake's lock held: no calls back)

func (s *Sandbox) awsLaunch(in awsfake.Instance) string {
	return s.launch(instanceInfo{Cloud: "aws", ID: in.ID, NumID: in.ID, Type: in.InstanceType, Region: in.Region,
		Zone: in.Zone, UserData: in.UserData, Tags: in.Tags, Items: map[string]string{"spot": fmt.Sprint(in.Spot)}})
}

func (s *Sandbox) gcpLaunch(in gcpfake.Instance) string {
	return s.launch(instanceInfo{Cloud: "gcp", ID: in.Name, NumID: in.ID, Type: in.MachineType, Zone: in.Zone,
		Region: in.Zone[:max(strings.LastIndexByte(in.Zone, '-'), 0)], Project: in.Project,
		UserData: in.Metadata["startup-script"], Items: in.Metadata, Tags: in.Labels})
}

func (s *Sandbox) azureLaunch(vm azurefake.VM) string {
	zone := ""
	if len(vm.Zones) > 0 {
		zone = vm.Zones[0]
	}
	return s.launch(instanceInfo{Cloud: "azure", ID: vm.Name, NumID: vm.VMID, Type: vm.Size, Region: vm.Location,
		Zone: zone, Group: vm.ResourceGroup, UserData: vm.CustomData, Tags: vm.Tags,
		Items: map[string]string{"priority": vm.Priority}})
}

// launch boots a node for a new instance and returns its address.
func (s *Sandbox) launch(info instanceInfo) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.nextIP > 254 {
		if !s.closed {
			s.logf("no loopback address left for %s %s: not booted", info.Cloud, info.ID)
		}
		return ""
	}
	info.IP = fmt.Sprintf("127.0.0.%d", s.nextIP)
	s.nextIP++
	if info.Cloud == "azure" {
		info.Project = s.subscription
	}
	n := bootNode(s.nodes, info, s.cfg.Grace, s.logf, func() { s.crashed(info) })
	s.byID[info.ID] = n
	s.all = append(s.all, n)
	s.logf("booted %s node %s on %s (pid %d)", info.Cloud, info.ID, info.IP, n.rec.PID)
	return info.IP
}

// crashed removes from its cloud an instance whose node process was killed
// from outside, as a cloud reports a failed machine: gone.
func (s *Sandbox) crashed(info instanceInfo) {
	s.logf("node %s %s was killed: its instance fails", info.Cloud, info.ID)
	switch info.Cloud {
	case "aws":
		s.aws.Terminate(info.ID)
	case "gcp":
		s.gcp.DeleteOutOfBand(info.Project, info.Zone, info.ID)
	case "azure":
		s.azure.DeleteVM(info.Group, info.ID)
	}
}

// terminate stops an instance's node in the background (the hook must not
// wait for its grace period).
func (s *Sandbox) terminate(id, cause string) {
	s.mu.Lock()
	n, ok := s.byID[id]
	s.mu.Unlock()
	if !ok {
		return
	}
	if cause == awsfake.CausePreempted || cause == azurefake.CauseEvicted {
		n.md.markPreempted(time.Now())
	}
	s.stopped.Add(1)
	go func() {
		defer s.stopped.Done()
		n.stop(cause, s.cfg.Grace)
		s.logf("stopped %s node %s (%s)", n.info.Cloud, id, cause)
	}()
}

// Preempt ends an instance the way its cloud reclaims spot capacity: EC2's
// spot interruption, Compute Engine's preemption, Azure's eviction. It
// returns once the node's processes are gone.
func (s *Sandbox) Preempt(id string) error {
	s.mu.Lock()
	n, ok := s.byID[id]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("no instance %s in the sandbox", id)
	}
	var found bool
	switch in := n.info; in.Cloud {
	case "aws":
		found = s.aws.Interrupt(id)
	case "gcp":
		found = s.gcp.Preempt(in.Project, in.Zone, id)
	case "azure":
		found = s.azure.Evict(in.Group, id)
	}
	if !found {
		return fmt.Errorf("instance %s (%s) is not running", id, n.info.Cloud)
	}
	<-n.done
	return nil
}

// NodeStatus is one node in Status.
type NodeStatus struct {
	NodeRecord
	State   string `json:"state"`   // the instance: running, or the cause it ended with
	Process string `json:"process"` // the user data's bash: running, exited N, killed, failed
	Dir     string `json:"dir"`
}

// Status is what `lepton-sandbox status` shows.
type Status struct {
	Nodes  []NodeStatus `json:"nodes"`
	Booted int          `json:"booted"` // nodes ever booted by this sandbox
	Live   int          `json:"live"`   // nodes whose instance runs
}

// Status lists every node booted, oldest first.
func (s *Sandbox) Status() Status {
	s.mu.Lock()
	all := append([]*node(nil), s.all...)
	s.mu.Unlock()
	st := Status{Nodes: []NodeStatus{}, Booted: len(all)}
	for _, n := range all {
		r := n.record()
		ns := NodeStatus{NodeRecord: r, State: "running", Dir: n.dir}
		if r.Cause != "" {
			ns.State = r.Cause
		} else {
			st.Live++
		}
		switch {
		case r.Error != "":
			ns.Process = "failed"
		case r.Cause != "" && r.Stopped == nil:
			ns.Process = "stopping"
		case r.ExitCode != nil && *r.ExitCode < 0: // ended by a signal
			ns.Process = "killed"
		case r.ExitCode != nil:
			ns.Process = fmt.Sprintf("exited %d", *r.ExitCode)
		default:
			ns.Process = "running"
		}
		st.Nodes = append(st.Nodes, ns)
	}
	return st
}

// Close stops every node (SIGTERM, then SIGKILL after the grace) and every
// service, and removes sandbox.json and the control token.
func (s *Sandbox) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	all := append([]*node(nil), s.all...)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.stop("sandbox-stopped", s.cfg.Grace)
		}()
	}
	wg.Wait()
	s.stopped.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range s.servers {
		srv.Shutdown(ctx)
		srv.Close()
	}
	if s.gcs != nil {
		s.gcs.Stop()
	}
	if s.aws != nil {
		s.aws.Close()
	}
	if s.gcp != nil {
		s.gcp.Close()
	}
	if s.info.PID != 0 {
		os.Remove(filepath.Join(s.cfg.Dir, "sandbox.json"))
		os.Remove(s.info.TokenFile)
	}
	return nil
}

// ---- control endpoint

func (s *Sandbox) controlHandler() http.Handler {
	mux := http.NewServeMux()
	// The service account's token_uri: Google's client libraries exchange
	// the signed JWT here instead of at oauth2.googleapis.com.
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "lepton-sandbox", "token_type": "Bearer", "expires_in": 3600})
	})
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
				http.Error(w, "wrong or missing control token", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /status", auth(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.Status())
	}))
	mux.HandleFunc("POST /preempt", auth(func(w http.ResponseWriter, r *http.Request) {
		if err := s.Preempt(r.URL.Query().Get("id")); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return mux
}

// ReadInfo reads DIR/sandbox.json.
func ReadInfo(dir string) (Info, error) {
	var info Info
	b, err := os.ReadFile(filepath.Join(dir, "sandbox.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return info, fmt.Errorf("no sandbox is running in %s (no sandbox.json)", dir)
		}
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("%s/sandbox.json: %w", dir, err)
	}
	return info, nil
}

// Client talks to a running sandbox's control endpoint.
type Client struct {
	info  Info
	token string
	http  *http.Client
}

// Dial reads DIR/sandbox.json and the token.
func Dial(dir string) (*Client, error) {
	info, err := ReadInfo(dir)
	if err != nil {
		return nil, err
	}
	tok, err := os.ReadFile(info.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the control token: %w", err)
	}
	return &Client{info: info, token: strings.TrimSpace(string(tok)), http: &http.Client{Timeout: time.Minute}}, nil
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.info.Control+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		if !processAlive(c.info.PID) {
			return fmt.Errorf("the sandbox (pid %d) is not running", c.info.PID)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return errors.New(strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// Status asks the sandbox for its nodes.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/status", &st)
	return st, err
}

// Preempt asks the sandbox to preempt an instance.
func (c *Client) Preempt(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/preempt?id="+url.QueryEscape(id), nil)
}

// ---- helpers

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscall.Signal(0)) == nil
}

func writeServiceAccount(path, tokenURI string) error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	kid, err := randomString("", 40, "0123456789abcdef")
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(map[string]string{
		"type": "service_account", "project_id": GCPProject, "private_key_id": kid,
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": GCPServiceUser, "client_id": "100000000000000000001",
		"auth_uri": tokenURI, "token_uri": tokenURI,
	}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o600)
}

func randomString(prefix string, n int, alphabet string) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b), nil
}

func uuid() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}

// shellQuote quotes a value for `export` only when it needs it.
func shellQuote(v string) string {
	safe := v != ""
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:=+@%,", c)) {
			safe = false
		}
	}
	if safe {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// reapOrphans kills the process groups of nodes that an earlier sandbox
// (killed before it could stop them) left running, and returns their ids. A
// node's group is only killed while its leader's working directory is still
// the node's directory, so a recycled pid is never hit.
func reapOrphans(nodesDir string) []string {
	entries, err := os.ReadDir(nodesDir)
	if err != nil {
		return nil
	}
	var ids []string
	for _, e := range entries {
		dir := filepath.Join(nodesDir, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, "node.json"))
		if err != nil {
			continue
		}
		var rec NodeRecord
		if json.Unmarshal(b, &rec) != nil || rec.PID <= 0 || rec.Stopped != nil {
			continue
		}
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", rec.PID)); err != nil || cwd != dir {
			continue
		}
		if syscall.Kill(-rec.PID, syscall.SIGKILL) == nil {
			ids = append(ids, rec.ID)
		}
	}
	return ids
}
