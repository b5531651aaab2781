// Command remote measures the cloud path on the sandbox with the built
// binaries: how long after a node writes a progress line into its status
// object lepton prints it, and how long from a node's boot to its agent's
// first heartbeat and from the hand-over of a training to its first step.
//
//	go build -o /tmp/bin/ ./cmd/... && go run ./bench/remote -bin /tmp/bin -runs 3
//
// It starts lepton-sandbox, applies a one-node AWS cluster with a training
// of 300 epochs on it, and polls the training's status object every 20 ms
// while reading apply's output: a line's latency is the time between its
// first appearance in the status object and its arrival on apply's stdout.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/objstore"
	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/runstore"
)

const config = `provider "aws" {
  region = "us-east-1"
}
cluster "gpu" {
  clouds = ["aws"]
  gpu    = "A100:8"
  nodes  = 1
}
dataset "xy" {
  source {
    inline = {
      a     = [0, 0, 1, 1, 0, 1, 1, 0, 0.5, 0.2, 0.9, 0.1]
      b     = [0, 1, 0, 1, 1, 1, 0, 0, 0.5, 0.7, 0.1, 0.3]
      label = [0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0]
    }
  }
  label = "label"
}
training "xy" {
  cluster = cluster.gpu
  dataset = dataset.xy
  model {
    kind   = "mlp"
    hidden = [8]
  }
  epochs = 300
  seed   = 1
}
`

func main() {
	bin := flag.String("bin", "", "folder holding lepton, lepton-agent and lepton-sandbox")
	runs := flag.Int("runs", 3, "applies to measure")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "usage: remote -bin DIR [-runs N]")
		os.Exit(2)
	}
	if err := run(*bin, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "remote:", err)
		os.Exit(1)
	}
}

func run(bin string, runs int) error {
	sbDir, err := os.MkdirTemp("", "bench-sandbox")
	if err != nil {
		return err
	}
	defer os.RemoveAll(sbDir)
	sb := exec.Command(filepath.Join(bin, "lepton-sandbox"), "-dir", sbDir)
	out, err := sb.StdoutPipe()
	if err != nil {
		return err
	}
	if err := sb.Start(); err != nil {
		return err
	}
	defer func() { sb.Process.Signal(syscall.SIGINT); sb.Wait() }()
	var env []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			break
		}
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			name, val, _ := strings.Cut(kv, "=")
			env = append(env, name+"="+strings.Trim(val, `'"`))
			os.Setenv(name, strings.Trim(val, `'"`)) // this process reads the store too
		}
	}
	home, _ := os.MkdirTemp("", "bench-home")
	defer os.RemoveAll(home)
	env = append(env, "PATH="+os.Getenv("PATH"), "HOME="+home, "NO_COLOR=1", "AWS_EC2_METADATA_DISABLED=true")

	var lat, boot, first []time.Duration
	for i := 0; i < runs; i++ {
		l, b, f, err := once(bin, env, sbDir)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		lat = append(lat, l...)
		boot = append(boot, b)
		first = append(first, f)
	}
	fmt.Printf("| what | median | max | n |\n|---|---|---|---|\n")
	for _, r := range []struct {
		what string
		d    []time.Duration
	}{
		{"progress line: status object -> apply's stdout", lat},
		{"node boot -> agent running (fetched, checked, started, address known)", boot},
		{"training handed to the node -> first epoch line in its status", first},
	} {
		slices.Sort(r.d)
		fmt.Printf("| %s | %s | %s | %d |\n", r.what, r.d[len(r.d)/2].Round(time.Millisecond), r.d[len(r.d)-1].Round(time.Millisecond), len(r.d))
	}
	return nil
}

var startedRun = regexp.MustCompile(`started run (\S+) on`)

// once applies the configuration in a fresh folder, measures, destroys.
func once(bin string, env []string, sbDir string) (lat []time.Duration, boot, first time.Duration, err error) {
	dir, err := os.MkdirTemp("", "bench-remote")
	if err != nil {
		return nil, 0, 0, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(config), 0o644); err != nil {
		return nil, 0, 0, err
	}
	lepton := func(args ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(bin, "lepton"), append([]string{"-chdir=" + dir}, args...)...)
		c.Env = env
		return c
	}
	cmd := lepton("apply", "-auto-approve")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, 0, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, 0, 0, err
	}
	printed := map[string]time.Time{}
	var handed time.Time
	var runID string
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := map[string]time.Time{}
	var firstSeen time.Time
	var wg sync.WaitGroup
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		now := time.Now()
		if m := startedRun.FindStringSubmatch(line); m != nil && runID == "" {
			runID, handed = m[1], now
			wg.Add(1)
			go func() {
				defer wg.Done()
				poll(ctx, dir, runID, func(l string, at time.Time) {
					mu.Lock()
					if _, ok := seen[l]; !ok {
						seen[l] = at
						if firstSeen.IsZero() {
							firstSeen = at
						}
					}
					mu.Unlock()
				})
			}()
		}
		if _, text, ok := strings.Cut(line, "training.xy: "); ok && strings.HasPrefix(text, "epoch ") {
			mu.Lock()
			printed[strings.TrimSpace(text)] = now
			mu.Unlock()
		}
	}
	if err := cmd.Wait(); err != nil {
		return nil, 0, 0, fmt.Errorf("apply: %w", err)
	}
	cancel()
	wg.Wait()
	for l, at := range printed {
		if s, ok := seen[l]; ok {
			lat = append(lat, at.Sub(s))
		}
	}
	if len(lat) == 0 {
		return nil, 0, 0, fmt.Errorf("no progress line was seen both in the status object and on stdout")
	}
	first = firstSeen.Sub(handed)
	boot, err = bootToAgent(sbDir)
	if err != nil {
		return nil, 0, 0, err
	}
	if out, err := lepton("destroy", "-auto-approve").CombinedOutput(); err != nil {
		return nil, 0, 0, fmt.Errorf("destroy: %v\n%s", err, out)
	}
	return lat, boot, first, nil
}

// poll reads the run's status object every 20 ms and reports each line
// with the time it was first seen.
func poll(ctx context.Context, dir, runID string, saw func(string, time.Time)) {
	var st *objstore.Store
	for ctx.Err() == nil {
		if st == nil {
			lin, err := lineage(dir)
			if err == nil {
				url, _ := remote.RootURL("aws", nil, lin)
				st, _ = objstore.Open(ctx, url, objstore.Options{Region: "us-east-1"})
			}
		}
		if st != nil {
			if b, err := runstore.ReadAll(ctx, st, runspec.StatusKey(runID, 0)); err == nil {
				var s runspec.Status
				if json.Unmarshal(b, &s) == nil {
					now := time.Now()
					for _, l := range s.Lines {
						saw(strings.TrimSpace(l), now)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lineage reads the state's lineage.
func lineage(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "lepton.state.json"))
	if err != nil {
		return "", err
	}
	var s struct {
		Lineage string `json:"lineage"`
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Lineage == "" {
		return "", fmt.Errorf("no lineage in the state: %v", err)
	}
	return s.Lineage, nil
}

// bootToAgent is, for the newest node, the time from its boot to its
// agent knowing the node's address (fetched, started, metadata asked).
func bootToAgent(sbDir string) (time.Duration, error) {
	files, _ := filepath.Glob(filepath.Join(sbDir, "nodes", "*", "node.json"))
	var started time.Time
	var dir string
	for _, f := range files {
		var n struct {
			Started time.Time `json:"started"`
		}
		b, _ := os.ReadFile(f)
		if json.Unmarshal(b, &n) == nil && n.Started.After(started) {
			started, dir = n.Started, filepath.Dir(f)
		}
	}
	log := filepath.Join(dir, "agent.log")
	b, err := os.ReadFile(log)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `msg="node address"`) {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", log, err)
		}
		return t.Sub(started), nil
	}
	return 0, fmt.Errorf("no \"node address\" line in %s", log)
}
