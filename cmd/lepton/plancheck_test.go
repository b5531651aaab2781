package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// planChecksProject is the basic project with a trained iris model
// (training.iris), applied.
func planChecksProject(t *testing.T) (dir, applyOut string) {
	t.Helper()
	dir = project(t, "basic")
	write(t, dir, "iris.lep.hcl", `dataset "iris" {
  source {
    builtin = "iris"
  }
  label = "label"
}

training "iris" {
  dataset   = dataset.iris
  objective = "classification"
  model {
    kind   = "mlp"
    hidden = [8]
  }
  epochs = 1
}
`)
	r := ok(t, dir, "apply", "-auto-approve")
	return dir, r.stdout
}

// TestPlanCatchesOffline: each mistake a plan can know about without
// applying anything is an error of plan and apply (exit 1) at the argument's
// FILE:LINE:COL, saying what is wrong; nothing is applied and the state file
// stays byte for byte as it was.
func TestPlanCatchesOffline(t *testing.T) {
	applied, _ := planChecksProject(t)

	// A port this machine already uses.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	// A CSV over HTTP on loopback.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		fmt.Fprint(w, "a,b,outcome\n1,2,yes\n3,4,no\n")
	}))
	defer srv.Close()

	cases := []struct {
		name  string
		files map[string]string
		setup func(t *testing.T, dir string)
		want  []string // in stderr
	}{
		{
			name:  "label missing from a CSV file",
			files: map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  source {\n    file = \"data/t.csv\"\n  }\n  label = \"target\"\n}\n"},
			want:  []string{"bad.lep.hcl:5:11", `label "target"`, `no column "target"`, "[x, y]"},
		},
		{
			name:  "feature missing from a CSV file",
			files: map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  source {\n    file = \"data/t.csv\"\n  }\n  label    = \"y\"\n  features = [\"x\", \"xx\"]\n}\n"},
			want:  []string{"bad.lep.hcl:6:14", `features: file data/t.csv has no column "xx"`},
		},
		{
			name:  "label missing from a URL's CSV",
			files: map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  source {\n    url = \"" + srv.URL + "/d.csv\"\n  }\n  label = \"outcom\"\n}\n"},
			want:  []string{"bad.lep.hcl:5:11", `no column "outcom"`, `did you mean "outcome"?`, "[a, b, outcome]"},
		},
		{
			name: "label missing from a SQL query's columns",
			setup: func(t *testing.T, dir string) {
				db, err := sql.Open("sqlite", filepath.Join(dir, "data", "d.db"))
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if _, err := db.Exec("CREATE TABLE t (a REAL, b REAL, label TEXT); INSERT INTO t VALUES (1, 2, 'p'), (3, 4, 'q');"); err != nil {
					t.Fatal(err)
				}
			},
			files: map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  source {\n    sql {\n      driver = \"sqlite\"\n      dsn    = \"data/d.db\"\n      query  = \"SELECT a, b FROM t;\"\n    }\n  }\n  label = \"label\"\n}\n"},
			want:  []string{"bad.lep.hcl:9:11", `no column "label"`, "[a, b]"},
		},
		{
			name:  "label that a log pattern does not name",
			files: map[string]string{"data/app.log": "GET 200 12\nPOST 500 30\n", "bad.lep.hcl": "dataset \"x\" {\n  source {\n    log {\n      path    = \"data/app.log\"\n      pattern = \"(?P<method>\\\\w+) (?P<code>\\\\d+) (?P<ms>\\\\d+)\"\n    }\n  }\n  label = \"status\"\n}\n"},
			want:  []string{"bad.lep.hcl:8:11", `no column "status"`, "[method, code, ms]"},
		},
		{
			name:  "inline dataset whose only column is the label",
			files: map[string]string{"bad.lep.hcl": "dataset \"x\" {\n  source {\n    inline = { y = [0, 1, 0] }\n  }\n  label = \"y\"\n}\n"},
			want:  []string{"bad.lep.hcl:5:11", "no feature columns", `"y", is the label`},
		},
		{
			name:  "malformed gpu on this machine",
			files: map[string]string{"bad.lep.hcl": "cluster \"c\" {\n  clouds = [\"local\"]\n  gpu    = \"A100:-2\"\n}\n"},
			want:  []string{"bad.lep.hcl:3:12", `gpu "A100:-2"`, "count -2"},
		},
		{
			name:  "unknown gpu on this machine",
			files: map[string]string{"bad.lep.hcl": "cluster \"c\" {\n  clouds = [\"local\"]\n  gpu    = \"Z9000:8\"\n}\n"},
			want:  []string{"bad.lep.hcl:3:12", `unknown GPU "Z9000"`, "A100", "H100"},
		},
		{
			name:  "misspelt gpu on a cloud",
			files: map[string]string{"bad.lep.hcl": "cluster \"c\" {\n  clouds = [\"aws\"]\n  gpu    = \"A1000:8\"\n}\n\nprovider \"aws\" {}\n"},
			want:  []string{"bad.lep.hcl:3:12", `unknown GPU "A1000"`, `did you mean "A100"?`},
		},
		{
			name:  "instance type the catalog lacks",
			files: map[string]string{"bad.lep.hcl": "cluster \"c\" {\n  clouds        = [\"aws\"]\n  instance_type = \"p4d.24xlarg\"\n}\n\nprovider \"aws\" {}\n"},
			want:  []string{"bad.lep.hcl:3:19", `instance_type "p4d.24xlarg"`, `did you mean "p4d.24xlarge"?`},
		},
		{
			name:  "cnn on rows that are not images",
			files: map[string]string{"bad.lep.hcl": "dataset \"i2\" {\n  source {\n    builtin = \"iris\"\n  }\n}\n\ntraining \"t\" {\n  dataset = dataset.i2\n  model {\n    kind = \"cnn\"\n  }\n}\n"},
			want:  []string{"bad.lep.hcl:10:12", `model kind "cnn" needs image rows`, "4 plain feature columns"},
		},
		{
			name:  "base model of another input width",
			files: map[string]string{"bad.lep.hcl": "dataset \"m\" {\n  source {\n    builtin = \"mnist\"\n  }\n}\n\ntraining \"t\" {\n  dataset    = dataset.m\n  base_model = training.iris.model\n  model {\n    kind   = \"mlp\"\n    hidden = [8]\n  }\n}\n"},
			want:  []string{"bad.lep.hcl:9:16", "takes 4 input features", "gives 784"},
		},
		{
			name:  "freeze_layers beyond the base model's layers",
			files: map[string]string{"bad.lep.hcl": "dataset \"i2\" {\n  source {\n    builtin = \"iris\"\n  }\n}\n\ntraining \"t\" {\n  dataset       = dataset.i2\n  base_model    = training.iris.model\n  freeze_layers = 5\n  model {\n    kind   = \"mlp\"\n    hidden = [8]\n  }\n}\n"},
			want:  []string{"bad.lep.hcl:10:19", "freeze_layers = 5", "2 layers with weights"},
		},
		{
			name:  "batch inference over a dataset in state without the model's columns",
			files: map[string]string{"bad.lep.hcl": "batch_inference \"b\" {\n  model   = training.iris.model\n  dataset = dataset.f\n  output  = \"out.csv\"\n}\n"},
			want:  []string{"bad.lep.hcl:3:13", "dataset.f has the columns [x, y]", "sepal_length"},
		},
		{
			name:  "batch inference over a new dataset without the model's columns",
			files: map[string]string{"bad.lep.hcl": "dataset \"n\" {\n  source {\n    file = \"data/t.csv\"\n  }\n}\n\nbatch_inference \"b\" {\n  model   = training.iris.model\n  dataset = dataset.n\n  output  = \"out.csv\"\n}\n"},
			want:  []string{"bad.lep.hcl:9:13", "dataset.n has the columns [x, y]", "missing [sepal_length"},
		},
		{
			name:  "batch inference to a malformed object URL",
			files: map[string]string{"bad.lep.hcl": "batch_inference \"b\" {\n  model   = training.iris.model\n  dataset = dataset.f\n  output  = \"s3://Bad_Bucket/preds.csv\"\n}\n"},
			want:  []string{"bad.lep.hcl:4:13", `"Bad_Bucket" is not a bucket name`, "s3://BUCKET/KEY"},
		},
		{
			name:  "endpoint port in use",
			files: map[string]string{"bad.lep.hcl": fmt.Sprintf("endpoint \"e\" {\n  model = training.iris.model\n  port  = %d\n}\n", busyPort)},
			want:  []string{"bad.lep.hcl:3:11", fmt.Sprintf("port %d is already in use", busyPort)},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, applied)
			if c.setup != nil {
				c.setup(t, dir)
			}
			for name, content := range c.files {
				write(t, dir, name, content)
			}
			statePath := filepath.Join(dir, "lepton.state.json")
			before := fileBytes(t, statePath)
			for _, args := range [][]string{{"plan"}, {"apply", "-auto-approve"}} {
				r := lep(t, dir, args...)
				if r.code != 1 {
					t.Errorf("lepton %s: want exit 1, got\n%s", strings.Join(args, " "), r)
					continue
				}
				for _, w := range append([]string{"Error"}, c.want...) {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("lepton %s: stderr lacks %q:\n%s", strings.Join(args, " "), w, r.stderr)
					}
				}
				if strings.Contains(r.all(), "panic") || strings.Contains(r.all(), "Creating...") {
					t.Errorf("lepton %s crashed or applied something:\n%s", strings.Join(args, " "), r)
				}
				if string(fileBytes(t, statePath)) != string(before) {
					t.Fatalf("lepton %s changed the state file", strings.Join(args, " "))
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "out.csv")); err == nil {
				t.Error("batch inference wrote its output")
			}
		})
	}

	// The same names that fail above plan when right.
	t.Run("right names plan", func(t *testing.T) {
		dir := copyDir(t, applied)
		write(t, dir, "good.lep.hcl", "dataset \"x\" {\n  source {\n    file = \"data/t.csv\"\n  }\n  label = \"y\"\n}\n\ncluster \"c\" {\n  clouds = [\"local\"]\n  gpu    = \"a100:2\"\n}\n")
		r := ok(t, dir, "plan")
		contains(t, r.stdout, "dataset.x will be created", "cluster.c will be created")
	})
}

// TestOffersUnknownGPU: `lepton offers -gpu Z9000:8` says the GPU is unknown.
func TestOffersUnknownGPU(t *testing.T) {
	dir := t.TempDir()
	r := exits(t, 1, dir, "offers", "-gpu", "Z9000:8")
	contains(t, r.stderr, `unknown GPU "Z9000"`, "A100")
	lacks(t, r.stdout, "No GPU offers match.")
	r = exits(t, 1, dir, "offers", "-gpu", "A1000")
	contains(t, r.stderr, `did you mean "A100"?`)
	r = ok(t, dir, "offers", "-gpu", "H100:3")
	contains(t, r.stdout, "No GPU offers match.")
}

// TestProgressOrder: a dependent's "Creating..." comes after its
// dependency's "Creation complete".
func TestProgressOrder(t *testing.T) {
	_, out := planChecksProject(t)
	lines := strings.Split(out, "\n")
	at := func(s string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, s) {
				return i
			}
		}
		t.Fatalf("no line %q in\n%s", s, out)
		return -1
	}
	if at("dataset.iris: Creation complete") > at("training.iris: Creating...") {
		t.Errorf("training.iris started before dataset.iris was complete:\n%s", out)
	}
}

// TestEndpointPortAndKilledServer: an endpoint on a fixed port plans "No
// changes" while its own server holds the port; when the server is killed
// outside lepton, the destroy plan says it has been deleted, and destroy
// leaves the state empty.
func TestEndpointPortAndKilledServer(t *testing.T) {
	dir, _ := planChecksProject(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	write(t, dir, "ep.lep.hcl", fmt.Sprintf("endpoint \"e\" {\n  model = training.iris.model\n  port  = %d\n}\n", port))
	ok(t, dir, "apply", "-auto-approve")
	var pid int
	for _, res := range readState(t, dir).Resources {
		if res.Address == "endpoint.e" {
			var attrs struct {
				Pid float64 `json:"pid"`
			}
			if err := json.Unmarshal(res.Attributes, &attrs); err != nil {
				t.Fatal(err)
			}
			pid = int(attrs.Pid)
		}
	}
	if pid <= 0 {
		t.Fatal("no endpoint pid in state")
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	r := ok(t, dir, "plan", "-detailed-exitcode")
	contains(t, r.stdout, "No changes.")

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	r = ok(t, dir, "plan", "-destroy")
	contains(t, r.stdout, "endpoint.e has been deleted outside of lepton")
	r = ok(t, dir, "destroy", "-auto-approve")
	contains(t, r.stdout, "Destroy complete!")
	if st := readState(t, dir); len(st.Resources) != 0 {
		t.Fatalf("state after destroy holds %v", addresses(st))
	}
	r = ok(t, dir, "plan", "-destroy")
	contains(t, r.stdout, "No changes.")
	r = ok(t, dir, "state", "list")
	if strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("state list after destroy: %q", r.stdout)
	}
}

// TestShowBuiltin: `lepton show builtin.NAME` gives the column names a
// configuration refers to, before anything is applied.
func TestShowBuiltin(t *testing.T) {
	dir := t.TempDir()
	r := ok(t, dir, "show", "builtin.iris")
	contains(t, r.stdout, "sepal_length, sepal_width, petal_length, petal_width", "label:    label (3 classes: setosa, versicolor, virginica)", "rows:     150")
	r = ok(t, dir, "show", "builtin.mnist")
	contains(t, r.stdout, "784 columns: pixel0, pixel1, pixel2, … pixel783", "[1 28 28]", "label (10 classes: 0, 1, 2", "60000")
	r = exits(t, 1, dir, "show", "builtin.nope")
	contains(t, r.stderr, "iris", "mnist")
}
