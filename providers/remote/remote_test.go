package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/leptonml/lepton/runtime/runstore"
)

// memStorage is a run storage in memory whose "signed URLs" name the key.
type memStorage struct{ *runstore.Memory }

func (m memStorage) Sign(_ context.Context, key, method string, ttl time.Duration) (runspec.Object, error) {
	return runspec.Object{Key: key, URL: "mem://" + method + "/" + key}, nil
}

func newClient(t *testing.T) *Client {
	t.Helper()
	agent := filepath.Join(t.TempDir(), "lepton-agent")
	if err := os.WriteFile(agent, []byte("#!/bin/sh\necho agent\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(AgentEnv, agent)
	r := NewRuns(func(ctx context.Context, url string, block map[string]string, lineage string, create bool) (Storage, error) {
		return memStorage{runstore.NewMemory()}, nil
	})
	c, err := r.Open(context.Background(), "aws", map[string]string{}, "0b1c2d3e-aaaa-bbbb-cccc-000000000000", true)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRootURL(t *testing.T) {
	const lin = "0b1c2d3e-aaaa-bbbb-cccc-000000000000"
	t.Setenv("AZURE_STORAGE_ACCOUNT", "")
	for _, tc := range []struct {
		cloud string
		block map[string]string
		want  string
		err   string
	}{
		{"aws", nil, "s3://lepton-" + lin, ""},
		{"gcp", nil, "gs://lepton-" + lin, ""},
		{"aws", map[string]string{"storage": "s3://mine/ml/"}, "s3://mine/ml/" + lin, ""},
		{"azure", map[string]string{"storage_account": "acct"}, "azblob://acct/lepton-" + lin, ""},
		{"azure", nil, "", "AZURE_STORAGE_ACCOUNT"},
		{"oracle", nil, "", "cannot run"},
	} {
		got, err := RootURL(tc.cloud, tc.block, lin)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %v: err %v, want %q", tc.cloud, tc.block, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %v: %q, %v; want %q", tc.cloud, tc.block, got, err, tc.want)
		}
	}
}

func TestUserDataAndInbox(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ud, err := c.UserData(ctx, "aws", `cluster.x["a"]`, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#!/bin/bash", "mem://GET/agent/lepton-agent-", "sha256sum -c", `"cluster":"cluster.x-a"`, `"node":1`, "mem://PUT/clusters/cluster.x-a/node-1/heartbeat.json"} {
		if !strings.Contains(ud, want) {
			t.Errorf("user data lacks %q:\n%s", want, ud)
		}
	}
	// The agent is uploaded once, and an empty inbox exists for the node.
	objs, _ := c.Store.List(ctx, "agent/")
	if len(objs) != 1 {
		t.Fatalf("agent objects: %v", objs)
	}
	in, err := c.ReadInbox(ctx, "cluster.x-a", 1)
	if err != nil || len(in.Runs) != 0 {
		t.Fatalf("inbox %+v, %v", in, err)
	}
	run := runspec.Run{ID: "r1", Kind: runspec.KindEndpoint, Address: "endpoint.e", Node: 1}
	if err := c.AddRun(ctx, "cluster.x-a", run); err != nil {
		t.Fatal(err)
	}
	// A run of the same address replaces it (an endpoint's new version).
	run.ID = "r2"
	if err := c.AddRun(ctx, "cluster.x-a", run); err != nil {
		t.Fatal(err)
	}
	in, _ = c.ReadInbox(ctx, "cluster.x-a", 1)
	if len(in.Runs) != 1 || in.Runs[0].ID != "r2" || in.Generation != 2 || in.Renew == nil {
		t.Fatalf("inbox after two adds: %+v", in)
	}
	if ok, _ := c.InInbox(ctx, "cluster.x-a", 1, "r2"); !ok {
		t.Fatal("r2 not in inbox")
	}
	if err := c.RemoveRun(ctx, "cluster.x-a", 1, "r2"); err != nil {
		t.Fatal(err)
	}
	in, _ = c.ReadInbox(ctx, "cluster.x-a", 1)
	if len(in.Runs) != 0 {
		t.Fatalf("inbox after remove: %+v", in)
	}
	// The last cluster's deletion removes every object of the state.
	runstore.PutBytes(ctx, c.Store, runspec.DatasetKey("sha256:00"), []byte("x"))
	if err := c.DeleteCluster(ctx, `cluster.x["a"]`); err != nil {
		t.Fatal(err)
	}
	if left, _ := c.Store.List(ctx, ""); len(left) != 0 {
		t.Fatalf("left after the last cluster: %v", left)
	}
}

func putStatus(t *testing.T, c *Client, st runspec.Status) {
	t.Helper()
	b, _ := json.Marshal(st)
	if err := runstore.PutBytes(context.Background(), c.Store, runspec.StatusKey(st.Run, st.Node), b); err != nil {
		t.Fatal(err)
	}
}

func TestWatch(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	now := time.Now()
	for _, tc := range []struct {
		name    string
		sts     []runspec.Status
		want    string // progress printed
		wantErr string
	}{
		{"succeeded", []runspec.Status{
			{Run: "r", State: runspec.StateRunning, Updated: now, Lines: []string{"epoch 1/2"}, LineSeq: 1},
			{Run: "r", State: runspec.StateSucceeded, Updated: now, Lines: []string{"epoch 1/2", "epoch 2/2"}, LineSeq: 2},
		}, "epoch 1/2\nepoch 2/2\n", ""},
		{"failed", []runspec.Status{
			{Run: "r", State: runspec.StateFailed, Host: "10.0.0.2", Updated: now, Error: "out of memory"},
		}, "", "failed on node 0 (10.0.0.2): out of memory"},
		{"stale", []runspec.Status{
			{Run: "r", State: runspec.StateRunning, Updated: now.Add(-time.Minute)},
		}, "", "stopped reporting"},
		{"interrupted", []runspec.Status{
			{Run: "r", State: runspec.StateFailed, Host: "10.0.0.3", Updated: now, Error: "interrupted: SIGTERM", Interrupted: true},
		}, "", "was interrupted on node 0 (10.0.0.3)"},
		{"corrupt", nil, "", "not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runstore.DeletePrefix(ctx, c.Store, "runs/")
			if tc.sts == nil {
				runstore.PutBytes(ctx, c.Store, runspec.StatusKey("r", 0), []byte("{torn"))
			}
			var out bytes.Buffer
			w := Watch{Client: c, Cluster: "cluster.x", Run: "r", Nodes: []int{0}, Progress: &out, Every: time.Millisecond, CorruptGrace: 50 * time.Millisecond}
			done := make(chan error, 1)
			for i, st := range tc.sts {
				putStatus(t, c, st)
				if i < len(tc.sts)-1 {
					// Let the watcher see the intermediate status.
					time.Sleep(20 * time.Millisecond)
				}
			}
			go func() { _, err := w.Wait(ctx); done <- err }()
			err := <-done
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if tc.want != "" && out.String() != tc.want && !strings.HasSuffix(tc.want, out.String()) {
				t.Fatalf("progress %q, want %q", out.String(), tc.want)
			}
			// A lost node (not a failure of the run itself) is typed, so
			// a run with nodes of its own is restarted elsewhere.
			var lost *NodeLostError
			if isLost := errors.As(err, &lost); isLost != (tc.name == "stale" || tc.name == "interrupted") {
				t.Errorf("%v: NodeLostError %v", err, isLost)
			}
			if tc.name == "corrupt" && !errors.As(err, new(*runspec.DecodeError)) {
				t.Errorf("a corrupt status: %T %v", err, err)
			}
		})
	}
}

// A status torn for a moment (the agent rewrites it) is waited out.
func TestWatchCorruptThenRepaired(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	runstore.PutBytes(ctx, c.Store, runspec.StatusKey("r2", 0), []byte("{torn"))
	go func() {
		time.Sleep(30 * time.Millisecond)
		putStatus(t, c, runspec.Status{Run: "r2", State: runspec.StateSucceeded, Updated: time.Now()})
	}()
	w := Watch{Client: c, Cluster: "cluster.x", Run: "r2", Nodes: []int{0}, Every: time.Millisecond, CorruptGrace: 5 * time.Second}
	sts, err := w.Wait(ctx)
	if err != nil || sts[0].State != runspec.StateSucceeded {
		t.Fatalf("%v %+v", err, sts)
	}
}
