package main

// The end-to-end tests build the real binary once and run it in temporary
// working directories copied from testdata, the way a user (or CI) would.

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leptonml/lepton/internal/state"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// leptonBin is the binary built by TestMain.
var leptonBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "lepton-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	leptonBin = filepath.Join(dir, "lepton")
	build := exec.Command("go", "build", "-o", leptonBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building lepton:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary produced.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) all() string { return r.stdout + r.stderr }

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s\n--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// baseEnv is the test process's environment without anything that would
// change lepton's behaviour, plus NO_COLOR so output is plain.
func baseEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LEPTON_") || strings.HasPrefix(kv, "NO_COLOR=") {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "NO_COLOR=1"), extra...)
}

// cmdIn prepares (without starting) lepton in dir; stdin is empty, which is
// not a terminal.
func cmdIn(dir string, env []string, args ...string) *exec.Cmd {
	c := exec.Command(leptonBin, args...)
	c.Dir = dir
	c.Env = baseEnv(env...)
	return c
}

// runEnv runs lepton in dir with extra environment variables.
func runEnv(t *testing.T, dir string, env []string, stdin string, args ...string) result {
	t.Helper()
	c := cmdIn(dir, env, args...)
	c.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running lepton %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// lep runs lepton in dir and returns what it printed.
func lep(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return runEnv(t, dir, nil, "", args...)
}

// ok runs lepton and fails the test unless it exits 0.
func ok(t *testing.T, dir string, args ...string) result {
	t.Helper()
	r := lep(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("lepton %s: want exit 0, got\n%s", strings.Join(args, " "), r)
	}
	return r
}

// fails runs lepton and fails the test unless it exits with code.
func exits(t *testing.T, code int, dir string, args ...string) result {
	t.Helper()
	r := lep(t, dir, args...)
	if r.code != code {
		t.Fatalf("lepton %s: want exit %d, got\n%s", strings.Join(args, " "), code, r)
	}
	return r
}

// contains fails the test unless s holds every want.
func contains(t *testing.T, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("output lacks %q:\n%s", w, s)
		}
	}
}

func lacks(t *testing.T, s string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(s, b) {
			t.Errorf("output holds %q, it should not:\n%s", b, s)
		}
	}
}

// project copies testdata/<fixture> to a new temporary directory.
func project(t *testing.T, fixture string) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("testdata", fixture)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
	return dst
}

// edit replaces old with new in dir/name, failing when old is absent so a
// fixture change cannot silently turn a test into a no-op.
func edit(t *testing.T, dir, name, old, new string) {
	t.Helper()
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", name, old)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readState parses dir's state file with the state package itself.
func readState(t *testing.T, dir string) *state.State {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "lepton.state.json"))
	if err != nil {
		t.Fatalf("reading state: %v", err)
	}
	st, err := state.Parse(b)
	if err != nil {
		t.Fatalf("state does not parse: %v\n%s", err, b)
	}
	return st
}

func addresses(st *state.State) []string {
	var out []string
	for _, r := range st.Resources {
		out = append(out, r.Address)
	}
	return out
}

func fileBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
