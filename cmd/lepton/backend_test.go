package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/leptonml/lepton/internal/state"
)

const s3Secret = "e2e-secret-never-printed"

// fakeS3 starts gofakes3 on loopback with a bucket "state"; the binary gets
// credentials from the environment only, as the SDK's default chain does.
func fakeS3(t *testing.T) string {
	t.Setenv("AWS_ACCESS_KEY_ID", "e2e")
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3Secret)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(srv.URL); o.UsePathStyle = true })
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("state")}); err != nil {
		t.Fatal(err)
	}
	return srv.URL
}

const s3Block = `
lepton {
  backend "s3" {
    bucket = "state"
    key    = "team/lepton.state.json"
  }
}
`

// TestS3Backend: two checkouts share an s3 backend; a second apply fails at
// once naming the first; a lock left by a killed apply is cleared by
// force-unlock; state pull/push check lineage and serial; credentials are
// never printed.
func TestS3Backend(t *testing.T) {
	url := fakeS3(t)
	a := newSlowProject(t, 60, 60*time.Millisecond)
	b := newSlowProject(t, 60, 60*time.Millisecond)
	var outputs strings.Builder
	run := func(dir string, code int, args ...string) result {
		t.Helper()
		r := lep(t, dir, args...)
		outputs.WriteString(r.all())
		if r.code != code {
			t.Fatalf("lepton %s: want exit %d, got\n%s", strings.Join(args, " "), code, r)
		}
		return r
	}
	for _, p := range []*slowProject{a, b} {
		write(t, p.dir, "backend.lep.hcl", s3Block)
		// Before init, a remote backend is refused rather than silently empty.
		r := run(p.dir, 1, "plan")
		contains(t, r.stderr, "Backend initialization required", "lepton init")
		r = run(p.dir, 0, "init", "-backend-config", "endpoint="+url)
		contains(t, r.stdout, `Successfully configured the backend "s3"`, "successfully initialized")
		fi, err := os.Stat(filepath.Join(p.dir, ".lepton", "backend.json"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf(".lepton/backend.json: %v %v", fi, err)
		}
		rec := string(fileBytes(t, filepath.Join(p.dir, ".lepton", "backend.json")))
		contains(t, rec, url, `"bucket": "state"`)
		lacks(t, rec, s3Secret)
	}

	// Two concurrent applies: the second fails at once, naming the holder.
	first := start(t, a.dir, "apply", "-auto-approve")
	select {
	case <-first.started:
	case <-first.done:
		out, errOut := first.output()
		t.Fatalf("the first apply ended early:\n%s\n%s", out, errOut)
	}
	t0 := time.Now()
	second := run(b.dir, 1, "apply", "-auto-approve")
	if d := time.Since(t0); d > 15*time.Second {
		t.Errorf("the second apply took %v to fail", d)
	}
	contains(t, second.stderr, "locked", state.Who(), `"apply"`, fmt.Sprintf("pid %d", first.cmd.Process.Pid), "s3://state/team/lepton.state.json")
	if code := first.wait(t); code != 0 {
		out, errOut := first.output()
		t.Fatalf("first apply: exit %d\n%s\n%s", code, out, errOut)
	}
	// The other checkout sees the state the first wrote.
	r := run(b.dir, 0, "plan")
	contains(t, r.stdout, "No changes.")
	if _, err := os.Stat(filepath.Join(b.dir, "lepton.state.json")); err == nil {
		t.Error("a local state file was written next to an s3 backend")
	}

	// An apply killed mid-way leaves its lock; force-unlock clears it.
	replace := []string{"apply", "-auto-approve"}
	for i := range 40 {
		replace = append(replace, fmt.Sprintf("-replace=dataset.d%d", i))
	}
	killed := start(t, a.dir, replace...)
	select {
	case <-killed.started:
	case <-killed.done:
		out, errOut := killed.output()
		t.Fatalf("the apply ended early:\n%s\n%s", out, errOut)
	}
	killed.cmd.Process.Signal(syscall.SIGKILL)
	killed.wait(t)
	r = run(b.dir, 1, "plan")
	contains(t, r.stderr, "locked", fmt.Sprintf("pid %d", killed.cmd.Process.Pid), "force-unlock")
	m := regexp.MustCompile(`ID: (\S+)`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no lock ID in\n%s", r.stderr)
	}
	run(b.dir, 1, "force-unlock", "not-"+m[1])
	r = run(b.dir, 0, "force-unlock", m[1])
	contains(t, r.stdout, "successfully unlocked")
	run(b.dir, 0, "plan")

	// state pull prints the shared state; push refuses an older serial and a
	// foreign lineage unless -force.
	// The killed apply may have deleted some of the datasets it was replacing
	// (destroy, then create) and not created them again yet: between 20 and
	// 60 resources are left.
	pulled := run(b.dir, 0, "state", "pull").stdout
	st, err := state.Parse([]byte(pulled))
	if err != nil || len(st.Resources) < 20 || len(st.Resources) > 60 {
		t.Fatalf("state pull: %v\n%s", err, pulled)
	}
	old := st.Clone()
	old.Serial--
	writeState(t, b.dir, "old.json", old)
	r = run(b.dir, 1, "state", "push", "old.json")
	contains(t, r.stderr, "lower than the current")
	foreign := st.Clone()
	foreign.Lineage = "00000000-0000-4000-8000-000000000000"
	writeState(t, b.dir, "foreign.json", foreign)
	r = run(b.dir, 1, "state", "push", "foreign.json")
	contains(t, r.stderr, "lineage")
	run(b.dir, 0, "state", "push", "-force", "foreign.json")
	pulled = run(a.dir, 0, "state", "pull").stdout
	if st2, err := state.Parse([]byte(pulled)); err != nil || st2.Lineage != foreign.Lineage || st2.Serial <= st.Serial {
		t.Fatalf("after push -force the other checkout pulls %v (%v)", st2, err)
	}
	lacks(t, outputs.String(), s3Secret)
}

// TestMigrateState: a local state moves to s3 with init -migrate-state, which
// asks first (or needs -force-copy without input); a changed block needs init.
func TestMigrateState(t *testing.T) {
	url := fakeS3(t)
	dir := project(t, "basic")
	ok(t, dir, "apply", "-auto-approve")
	local := readState(t, dir)
	write(t, dir, "backend.lep.hcl", s3Block)
	r := exits(t, 1, dir, "init", "-backend-config", "endpoint="+url)
	contains(t, r.stderr, "Backend configuration changed", "-migrate-state", "-reconfigure")
	r = exits(t, 1, dir, "init", "-input=false", "-migrate-state", "-backend-config", "endpoint="+url)
	contains(t, r.stderr, "-force-copy")
	// Asked, and refused: nothing is copied or recorded.
	r = runEnv(t, dir, nil, "no\n", "init", "-migrate-state", "-backend-config", "endpoint="+url)
	if r.code != 1 || !strings.Contains(r.stdout, "Do you want to copy the existing state") {
		t.Fatalf("init -migrate-state answered no:\n%s", r)
	}
	// A file of settings works like KEY=VALUE.
	write(t, dir, "s3.hcl", "endpoint = \""+url+"\"\n")
	r = runEnv(t, dir, nil, "yes\n", "init", "-migrate-state", "-backend-config=s3.hcl")
	if r.code != 0 || !strings.Contains(r.stdout, "Successfully copied the state") {
		t.Fatalf("init -migrate-state answered yes:\n%s", r)
	}
	pulled := ok(t, dir, "state", "pull").stdout
	st, err := state.Parse([]byte(pulled))
	if err != nil || st.Lineage != local.Lineage || len(st.Resources) != len(local.Resources) {
		t.Fatalf("migrated state: %v\n%s", err, pulled)
	}
	contains(t, ok(t, dir, "plan").stdout, "No changes.")
	// The block changes: commands ask for init again.
	edit(t, dir, "backend.lep.hcl", `key    = "team/lepton.state.json"`, `key    = "other/lepton.state.json"`)
	r = exits(t, 1, dir, "plan")
	contains(t, r.stderr, "Backend configuration changed", "lepton init")
	r = exits(t, 0, dir, "init", "-migrate-state", "-force-copy", "-backend-config=s3.hcl")
	contains(t, r.stdout, "Successfully copied the state")
	contains(t, ok(t, dir, "plan").stdout, "No changes.")
}

func writeState(t *testing.T, dir, name string, s *state.State) {
	t.Helper()
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, name, string(b))
}

// TestRemoteBackends: every remote backend through the binary — init with
// -backend-config, apply, and a second checkout that sees the same state.
func TestRemoteBackends(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (block string, config []string)
	}{
		{"s3", func(t *testing.T) (string, []string) {
			return s3Block, []string{"endpoint=" + fakeS3(t)}
		}},
		{"gcs", func(t *testing.T) (string, []string) {
			srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Stop)
			srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "state"})
			return "lepton {\n  backend \"gcs\" {\n    bucket = \"state\"\n    prefix = \"team\"\n  }\n}\n",
				[]string{"storage_custom_endpoint=" + srv.URL() + "/storage/v1/"}
		}},
		{"azurerm", func(t *testing.T) (string, []string) {
			cs := serviceEnv(t, "LEPTON_TEST_AZURITE_CONNECTION_STRING", ".ci/setup-azurite.sh")
			fields := map[string]string{}
			for _, kv := range strings.Split(cs, ";") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					fields[k] = v
				}
			}
			c, err := azblob.NewClientFromConnectionString(cs, nil)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("lepton-e2e-%d", time.Now().UnixNano())
			if _, err := c.CreateContainer(context.Background(), name, nil); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.DeleteContainer(context.Background(), name, nil) })
			t.Setenv("ARM_ACCESS_KEY", fields["AccountKey"])
			return fmt.Sprintf("lepton {\n  backend \"azurerm\" {\n    storage_account_name = %q\n    container_name = %q\n    key = \"team/lepton.state.json\"\n  }\n}\n", fields["AccountName"], name),
				[]string{"endpoint=" + fields["BlobEndpoint"]}
		}},
		{"pg", func(t *testing.T) (string, []string) {
			dsn := serviceEnv(t, "LEPTON_TEST_POSTGRES_DSN", ".ci/setup-postgres.sh")
			return fmt.Sprintf("lepton {\n  backend \"pg\" {\n    schema_name = \"lepton_e2e\"\n    name = \"e2e-%d\"\n  }\n}\n", time.Now().UnixNano()),
				[]string{"conn_str=" + dsn}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			block, config := tc.setup(t)
			var init []string
			for _, c := range config {
				init = append(init, "-backend-config", c)
			}
			a, b := project(t, "basic"), project(t, "basic")
			for _, dir := range []string{a, b} {
				write(t, dir, "backend.lep.hcl", block)
				r := ok(t, dir, append([]string{"init"}, init...)...)
				contains(t, r.stdout, fmt.Sprintf("Successfully configured the backend %q", tc.name))
			}
			ok(t, a, "apply", "-auto-approve")
			contains(t, ok(t, b, "plan").stdout, "No changes.")
			if _, err := os.Stat(filepath.Join(a, "lepton.state.json")); err == nil {
				t.Error("a local state file was written")
			}
			r := exits(t, 1, b, "force-unlock", "0f3a")
			contains(t, r.stderr, "not locked")
			contains(t, ok(t, b, "state", "list").stdout, "dataset.a")
			// init again without the flags keeps the recorded settings.
			ok(t, b, "init")
			contains(t, ok(t, b, "plan").stdout, "No changes.")
		})
	}
}

// serviceEnv returns a service's variable from its .ci/setup script; without
// it the test fails under CI and is skipped elsewhere.
func serviceEnv(t *testing.T, name, script string) string {
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set; run eval \"$(%s)\"", name, script)
		}
		t.Skipf("%s is not set (eval \"$(%s)\" to run this test)", name, script)
	}
	return v
}
