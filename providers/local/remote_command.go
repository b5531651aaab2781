package local

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
	"strconv"
	"strings"
	"time"

	"github.com/leptonml/lepton/internal/dirtar"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/catalog"
	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/zclconf/go-cty/cty"
)

// A training's run block: the user's own program on every node of a cloud
// cluster, with the torchrun variables set (runspec.Command says which).
// lepton uploads the work folder (once per content), hands the run to every
// node's inbox (its id recorded in state first, as for a built-in
// training), follows every node's status, stops the others at the first
// failure, and downloads node 0's LEPTON_OUTPUT_DIR.

// commandSpec is a training's run block.
type commandSpec struct {
	args          []string
	image         string
	env           map[string]string
	workdir       string // as written: relative to the project folder
	checkpointDir string
}

// CommandCheckpointEvery is the shortest time (seconds) between two saves
// of a node's checkpoint_dir while the program runs: the agent saves it
// when it changed, as a whole snapshot, and longer apart when uploads are
// slow. It also saves it when the program ends or is stopped. A node lost
// without notice (no last save) loses at most this much of the run.
const CommandCheckpointEvery = 5

// kernelArgs are the arguments of the built-in kernels, which a run block
// replaces.
var kernelArgs = []string{"dataset", "objective", "model_spec", "optimizer", "epochs", "batch_size", "seed", "early_stopping",
	"base_model", "freeze_layers", "environment", "episodes", "discount", "learning_rate", "epsilon"}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseCommand reads the run block of v.
func parseCommand(v cty.Value) (*commandSpec, error) {
	r := attr(v, "run")
	for _, name := range kernelArgs {
		if !attr(v, name).IsNull() {
			shown := name
			if name == "model_spec" {
				shown = "model"
			}
			return nil, providers.ArgErrorf(name, "%s is an argument of the built-in kernels; a training with a run block runs your own program: remove %s", shown, shown)
		}
	}
	c := &commandSpec{args: strList(attr(r, "command")), image: str(attr(r, "image")), workdir: str(attr(r, "workdir")), checkpointDir: str(attr(r, "checkpoint_dir"))}
	if len(c.args) == 0 {
		return nil, providers.ArgErrorf("run.command", `the run block needs a command: the program and its arguments, like ["python3", "train.py"]`)
	}
	for i, a := range c.args {
		if i == 0 && strings.TrimSpace(a) == "" {
			return nil, providers.ArgErrorf("run.command", "the command's program (its first element) is empty")
		}
	}
	if e := attr(r, "env"); !e.IsNull() {
		c.env = map[string]string{}
		for k, val := range e.AsValueMap() {
			if !envName.MatchString(k) {
				return nil, providers.ArgErrorf("run.env", "env %q is not a variable name (letters, digits and _, not starting with a digit)", k)
			}
			c.env[k] = str(val)
		}
	}
	if d := c.checkpointDir; d != "" && !filepath.IsAbs(d) && !filepath.IsLocal(d) {
		return nil, providers.ArgErrorf("run.checkpoint_dir", "checkpoint_dir %q: a relative path is inside the program's working directory and must stay there", d)
	}
	if c.image != "" && strings.ContainsAny(c.image, " \t\n") {
		return nil, providers.ArgErrorf("run.image", "image %q is not an image reference", c.image)
	}
	return c, nil
}

// workdirPath is the work folder on this machine; "" when there is none.
func (c *commandSpec) workdirPath(projectDir string) (string, error) {
	if c.workdir == "" {
		return "", nil
	}
	p := c.workdir
	if !filepath.IsAbs(p) {
		p = filepath.Join(projectDir, p)
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", providers.ArgErrorf("run.workdir", "workdir %q: %v", c.workdir, errors.Unwrap(err))
	}
	if !st.IsDir() {
		return "", providers.ArgErrorf("run.workdir", "workdir %q is a file: name the folder to upload as the program's working directory", c.workdir)
	}
	return p, nil
}

// workdirDigest is the digest of the work folder's content ("" without
// one), as a plan compares it with the run's.
func (c *commandSpec) workdirDigest(projectDir string) (string, error) {
	dir, err := c.workdirPath(projectDir)
	if dir == "" || err != nil {
		return "", err
	}
	d, err := dirtar.Digest(dir, dirtar.Options{Skip: skipInWorkdir})
	if err != nil {
		return "", providers.ArgErrorf("run.workdir", "workdir %q: %v", c.workdir, err)
	}
	return d, nil
}

// workdirChanged reports whether the work folder of the run recorded in
// private (a finished one) has other content now.
func workdirChanged(req providers.PlanRequest) (bool, error) {
	p, ok := parsePrivate(req.PriorPrivate)
	if !ok || p.Workdir == "" || !req.Config.IsWhollyKnown() || attr(req.Config, "run").IsNull() {
		return false, nil
	}
	ts, err := parseTraining(req.Config)
	if err != nil || ts.cmd == nil {
		return false, err
	}
	d, err := ts.cmd.workdirDigest(req.Env.Dir)
	return d != p.Workdir, err
}

// planCommand checks a run block and describes it for the plan.
func planCommand(req providers.PlanRequest, ts trainingSpec) ([]string, error) {
	c := ts.cmd
	if _, err := c.workdirPath(req.Env.Dir); err != nil {
		return nil, err
	}
	what := strings.Join(quoteArgs(c.args), " ")
	// resources { }: nodes made for the run (resources.go).
	own := !attr(req.Config, "resources").IsNull()
	local := ts.cluster == "" && !own
	where := ts.cluster
	if own {
		where = "the run's own nodes"
	}
	nodes := "every node"
	if !local && !own && req.Env.Lookup != nil {
		if cl, ok := req.Env.Lookup(ts.cluster); ok {
			if cloudName := attr(cl, "cloud"); cloudName.IsKnown() && str(cloudName) == "local" {
				local = true
			}
			if n, ok := num(attr(cl, "nodes")); ok {
				nodes = fmt.Sprintf("each of the %d nodes", int(n))
				if n == 1 {
					nodes = "the 1 node"
				}
			}
		}
	}
	if local {
		if c.image != "" {
			return nil, providers.ArgErrorf("run.image", "image runs the program with a cluster node's container runtime; on this machine, remove image (or set cluster = a cloud cluster)")
		}
		return []string{fmt.Sprintf("runs %s on this machine as a 1-node run (NODE_RANK 0, NUM_NODES 1, MASTER_ADDR 127.0.0.1, MASTER_PORT %s)", what, masterPortOf(c))}, nil
	}
	if c.image != "" {
		what += " in image " + c.image
	}
	detail := []string{fmt.Sprintf("runs %s on %s of %s (NODE_RANK, NUM_NODES, MASTER_ADDR = node 0, MASTER_PORT = %s)", what, nodes, where, masterPortOf(c))}
	if c.workdir != "" {
		detail = append(detail, "in a copy of "+c.workdir+" (uploaded when its content changed)")
	}
	return detail, nil
}

func masterPortOf(c *commandSpec) string {
	if p := c.env["MASTER_PORT"]; p != "" {
		return p
	}
	return strconv.Itoa(runspec.DefaultMasterPort)
}

// quoteArgs shows arguments as a shell would need them.
func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`|&;<>()*?[]#~") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			out[i] = a
		}
	}
	return out
}

// applyCommand runs the program on every node of tg, or waits again for the
// run an interrupted apply started there.
func (t *Training) applyCommand(ctx context.Context, req providers.ApplyRequest, ts trainingSpec, tg target) (cty.Value, error) {
	c, err := openRuns(ctx, t.runs, req.Env, tg)
	if err != nil {
		return cty.NilVal, err
	}
	logf := logger(req.Env)
	nodes := make([]int, len(tg.ids))
	for i := range nodes {
		nodes[i] = i
	}
	p, resumed := parsePrivate(req.Private)
	if resumed && p.Cluster != tg.address {
		resumed = false // moved to another cluster: a new run
	}
	if resumed {
		// Hand the run to the nodes an interrupted apply did not reach.
		var left []int
		for _, n := range p.Nodes {
			_, found, err := c.Status(ctx, p.Run, n)
			if err != nil {
				return cty.NilVal, err
			}
			in, err := c.InInbox(ctx, tg.key, n, p.Run)
			if err != nil {
				return cty.NilVal, err
			}
			if !found && !in {
				left = append(left, n)
			}
		}
		if len(left) > 0 {
			if err := t.handOverCommand(ctx, req, ts, tg, c, p.Run, p.Nodes, left); err != nil {
				return cty.NilVal, t.stopCommand(ctx, c, tg, p, err)
			}
		}
		logf("waiting for run %s on %d node(s) of %s, started %s", p.Run, len(p.Nodes), tg.address, p.Started.UTC().Format("15:04:05"))
	} else {
		p = runPrivate{Run: newRunID(req.Address), Cluster: tg.address, Cloud: tg.cloud, Storage: c.URL, Nodes: nodes, Started: nowUTC()}
		if p.Workdir, err = ts.cmd.workdirDigest(req.Env.Dir); err != nil {
			return cty.NilVal, err
		}
		// State knows the run before any node does.
		if req.Record != nil {
			if err := req.Record(ctx, p.bytes()); err != nil {
				return cty.NilVal, err
			}
		}
		if err := t.handOverCommand(ctx, req, ts, tg, c, p.Run, nodes, nodes); err != nil {
			return cty.NilVal, t.stopCommand(ctx, c, tg, p, err)
		}
		logf("started run %s on %d node(s) of %s: %s", p.Run, len(nodes), tg.address, strings.Join(quoteArgs(ts.cmd.args), " "))
	}
	var sts map[int]runspec.Status
	for {
		sts, err = remote.Watch{Client: c, Cluster: tg.key, Run: p.Run, Nodes: p.Nodes, Progress: req.Env.Progress}.Wait(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return cty.NilVal, err // interrupted: the run goes on, state says running
		}
		if lost, ok := lostNode(err); ok && tg.compute != nil {
			// A lost node of the run's own or of its named cluster:
			// replaced, and the program started again on every node from
			// its checkpoint_dir (remote_recover.go).
			err = tg.compute.restart(ctx, &req, c, &tg, &p, lost, func(id string) error {
				return t.handOverCommand(ctx, req, ts, tg, c, id, p.Nodes, p.Nodes)
			})
			if err == nil {
				continue
			}
		} else if ok {
			// A named cluster's node: the cluster owns it, so the run is
			// not restarted here.
			err = fmt.Errorf("%w; the run was stopped on every node of %s, and its log so far stays readable (lepton logs %s -node %d): apply again to run the training anew once the node answers (a node that is gone is replaced by the cluster when a plan finds it)",
				err, tg.address, req.Address, lost.Node)
		}
		return cty.NilVal, t.stopCommand(ctx, c, tg, p, err)
	}
	for _, n := range p.Nodes {
		if st := sts[n]; st.State != runspec.StateSucceeded {
			return cty.NilVal, t.stopCommand(ctx, c, tg, p, fmt.Errorf("run %s ended %s on node %d (%s): %s", p.Run, st.State, n, st.Host, st.Error))
		}
	}
	for _, n := range p.Nodes {
		if err := c.RemoveRun(ctx, tg.key, n, p.Run); err != nil {
			logf("run %s finished, but the inbox of node %d could not be cleared: %v", p.Run, n, err)
		}
	}
	res := sts[0].Result
	if res == nil || res.Digest == "" {
		return cty.NilVal, fmt.Errorf("run %s on %s node 0 succeeded without an output digest in its status (%s)", p.Run, tg.address, c.Store.Where(runspec.StatusKey(p.Run, 0)))
	}
	out, err := downloadOutput(ctx, c, req.Env.DataDir, req.Address, p.Run, res)
	if err != nil {
		return cty.NilVal, err
	}
	model := cty.NullVal(cty.String)
	if out.model != "" {
		model = cty.StringVal(out.model)
	}
	logf("run %s succeeded: output %s (%d files) in %s", p.Run, res.Digest, out.files, out.dir)
	return withComputed("training", req.Planned, map[string]cty.Value{
		"model": model, "outputs": cty.StringVal(res.Digest), "metrics": out.metrics,
		"epochs_completed": cty.NullVal(cty.Number), "status": cty.StringVal("succeeded"),
	}), nil
}

// stopCommand takes a failed run out of every node's inbox (their agents
// stop the program) and returns cause, naming the cluster.
func (t *Training) stopCommand(ctx context.Context, c *remote.Client, tg target, p runPrivate, cause error) error {
	ctx = context.WithoutCancel(ctx)
	errs := []error{fmt.Errorf("training on %s: %w", tg.address, cause)}
	for _, n := range p.Nodes {
		if err := c.RemoveRun(ctx, tg.key, n, p.Run); err != nil {
			errs = append(errs, fmt.Errorf("stopping the run on node %d: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// handOverCommand uploads the work folder and puts the run in the inboxes
// of the nodes in to (all of them, or those an interrupted apply missed).
func (t *Training) handOverCommand(ctx context.Context, req providers.ApplyRequest, ts trainingSpec, tg target, c *remote.Client, id string, all, to []int) error {
	cs := ts.cmd
	cmd := runspec.Command{Args: cs.args, Image: cs.image, Env: cs.env, CheckpointDir: cs.checkpointDir, MasterPort: runspec.DefaultMasterPort}
	if p, err := strconv.Atoi(cs.env["MASTER_PORT"]); err == nil && p > 0 {
		cmd.MasterPort = p
	}
	if r := attr(req.Planned, "resources"); !r.IsNull() {
		if spec, err := catalog.ParseGPU(str(attr(r, "gpu"))); err == nil {
			cmd.GPUsPerNode = spec.Count
		}
	} else if cl, ok := req.Env.Lookup(tg.address); ok {
		if g := str(attr(cl, "gpu")); g != "" {
			if spec, err := catalog.ParseGPU(g); err == nil {
				cmd.GPUsPerNode = spec.Count
			}
		}
	}
	dir, err := cs.workdirPath(req.Env.Dir)
	if err != nil {
		return err
	}
	if dir != "" {
		o, err := uploadWorkdir(ctx, c, dir)
		if err != nil {
			return fmt.Errorf("workdir %s: %w", cs.workdir, err)
		}
		cmd.Workdir = &o
	}
	if cmd.MasterAddr, err = masterAddr(ctx, c, tg); err != nil {
		return err
	}
	for _, n := range to {
		nc := cmd
		if n == 0 {
			o, err := c.Store.Sign(ctx, runspec.CommandOutputKey(id), "PUT", remote.URLTTL)
			if err != nil {
				return err
			}
			nc.Output = &o
		}
		run := runspec.Run{ID: id, Kind: runspec.KindTraining, Address: req.Address, Node: n, Nodes: len(all),
			Expires: nowUTC().Add(remote.URLTTL), Training: &runspec.Training{Command: &nc}}
		// A first attempt's own id names the series of checkpoints; a
		// restart on nodes of the run's own continues its series.
		series, attempt := attemptOf(tg, id)
		run.Attempt = attempt
		if run.Checkpoint, err = commandCheckpoint(ctx, c, series, run.Attempt, n); err != nil {
			return err
		}
		if run.Status, run.Log, err = runObjects(ctx, c, id, n); err != nil {
			return err
		}
		if err := c.AddRun(ctx, tg.key, run); err != nil {
			return err
		}
	}
	return nil
}

// commandCheckpoint signs a node's checkpoint_dir objects for an attempt
// of a series of runs (series: the first attempt's id): Put always, Get
// from the second attempt on, to restore what the lost attempt saved.
func commandCheckpoint(ctx context.Context, c *remote.Client, series string, attempt, node int) (*runspec.Checkpoint, error) {
	key := runspec.CheckpointKey(series, node)
	put, err := c.Store.Sign(ctx, key, "PUT", remote.URLTTL)
	if err != nil {
		return nil, err
	}
	cp := &runspec.Checkpoint{Put: put, Every: CommandCheckpointEvery}
	if attempt > 0 {
		get, err := c.Store.Sign(ctx, key, "GET", remote.URLTTL)
		if err != nil {
			return nil, err
		}
		cp.Get = &get
	}
	return cp, nil
}

// masterWait bounds the wait for node 0's address.
const masterWait = 10 * time.Minute

// masterAddr is node 0's private address, as its agent found it in the
// cloud's metadata service and reports it in its heartbeat.
func masterAddr(ctx context.Context, c *remote.Client, tg target) (string, error) {
	start := time.Now()
	for {
		hb, found, err := c.Heartbeat(ctx, tg.key, 0)
		fresh := found && !runspec.Stale(hb.Updated, time.Now())
		switch {
		case err != nil:
			return "", err
		case fresh && hb.Host != "":
			return hb.Host, nil
		case fresh && hb.Error != "":
			return "", fmt.Errorf("the agent of %s node 0 (%s) reports: %s", tg.address, tg.host(0), hb.Error)
		case time.Since(start) > masterWait:
			return "", fmt.Errorf("%s node 0 (%s) has not reported its address after %s (MASTER_ADDR): see the instance's console output", tg.address, tg.host(0), masterWait)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// skipInWorkdir leaves out of the uploaded work folder what is never the
// program's: version control, lepton's own folder and state (which may hold
// secrets).
func skipInWorkdir(rel string, d fs.DirEntry) bool {
	name := d.Name()
	return name == ".git" || name == ".lepton" || strings.HasPrefix(name, "lepton.state.json")
}

// uploadWorkdir archives dir (a gzipped canonical tar), uploads it once per
// digest and signs a GET of it.
func uploadWorkdir(ctx context.Context, c *remote.Client, dir string) (runspec.Object, error) {
	f, err := os.CreateTemp("", "lepton-workdir-*.tar.gz")
	if err != nil {
		return runspec.Object{}, err
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	s, err := dirtar.ToFile(dir, tmp, dirtar.Options{Gzip: true, Skip: skipInWorkdir})
	if err != nil {
		return runspec.Object{}, err
	}
	key := runspec.WorkdirKey(s.Digest)
	if err := c.Upload(ctx, key, func() (io.ReadCloser, error) { return os.Open(tmp) }); err != nil {
		return runspec.Object{}, err
	}
	o, err := c.Store.Sign(ctx, key, "GET", remote.URLTTL)
	o.Digest = s.Digest
	return o, err
}

// commandOutput is node 0's output as it landed here.
type commandOutput struct {
	dir     string
	files   int
	model   string // digest of the lepton model in it, stored as an artifact
	metrics cty.Value
}

// OutputDir is where a training's run block output is unpacked on this
// machine (.lepton/runs/ADDRESS/outputs).
func OutputDir(dataDir, address string) string {
	return filepath.Join(RunDir(dataDir, address), "outputs")
}

// downloadOutput fetches node 0's output, checks it against the digest the
// node reported, unpacks it into OutputDir and stores the lepton model it
// holds (model.lmodel) as an artifact. A metrics.json of numbers becomes the
// training's metrics.
func downloadOutput(ctx context.Context, c *remote.Client, dataDir, address, run string, res *runspec.Result) (commandOutput, error) {
	key := runspec.CommandOutputKey(run)
	rc, err := c.Store.Get(ctx, key)
	if err != nil {
		return commandOutput{}, fmt.Errorf("downloading the output of run %s: %w", run, err)
	}
	defer rc.Close()
	if err := os.MkdirAll(RunDir(dataDir, address), 0o700); err != nil {
		return commandOutput{}, err
	}
	tmp, err := os.CreateTemp(RunDir(dataDir, address), "output-*.tar")
	if err != nil {
		return commandOutput{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), rc); err != nil {
		return commandOutput{}, fmt.Errorf("downloading the output of run %s: %w", run, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != res.Digest {
		return commandOutput{}, fmt.Errorf("the output of run %s hashes to %s, but node 0 reported %s: %s was changed or corrupted", run, got, res.Digest, c.Store.Where(key))
	}
	out := commandOutput{dir: OutputDir(dataDir, address), metrics: cty.MapValEmpty(cty.Number)}
	if err := os.RemoveAll(out.dir); err != nil {
		return out, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return out, err
	}
	if out.files, err = dirtar.Extract(tmp, out.dir, false); err != nil {
		return out, fmt.Errorf("the output of run %s: %w", run, err)
	}
	if b, err := os.ReadFile(filepath.Join(out.dir, runspec.CommandModelFile)); err == nil {
		digest, err := artifactStore(dataDir).PutEncoded(ctx, b)
		if err != nil {
			return out, fmt.Errorf("the output's %s: %w", runspec.CommandModelFile, err)
		}
		if digest != res.Model {
			return out, fmt.Errorf("the output's %s hashes to %s, but node 0 reported %s", runspec.CommandModelFile, digest, res.Model)
		}
		out.model = digest
	}
	if b, err := os.ReadFile(filepath.Join(out.dir, "metrics.json")); err == nil {
		out.metrics = metricsOf(b)
	}
	return out, nil
}

// metricsOf keeps the numbers of a metrics.json object (other values, or
// another document, give no metrics).
func metricsOf(b []byte) cty.Value {
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return cty.MapValEmpty(cty.Number)
	}
	mv := map[string]cty.Value{}
	for k, v := range m {
		if f, ok := v.(float64); ok {
			mv[k] = numVal(sig(f))
		}
	}
	if len(mv) == 0 {
		return cty.MapValEmpty(cty.Number)
	}
	return cty.MapVal(mv)
}
