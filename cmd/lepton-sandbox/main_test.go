package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leptonml/lepton/internal/sandbox"
	"github.com/leptonml/lepton/providers/cloud"
	"github.com/leptonml/lepton/providers/clusters"
)

var bin string

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "lepton-sandbox-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(tmp, "lepton-sandbox")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building lepton-sandbox:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// started is a running lepton-sandbox.
type started struct {
	cmd  *exec.Cmd
	dir  string
	env  map[string]string
	exit chan error
	log  *bytes.Buffer
}

func startSandbox(t *testing.T) *started {
	t.Helper()
	dir := t.TempDir()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-dir", dir, "-grace", "1s")
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &started{cmd: cmd, dir: dir, env: map[string]string{}, exit: make(chan error, 1), log: &stderr}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		s.exit <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
	})
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("lepton-sandbox ended before ready: %s", stderr.String())
			}
			if line == "ready" {
				go func() {
					for range lines {
					}
				}()
				return s
			}
			kv, ok := strings.CutPrefix(line, "export ")
			name, value, ok2 := strings.Cut(kv, "=")
			if !ok || !ok2 {
				t.Fatalf("unexpected line before ready: %q", line)
			}
			s.env[name] = strings.Trim(value, "'")
		case <-timeout:
			t.Fatalf("lepton-sandbox not ready after 60s: %s", stderr.String())
		}
	}
}

func (s *started) run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-dir", s.dir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String() + errb.String(), code
}

func (s *started) status(t *testing.T) sandbox.Status {
	t.Helper()
	out, code := s.run(t, "status", "-json")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, out)
	}
	var st sandbox.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -json: %v: %s", err, out)
	}
	return st
}

// userData writes what the node saw, asks its cloud's metadata server for
// the node's address the way the agent does, then stays up like an agent.
const userData = `#!/bin/bash
set -eu
echo "$LEPTON_NODE_DIR" > ran
env > env.txt
case "$CLOUD" in
aws)
  tok=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/api/token")
  curl -fsS -H "X-aws-ec2-metadata-token: $tok" "$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/meta-data/local-ipv4" > ip
  curl -fsS -H "X-aws-ec2-metadata-token: $tok" "$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/meta-data/instance-id" > id
  curl -fsS -H "X-aws-ec2-metadata-token: $tok" "$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/user-data" > user-data.echo
  # IMDSv2 only: no token, no answer.
  curl -s -o /dev/null -w '%{http_code}' "$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/meta-data/local-ipv4" > notoken ;;
gcp)
  curl -fsS -H 'Metadata-Flavor: Google' "http://$GCE_METADATA_HOST/computeMetadata/v1/instance/network-interfaces/0/ip" > ip
  curl -fsS -H 'Metadata-Flavor: Google' "http://$GCE_METADATA_HOST/computeMetadata/v1/instance/name" > id
  curl -fsS -H 'Metadata-Flavor: Google' "http://$GCE_METADATA_HOST/computeMetadata/v1/instance/attributes/startup-script" > user-data.echo
  curl -s -o /dev/null -w '%{http_code}' "http://$GCE_METADATA_HOST/computeMetadata/v1/instance/network-interfaces/0/ip" > notoken ;;
azure)
  curl -fsS -H 'Metadata: true' "$AZURE_IMDS_ENDPOINT/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress?api-version=2021-02-01&format=text" > ip
  curl -fsS -H 'Metadata: true' "$AZURE_IMDS_ENDPOINT/metadata/instance/compute/name?api-version=2021-02-01&format=text" > id
  curl -fsS -H 'Metadata: true' "$AZURE_IMDS_ENDPOINT/metadata/instance/compute/customData?api-version=2021-02-01&format=text" | base64 -d > user-data.echo
  curl -s -o /dev/null -w '%{http_code}' "$AZURE_IMDS_ENDPOINT/metadata/instance/compute/name?api-version=2021-02-01&format=text" > notoken ;;
esac
echo up > done
exec sleep 600
`

func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			return string(b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	console, _ := os.ReadFile(filepath.Join(filepath.Dir(path), "console.log"))
	t.Fatalf("%s never appeared; console.log:\n%s", path, console)
	return ""
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil && syscall.Kill(-pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("process (group) %d still alive", pid)
}

func TestSandboxEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is missing: .ci/setup-curl.sh installs it")
		}
		t.Skip("curl is not installed (apt-get install curl); the nodes' user data uses it")
	}
	sb := startSandbox(t)
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS",
		"GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "LEPTON_GCP_ENDPOINT",
		"AZURE_SUBSCRIPTION_ID", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_BLOB_ENDPOINT", "LEPTON_AZURE_ENDPOINT"} {
		if sb.env[v] == "" {
			t.Errorf("no export of %s", v)
		}
		if strings.Contains(v, "ENDPOINT") && !cloud.IsLoopback(sb.env[v]) {
			t.Errorf("%s=%s is not on loopback", v, sb.env[v])
		}
	}
	envFile, err := os.ReadFile(filepath.Join(sb.dir, "sandbox.env"))
	if err != nil || !strings.Contains(string(envFile), "export AWS_SECRET_ACCESS_KEY="+sb.env["AWS_SECRET_ACCESS_KEY"]) {
		t.Errorf("sandbox.env: %v\n%s", err, envFile)
	}
	if st, err := os.Stat(filepath.Join(sb.dir, "sandbox.env")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("sandbox.env holds keys and must be 0600: %v", st.Mode())
	}

	// lepton's own view: the provisioners built from provider blocks with
	// nothing but the exported environment.
	home := t.TempDir()
	for k, v := range map[string]string{"AWS_PROFILE": "", "AWS_CONFIG_FILE": filepath.Join(home, "c"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "k"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": ""} {
		t.Setenv(k, v)
	}
	for k, v := range sb.env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	blocks := map[string]map[string]string{
		"aws":   {"region": "us-east-1"},
		"gcp":   {"region": "us-central1"},                             // project: GOOGLE_CLOUD_PROJECT
		"azure": {"resource_group": "lepton-rg", "location": "eastus"}, // subscription_id: AZURE_SUBSCRIPTION_ID
	}
	specs := map[string]cloud.NodeSpec{
		"aws":   {InstanceType: "g5.xlarge", Region: "us-east-1", Spot: true},
		"gcp":   {InstanceType: "g2-standard-4", Region: "us-central1", Zone: "us-central1-a"},
		"azure": {InstanceType: "Standard_NC4as_T4_v3", Region: "eastus"},
	}
	provs := map[string]cloud.Provisioner{}
	nodes := map[string]cloud.Node{}
	pids := map[string]int{}
	for _, c := range []string{"aws", "gcp", "azure"} {
		p, err := clusters.SDKProvisioner(ctx, c, blocks[c])
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		provs[c] = p
		spec := specs[c]
		spec.Address, spec.Lineage, spec.ClientToken = "cluster.sbx", "lineage-sbx", "token-"+c
		spec.UserData = strings.Replace(userData, "set -eu\n", "set -eu\nCLOUD="+c+"\n", 1)
		t0 := time.Now()
		n, err := p.Create(ctx, spec)
		t.Logf("%s: created %s in %v", c, n.ID, time.Since(t0))
		if err != nil {
			t.Fatalf("%s create: %v\n%s", c, err, sb.log)
		}
		nodes[c] = n
		nd := filepath.Join(sb.dir, "nodes", n.ID)
		waitFile(t, filepath.Join(nd, "done"))
		ip, _ := os.ReadFile(filepath.Join(nd, "ip"))
		id, _ := os.ReadFile(filepath.Join(nd, "id"))
		echo, _ := os.ReadFile(filepath.Join(nd, "user-data.echo"))
		notoken, _ := os.ReadFile(filepath.Join(nd, "notoken"))
		ran, _ := os.ReadFile(filepath.Join(nd, "ran"))
		if !strings.HasPrefix(n.Address, "127.0.0.") || string(ip) != n.Address {
			t.Errorf("%s: metadata says address %q, the cloud says %q", c, ip, n.Address)
		}
		if string(id) != n.ID {
			t.Errorf("%s: metadata says instance %q, the cloud says %q", c, id, n.ID)
		}
		if string(echo) != spec.UserData {
			t.Errorf("%s: the metadata server's user data differs:\n%s", c, echo)
		}
		if want := map[string]string{"aws": "401", "gcp": "403", "azure": "400"}[c]; string(notoken) != want {
			t.Errorf("%s: a request without the metadata header got %s, want %s", c, notoken, want)
		}
		if strings.TrimSpace(string(ran)) != nd {
			t.Errorf("%s: LEPTON_NODE_DIR=%q, want %q", c, ran, nd)
		}
		env, _ := os.ReadFile(filepath.Join(nd, "env.txt"))
		for _, secret := range []string{"AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_KEY", "GOOGLE_APPLICATION_CREDENTIALS"} {
			if strings.Contains(string(env), sb.env[secret]) {
				t.Errorf("%s: the node's environment holds the sandbox's %s", c, secret)
			}
		}
		var rec sandbox.NodeRecord
		b, _ := os.ReadFile(filepath.Join(nd, "node.json"))
		if err := json.Unmarshal(b, &rec); err != nil || rec.Cloud != c || rec.ID != n.ID || rec.IP != n.Address || rec.PID <= 0 {
			t.Fatalf("%s node.json: %v %s", c, err, b)
		}
		pids[c] = rec.PID
		if syscall.Kill(rec.PID, 0) != nil {
			t.Errorf("%s: node process %d is not running", c, rec.PID)
		}
	}

	// Preempt the AWS node as a spot interruption.
	if out, code := sb.run(t, "preempt", nodes["aws"].ID); code != 0 {
		t.Fatalf("preempt: exit %d: %s", code, out)
	}
	waitGone(t, pids["aws"])
	if _, found, err := provs["aws"].Read(ctx, "us-east-1", "", nodes["aws"].ID); err != nil || found {
		t.Errorf("a preempted instance still reads as found=%v (%v)", found, err)
	}
	st := sb.status(t)
	if st.Booted != 3 || st.Live != 2 || len(st.Nodes) != 3 {
		t.Fatalf("status: %+v", st)
	}
	for _, n := range st.Nodes {
		if n.ID == nodes["aws"].ID && (n.State != "preempted" || n.Stopped == nil) {
			t.Errorf("status of the preempted node: %+v", n)
		}
		if n.ID != nodes["aws"].ID && (n.State != "running" || n.Process != "running") {
			t.Errorf("status of a running node: %+v", n)
		}
	}
	out, code := sb.run(t, "status")
	if code != 0 || !strings.Contains(out, nodes["aws"].ID) || !strings.Contains(out, "preempted") || !strings.Contains(out, "3 nodes booted, 2 running") {
		t.Errorf("status: exit %d:\n%s", code, out)
	}
	if out, code := sb.run(t, "preempt", "i-nonexistent"); code != 1 || !strings.Contains(out, "no instance") {
		t.Errorf("preempt of an unknown instance: exit %d: %s", code, out)
	}

	// Deleting through the API stops the node too.
	if err := provs["gcp"].Delete(ctx, nodes["gcp"]); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pids["gcp"])
	if _, err := os.Stat(filepath.Join(sb.dir, "nodes", nodes["gcp"].ID, "console.log")); err != nil {
		t.Errorf("a stopped node's directory is kept: %v", err)
	}

	// SIGINT stops every node left.
	sb.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-sb.exit:
		if err != nil {
			t.Fatalf("lepton-sandbox after SIGINT: %v\n%s", err, sb.log)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("lepton-sandbox did not stop after SIGINT")
	}
	for c, pid := range pids {
		if syscall.Kill(pid, 0) == nil || syscall.Kill(-pid, 0) == nil {
			t.Errorf("%s node process %d survived the sandbox", c, pid)
		}
	}
	if _, err := os.Stat(filepath.Join(sb.dir, "sandbox.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sandbox.json is left behind: %v", err)
	}
	if out, code := sb.run(t, "status"); code != 1 || !strings.Contains(out, "no sandbox is running") {
		t.Errorf("status without a sandbox: exit %d: %s", code, out)
	}
}

func TestUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-help"}, 0, "Examples:"},
		{[]string{}, 2, "-dir is required"},
		{[]string{"-dir", t.TempDir(), "bogus"}, 2, `unknown subcommand "bogus"`},
		{[]string{"-dir", t.TempDir(), "preempt"}, 2, "preempt INSTANCE_ID"},
		{[]string{"-dir", t.TempDir(), "status"}, 1, "no sandbox is running"},
		{[]string{"-nope"}, 2, "flag provided but not defined"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s%s", c.args, code, c.code, c.want, out.String(), errb.String())
		}
	}
}

// A sandbox killed with SIGKILL cannot stop its nodes; the next one started
// in the same directory does.
func TestNodesOfAKilledSandboxAreStoppedByTheNext(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil && os.Getenv("CI") == "" {
		t.Skip("curl is not installed")
	}
	sb := startSandbox(t)
	for k, v := range map[string]string{"AWS_PROFILE": "", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": ""} {
		t.Setenv(k, v)
	}
	for k, v := range sb.env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := clusters.SDKProvisioner(ctx, "aws", map[string]string{"region": "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.Create(ctx, cloud.NodeSpec{Address: "cluster.k", Lineage: "l", ClientToken: "t", InstanceType: "g5.xlarge", Region: "us-east-1",
		UserData: "#!/bin/bash\nsleep 600 &\necho up > done\nexec sleep 600\n"})
	if err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(sb.dir, "nodes", n.ID, "done"))
	var rec sandbox.NodeRecord
	b, _ := os.ReadFile(filepath.Join(sb.dir, "nodes", n.ID, "node.json"))
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	sb.cmd.Process.Kill()
	<-sb.exit
	if syscall.Kill(-rec.PID, 0) != nil {
		t.Fatal("the node died with its sandbox; nothing to test")
	}
	cmd := exec.Command(bin, "-dir", sb.dir)
	out, _ := cmd.StdoutPipe()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "ready" {
	}
	waitGone(t, rec.PID)
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("second sandbox: %v: %s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "left running by an earlier sandbox") {
		t.Errorf("the second sandbox did not say it stopped the node: %s", errb.String())
	}
	if _, err := os.Stat(filepath.Join(sb.dir, "nodes.prev", n.ID, "console.log")); err != nil {
		t.Errorf("the earlier run's node directory is not kept in nodes.prev: %v", err)
	}
}
