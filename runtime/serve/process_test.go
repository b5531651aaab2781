package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/leptonml/lepton/runtime/serve/testmodel"
)

// The test binary doubles as the server binary: Start re-executes it with
// this variable set and TestMain runs Main instead of the tests.
const childEnv = "LEPTON_SERVE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if err := Main(context.Background(), os.Args[1:], testLoader); err != nil {
			fmt.Fprintln(os.Stderr, "internal-serve:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testLoader understands "mnist:SEED", "gate:DIR" (an MNIST model whose
// Predict creates DIR/entered and waits for DIR/release) and "hang" (a
// load that never finishes).
func testLoader(ctx context.Context, src ModelSource) (Model, error) {
	kind, arg, _ := strings.Cut(src.Artifact, ":")
	switch kind {
	case "hang":
		<-ctx.Done()
		return nil, ctx.Err()
	case "mnist":
		seed, err := strconv.ParseUint(arg, 10, 64)
		if err != nil {
			return nil, err
		}
		return testmodel.MNIST(seed), nil
	case "gate":
		return fileGate{Model: testmodel.MNIST(1), dir: arg}, nil
	}
	return nil, fmt.Errorf("no such test model %q", src.Artifact)
}

type fileGate struct {
	Model
	dir string
}

func (g fileGate) Predict(x []float32, n int) ([]float32, error) {
	os.WriteFile(filepath.Join(g.dir, "entered"), nil, 0o644)
	for {
		if _, err := os.Stat(filepath.Join(g.dir, "release")); err == nil {
			return g.Model.Predict(x, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startChild(t *testing.T, spec ProcessSpec) (Process, string) {
	t.Helper()
	dir := t.TempDir()
	p, err := Start(context.Background(), StartSpec{
		Binary: os.Args[0], Env: []string{childEnv + "=1"}, Dir: dir, Spec: spec, ReadyTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Stop(context.Background(), p, 5*time.Second) })
	return p, dir
}

func TestProcessLifecycle(t *testing.T) {
	p, dir := startChild(t, ProcessSpec{Name: "digits", Token: testToken, Workers: 1,
		Model: ModelSource{Artifact: "mnist:1", Digest: "sha256:one"}})
	if !Alive(p) || p.Port == 0 || p.URL != "http://127.0.0.1:"+strconv.Itoa(p.Port) {
		t.Fatalf("process %+v", p)
	}
	if fi, err := os.Stat(p.SpecPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("spec file holds the token and must be 0600: %v %v", fi.Mode(), err)
	}
	st := Check(context.Background(), p)
	if !st.Running || !st.Ready || st.Version != "sha256:one" || st.Workers != 1 {
		t.Fatalf("status %+v", st)
	}
	body := mustJSON(map[string]any{"instances": [][]float32{row(1)}})
	if code, resp := do(t, "POST", p.URL+"/v1/models/digits:predict", testToken, body); code != 200 {
		t.Fatalf("predict: %d %v", code, resp)
	}
	v2 := `{"id":"1","inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":` + mustJSON(row(2)) + `}]}`
	if code, resp := do(t, "POST", p.URL+"/v2/models/digits/infer", testToken, v2); code != 200 || resp["id"] != "1" || len(resp["outputs"].([]any)) != 2 {
		t.Fatalf("v2 infer: %d %v", code, resp)
	}

	// A model and replica change is applied in place.
	spec := ProcessSpec{Name: "digits", Token: testToken, Workers: 3, MaxBatchSize: 32,
		Model: ModelSource{Artifact: "mnist:2", Digest: "sha256:two"}}
	if err := Update(context.Background(), p, spec); err != nil {
		t.Fatal(err)
	}
	st = Check(context.Background(), p)
	if st.Version != "sha256:two" || st.Workers != 3 || st.MaxBatchSize != 32 {
		t.Fatalf("after update: %+v", st)
	}
	// A model that cannot load leaves the old one serving.
	bad := spec
	bad.Model = ModelSource{Artifact: "nope", Digest: "sha256:bad"}
	if err := Update(context.Background(), p, bad); err == nil || !strings.Contains(err.Error(), "no such test model") {
		t.Fatalf("bad update: %v", err)
	}
	if st = Check(context.Background(), p); !st.Ready || st.Version != "sha256:two" {
		t.Fatalf("after failed update: %+v", st)
	}
	// A port change needs a new process.
	moved := spec
	moved.Port = p.Port + 1
	if err := Update(context.Background(), p, moved); !errors.Is(err, ErrNeedsReplace) {
		t.Fatalf("port change: %v", err)
	}
	// Turning auth off, with default workers, is applied in place.
	open := spec
	open.Token, open.Workers = "", 0
	if err := Update(context.Background(), p, open); err != nil {
		t.Fatal(err)
	}
	if code, resp := do(t, "POST", p.URL+"/v1/models/digits:predict", "", body); code != 200 {
		t.Fatalf("predict without token after auth off: %d %v", code, resp)
	}
	if st = Check(context.Background(), p); st.Workers != runtime.GOMAXPROCS(0) {
		t.Fatalf("workers 0 should mean GOMAXPROCS: %+v", st)
	}

	if err := Stop(context.Background(), p, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if Alive(p) {
		t.Fatal("alive after Stop")
	}
	if st := Check(context.Background(), p); st.Running || st.Ready {
		t.Fatalf("status after stop %+v", st)
	}
	if _, err := os.Stat(p.ReadyPath); !os.IsNotExist(err) {
		t.Errorf("ready file left behind: %v", err)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
	for _, want := range []string{"starting", "reloaded", "reload failed", "draining", "stopped"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// Stopping a process that is gone is fine.
	if err := Stop(context.Background(), p, time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestProcessStopDrains stops a server while a request is inside Predict;
// the request must still get its answer.
func TestProcessStopDrains(t *testing.T) {
	gate := t.TempDir()
	p, _ := startChild(t, ProcessSpec{Name: "digits", Model: ModelSource{Artifact: "gate:" + gate, Digest: "g"}})
	got := make(chan int, 1)
	go func() {
		resp, err := http.Post(p.URL+"/v1/models/digits:predict", "application/json", strings.NewReader(mustJSON(map[string]any{"instances": [][]float32{row(1)}})))
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	for {
		if _, err := os.Stat(filepath.Join(gate, "entered")); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- Stop(context.Background(), p, 20*time.Second) }()
	// Once draining, the listener is closed: wait for that before releasing.
	for Health(context.Background(), p.URL) == nil {
		time.Sleep(5 * time.Millisecond)
	}
	os.WriteFile(filepath.Join(gate, "release"), nil, 0o644)
	if code := <-got; code != 200 {
		t.Fatalf("in-flight request got %d while stopping", code)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

func TestProcessKilledOutsideIsNotAlive(t *testing.T) {
	p, _ := startChild(t, ProcessSpec{Name: "digits", Model: ModelSource{Artifact: "mnist:1"}})
	proc, _ := os.FindProcess(p.Pid)
	proc.Kill()
	for Alive(p) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := Check(context.Background(), p); st.Running || st.Ready || !strings.Contains(st.Detail, "not running") {
		t.Fatalf("status %+v", st)
	}
	// A pid now belonging to another program is not ours.
	if Alive(Process{Pid: os.Getpid(), SpecPath: "/nonexistent/spec.json"}) {
		t.Fatal("foreign pid reported alive")
	}
}

func TestStartReportsLoadFailure(t *testing.T) {
	_, err := Start(context.Background(), StartSpec{
		Binary: os.Args[0], Env: []string{childEnv + "=1"}, Dir: t.TempDir(),
		Spec: ProcessSpec{Name: "digits", Model: ModelSource{Artifact: "missing-model"}},
	})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), `no such test model "missing-model"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestUpdateUnderLoad applies model and replica updates to a detached
// process while clients keep calling it; no request may fail.
func TestUpdateUnderLoad(t *testing.T) {
	p, _ := startChild(t, ProcessSpec{Name: "digits", Token: testToken, Workers: 1, Model: ModelSource{Artifact: "mnist:1", Digest: "v1"}})
	body := mustJSON(map[string]any{"instances": [][]float32{row(1)}})
	var stop atomic.Bool
	var failures, ok atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				req, _ := http.NewRequest("POST", p.URL+"/v1/models/digits:predict", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for i := range 6 {
		spec := ProcessSpec{Name: "digits", Token: testToken, Workers: 1 + i%3,
			Model: ModelSource{Artifact: fmt.Sprintf("mnist:%d", i+2), Digest: fmt.Sprintf("v%d", i+2)}}
		if err := Update(context.Background(), p, spec); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d requests failed during updates (first: %v)", f, firstErr.Load())
	}
	if ok.Load() == 0 {
		t.Fatal("no request completed")
	}
	if st := Check(context.Background(), p); st.Version != "v7" || st.Workers != 3 {
		t.Fatalf("final status %+v", st)
	}
}

func TestStartTimesOutAndKills(t *testing.T) {
	dir := t.TempDir()
	_, err := Start(context.Background(), StartSpec{
		Binary: os.Args[0], Env: []string{childEnv + "=1"}, Dir: dir, ReadyTimeout: 300 * time.Millisecond,
		Spec: ProcessSpec{Name: "digits", Model: ModelSource{Artifact: "hang"}},
	})
	if err == nil || !strings.Contains(err.Error(), "was not ready after 300ms") || !strings.Contains(err.Error(), "starting") {
		t.Fatalf("err = %v", err)
	}
}

// TestSIGTERMWhileLoading: a server told to stop while its model is still
// loading exits promptly with an error instead of hanging.
func TestSIGTERMWhileLoading(t *testing.T) {
	dir := t.TempDir()
	spec := ProcessSpec{Name: "digits", Model: ModelSource{Artifact: "hang"}, ReadyFile: filepath.Join(dir, "ready.json")}
	b, _ := json.Marshal(spec)
	specPath := filepath.Join(dir, "spec.json")
	os.WriteFile(specPath, b, 0o600)
	cmd := exec.Command(os.Args[0], "-spec", specPath)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var out lockedBuffer
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the "starting" line: by then the signal handler is installed.
	for !strings.Contains(out.String(), "starting") {
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if err == nil || !strings.Contains(out.String(), "terminated while loading the model") {
		t.Fatalf("exit %v, stderr:\n%s", err, out.String())
	}
}

// lockedBuffer collects a child's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestUpdateWithTheBoundPort: a server started on any free port (0) is
// updated with a spec that names the port it bound (what state records, and
// what apply passes back): that is no change of port. Another port is.
func TestUpdateWithTheBoundPort(t *testing.T) {
	p, _ := startChild(t, ProcessSpec{Name: "digits", Token: testToken, Workers: 1, Model: ModelSource{Artifact: "mnist:1", Digest: "v1"}})
	info, err := ReadReady(p.ReadyPath)
	if err != nil || info.Port == 0 {
		t.Fatalf("ready info %+v, %v", info, err)
	}
	spec := ProcessSpec{Name: "digits", Port: info.Port, Token: testToken, Workers: 1, Model: ModelSource{Artifact: "mnist:2", Digest: "v2"}}
	if err := Update(context.Background(), p, spec); err != nil {
		t.Fatalf("update naming the bound port: %v", err)
	}
	if st := Check(context.Background(), p); st.Version != "v2" {
		t.Fatalf("status after the update: %+v", st)
	}
	spec.Port = info.Port + 1
	if err := Update(context.Background(), p, spec); !errors.Is(err, ErrNeedsReplace) {
		t.Fatalf("update to another port: %v, want ErrNeedsReplace", err)
	}
}
