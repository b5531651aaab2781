package multicloud_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The cloud path on one machine: lepton, lepton-agent and lepton-sandbox
// built into one folder (the README's set-up), the sandbox started, and the
// example's training and endpoint applied on a one-node cluster of each
// cloud. The model must have the digest the same training gives on this
// machine, the cluster's endpoint must answer as a local one, and destroy
// must leave no instance, node process or object.

// sandboxBins builds the three commands into one folder, once.
var sandboxBins = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "lepton-sandbox-bin")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "../../cmd/lepton", "../../cmd/lepton-agent", "../../cmd/lepton-sandbox")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return dir, nil
})

type sandbox struct {
	bin, dir string
	env      []string // the export lines, NAME=VALUE
	cmd      *exec.Cmd
}

// startSandbox runs lepton-sandbox until the test ends and returns the
// environment it exports.
func startSandbox(t *testing.T) *sandbox {
	t.Helper()
	bins, err := sandboxBins()
	if err != nil {
		t.Fatal(err)
	}
	sb := &sandbox{bin: bins, dir: t.TempDir()}
	sb.cmd = exec.Command(filepath.Join(bins, "lepton-sandbox"), "-dir", sb.dir)
	sb.cmd.Stderr = os.Stderr
	stdout, err := sb.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sb.cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- sb.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			sb.cmd.Process.Kill()
			t.Error("lepton-sandbox did not stop within 30s of SIGINT")
		}
	})
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "ready" {
				ready <- nil
				return
			}
			if kv, ok := strings.CutPrefix(line, "export "); ok {
				name, val, _ := strings.Cut(kv, "=")
				sb.env = append(sb.env, name+"="+unquote(val))
			}
		}
		ready <- fmt.Errorf("lepton-sandbox ended before ready: %v", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("lepton-sandbox not ready within 2 minutes")
	}
	return sb
}

// unquote undoes the shell quoting of an export line's value.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '\'' && v[len(v)-1] == '\'') {
		return strings.ReplaceAll(v[1:len(v)-1], `'\''`, `'`)
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// startMerged starts cmd with env and returns its output, stdout and stderr
// merged in the order written, for a test to follow line by line.
func startMerged(t *testing.T, cmd *exec.Cmd, env []string) io.ReadCloser {
	t.Helper()
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdout
}

// lepton runs the lepton of the sandbox's folder.
func (sb *sandbox) lepton(t *testing.T, env []string, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(sb.bin, "lepton"), append([]string{"-chdir=" + dir}, args...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (sb *sandbox) must(t *testing.T, env []string, dir string, args ...string) string {
	t.Helper()
	out, err := sb.lepton(t, env, dir, args...)
	if err != nil {
		t.Fatalf("lepton %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// status is `lepton-sandbox status`.
func (sb *sandbox) status(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(sb.bin, "lepton-sandbox"), "-dir", sb.dir, "status").CombinedOutput()
	if err != nil {
		t.Fatalf("lepton-sandbox status: %v\n%s", err, out)
	}
	return string(out)
}

var cloudBlocks = map[string]string{
	"aws":   "provider \"aws\" {\n  region = \"us-east-1\"\n}\n",
	"gcp":   "provider \"gcp\" {\n  project = \"sandbox\"\n  region  = \"us-central1\"\n}\n",
	"azure": "provider \"azure\" {\n  subscription_id = \"00000000-0000-0000-0000-000000000000\"\n  location        = \"eastus\"\n  resource_group  = \"ml\"\n}\n",
}

// project writes a project with the example's runs on a one-node cluster on
// cloudName ("" for this machine: no cluster).
func project(t *testing.T, cloudName string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile("runs.lep.hcl")
	if err != nil {
		t.Fatal(err)
	}
	runs := string(b)
	cfg := ""
	if cloudName == "" {
		runs = strings.ReplaceAll(runs, "  cluster   = cluster.gpu\n", "")
		runs = strings.ReplaceAll(runs, "  cluster = cluster.gpu\n", "")
	} else {
		cfg = cloudBlocks[cloudName] + fmt.Sprintf("cluster \"gpu\" {\n  clouds = [%q]\n  gpu    = \"A100:8\"\n  nodes  = 1\n}\n", cloudName)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(cfg+runs), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	csv, err := os.ReadFile("data/flowers.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "flowers.csv"), csv, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func outputs(t *testing.T, sb *sandbox, env []string, dir string) map[string]string {
	t.Helper()
	var out map[string]struct {
		Value any `json:"value"`
	}
	js := sb.must(t, env, dir, "output", "-json")
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		t.Fatalf("output -json: %v\n%s", err, js)
	}
	m := map[string]string{}
	for k, v := range out {
		m[k] = fmt.Sprint(v.Value)
	}
	return m
}

const flowerRows = `[[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]`

func TestRemoteRunsOnSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and boots nodes: not in -short")
	}
	sb := startSandbox(t)
	env := offlineEnv(t, sb.env...)

	// The same training on this machine, for the digest and the answers.
	localDir := project(t, "")
	sb.must(t, env, localDir, "apply", "-auto-approve")
	local := outputs(t, sb, env, localDir)
	localPred := sb.must(t, env, localDir, "predict", "endpoint.flowers", "-input", flowerRows)
	sb.must(t, env, localDir, "destroy", "-auto-approve")

	for _, cloudName := range []string{"aws", "gcp", "azure"} {
		t.Run(cloudName, func(t *testing.T) {
			dir := project(t, cloudName)
			out := sb.must(t, env, dir, "apply", "-auto-approve")
			for _, want := range []string{"started run", "epoch 200/200"} {
				if !strings.Contains(out, want) {
					t.Errorf("apply output lacks %q:\n%s", want, out)
				}
			}
			got := outputs(t, sb, env, dir)
			if got["model"] != local["model"] {
				t.Errorf("model trained on %s: %s; on this machine: %s", cloudName, got["model"], local["model"])
			}
			if !strings.Contains(got["url"], "127.0.0.") || strings.Contains(got["url"], "127.0.0.1:") {
				t.Errorf("endpoint url %q: want a node's own loopback address", got["url"])
			}
			pred := sb.must(t, env, dir, "predict", "endpoint.flowers", "-input", flowerRows)
			if pred != localPred {
				t.Errorf("predict on %s:\n%s\nlocally:\n%s", cloudName, pred, localPred)
			}
			// show and base_model work from the downloaded artifact.
			if show := sb.must(t, env, dir, "show", "training.flowers"); !strings.Contains(show, "mlp") {
				t.Errorf("show training.flowers:\n%s", show)
			}
			if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "No changes") {
				t.Errorf("plan after apply:\n%s", plan)
			}
			if st := sb.must(t, env, dir, "status"); !strings.Contains(st, "healthy") {
				t.Errorf("status:\n%s", st)
			}
			if logs := sb.must(t, env, dir, "logs", "training.flowers"); !strings.Contains(logs, "epoch") {
				t.Errorf("logs training.flowers:\n%s", logs)
			}
			sb.must(t, env, dir, "destroy", "-auto-approve")
			noSecrets(t, sb, out)
		})
	}
	sb.noneRunning(t)
}

// noneRunning checks that no instance or node process is left.
func (sb *sandbox) noneRunning(t *testing.T) {
	t.Helper()
	out, err := exec.Command(filepath.Join(sb.bin, "lepton-sandbox"), "-dir", sb.dir, "status", "-json").CombinedOutput()
	if err != nil {
		t.Fatalf("lepton-sandbox status -json: %v\n%s", err, out)
	}
	var st struct {
		Booted int  `json:"booted"`
		Live   *int `json:"live"`
	}
	if err := json.Unmarshal(out, &st); err != nil || st.Live == nil {
		t.Fatalf("lepton-sandbox status -json: %v\n%s", err, out)
	}
	if *st.Live != 0 || st.Booted == 0 {
		t.Errorf("%d of %d nodes left running after destroy:\n%s", *st.Live, st.Booted, sb.status(t))
	}
}

// started counts the runs of address the nodes' agents ever started.
func (sb *sandbox) started(t *testing.T, address string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(sb.dir, "nodes", "*", "runs", address+"-*", "started"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// nodePID is the node process of the instance serving at host.
func (sb *sandbox) nodePID(t *testing.T, host string) int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(sb.dir, "nodes", "*", "node.json"))
	for _, f := range files {
		var n struct {
			IP      string `json:"ip"`
			PID     int    `json:"pid"`
			Stopped string `json:"stopped"`
		}
		b, _ := os.ReadFile(f)
		if json.Unmarshal(b, &n) == nil && n.IP == host && n.Stopped == "" {
			return n.PID
		}
	}
	t.Fatalf("no running node at %s in %s", host, sb.dir)
	return 0
}

var epochLine = regexp.MustCompile(`epoch (\d+)/4000 `)

// A kill -9 of apply in the middle of a remote training leaves the run going:
// the next plan shows it, the next apply waits for it, and the node started
// it once. Then a node killed under the endpoint is drift that the next apply
// repairs, and destroy leaves nothing.
func TestRemoteKillAndRepair(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and boots nodes: not in -short")
	}
	sb := startSandbox(t)
	env := offlineEnv(t, sb.env...)
	dir := project(t, "aws")
	hcl := filepath.Join(dir, "main.lep.hcl")
	b, _ := os.ReadFile(hcl)
	// Long enough to be killed in the middle of.
	os.WriteFile(hcl, []byte(strings.Replace(string(b), "epochs = 200", "epochs = 4000", 1)), 0o644)

	cmd := exec.Command(filepath.Join(sb.bin, "lepton"), "-chdir="+dir, "apply", "-auto-approve")
	stdout := startMerged(t, cmd, env)
	var printed strings.Builder
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		// Progress lines come from the node's status object: at hundreds
		// of epochs a second, some are skipped between two reads.
		if m := epochLine.FindStringSubmatch(sc.Text()); m != nil && len(m[1]) >= 2 {
			cmd.Process.Kill() // SIGKILL: no chance to clean up
			killed = true
			break
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("apply ended before the training was under way:\n%s", printed.String())
	}

	plan := sb.must(t, env, dir, "plan")
	for _, want := range []string{"# (is still running on cluster.gpu; apply waits for it)", "# node 0 (127.0.0."} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan after the kill lacks %q:\n%s", want, plan)
		}
	}
	out := sb.must(t, env, dir, "apply", "-auto-approve")
	if !strings.Contains(out, "waiting for run training.flowers-") || strings.Contains(out, "started run training.flowers-") {
		t.Errorf("the second apply did not wait for the first run:\n%s", out)
	}
	if n := sb.started(t, "training.flowers"); n != 1 {
		t.Errorf("the nodes started training.flowers %d times, want 1", n)
	}
	if got := outputs(t, sb, env, dir)["model"]; !strings.HasPrefix(got, "sha256:") {
		t.Fatalf("model output %q", got)
	}

	// A node process killed under the endpoint.
	url := outputs(t, sb, env, dir)["url"]
	host := strings.TrimPrefix(url, "http://")
	host = host[:strings.LastIndex(host, ":")]
	syscall.Kill(sb.nodePID(t, host), syscall.SIGKILL)
	plan = sb.must(t, env, dir, "plan")
	if !strings.Contains(plan, "endpoint.flowers will be created") && !strings.Contains(plan, "endpoint.flowers must be replaced") {
		t.Errorf("plan after a node was killed shows no drift of the endpoint:\n%s", plan)
	}
	sb.must(t, env, dir, "apply", "-auto-approve")
	if pred := sb.must(t, env, dir, "predict", "endpoint.flowers", "-input", flowerRows); !strings.Contains(pred, "predictions") {
		t.Errorf("predict after the repair:\n%s", pred)
	}
	if plan := sb.must(t, env, dir, "plan"); !strings.Contains(plan, "No changes") {
		t.Errorf("plan after the repair:\n%s", plan)
	}
	sb.must(t, env, dir, "destroy", "-auto-approve")
	sb.noneRunning(t)
	noSecrets(t, sb, printed.String()+out+plan)
}

// noSecrets checks that none of the sandbox's secrets appear in what lepton
// printed or in what the nodes were given and wrote.
func noSecrets(t *testing.T, sb *sandbox, printed string) {
	t.Helper()
	var secrets []string
	for _, kv := range sb.env {
		name, val, _ := strings.Cut(kv, "=")
		if strings.Contains(name, "SECRET") || strings.Contains(name, "KEY") || strings.Contains(name, "CONNECTION_STRING") {
			if len(val) >= 8 && !strings.HasPrefix(val, "/") {
				secrets = append(secrets, val)
			}
		}
	}
	if len(secrets) == 0 {
		t.Fatal("the sandbox exported no secret to look for")
	}
	check := func(where, text string) {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds a sandbox secret (%.6s…)", where, s)
			}
		}
	}
	check("apply output", printed)
	filepath.Walk(filepath.Join(sb.dir, "nodes"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Size() > 1<<20 {
			return nil
		}
		b, _ := os.ReadFile(p)
		check(p, string(b))
		return nil
	})
}
