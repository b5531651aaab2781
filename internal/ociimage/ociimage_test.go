package ociimage

import (
	"archive/tar"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestBuildPushPull(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := Spec{
		Files: []File{
			{Path: "/usr/local/bin/prog", Source: bin},
			{Path: "/bin/sh", Link: "/usr/local/bin/prog"},
			{Path: "/etc/motd", Data: []byte("hi\n"), Mode: 0o644},
		},
		Entrypoint: []string{"/usr/local/bin/prog"},
		Env:        []string{"A=1"},
	}
	img, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Fatalf("same files gave digests %s and %s", d1, d2)
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/lepton/test"
	ref, err := Push(context.Background(), img, repo, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if want := repo + "@" + d1.String(); ref != want {
		t.Fatalf("Push = %s, want %s", ref, want)
	}
	tag, _ := name.NewTag(repo+":v1", name.Insecure)
	got, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	if gd, _ := got.Digest(); gd != d1 {
		t.Fatalf("pulled digest %s, pushed %s", gd, d1)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || cf.Config.Entrypoint[0] != "/usr/local/bin/prog" {
		t.Fatalf("config = %+v", cf)
	}
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(mutate.Extract(got))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = h
	}
	for _, want := range []string{"usr", "usr/local", "usr/local/bin", "usr/local/bin/prog", "bin/sh", "etc/motd"} {
		if entries[want] == nil {
			t.Errorf("layer lacks %s (has %v)", want, entries)
		}
	}
	if h := entries["bin/sh"]; h != nil && h.Linkname != "/usr/local/bin/prog" {
		t.Errorf("bin/sh links to %q", h.Linkname)
	}
}

func TestBuildRejectsRelativePath(t *testing.T) {
	if _, err := Build(Spec{Files: []File{{Path: "bin/x", Data: []byte("x")}}}); err == nil {
		t.Fatal("relative path accepted")
	}
}

func TestLoopback(t *testing.T) {
	for repo, want := range map[string]bool{
		"127.0.0.1:5000/a":          true,
		"localhost:5000/a":          true,
		"[::1]:5000/a":              true,
		"registry.example.com/ml/x": false,
		"10.0.0.1:5000/a":           false,
	} {
		if got := Loopback(repo); got != want {
			t.Errorf("Loopback(%q) = %v", repo, got)
		}
	}
}

func TestBinaryImage(t *testing.T) {
	dir := t.TempDir()
	static := filepath.Join(dir, "static")
	build := func(out string, cgo string) {
		t.Helper()
		src := filepath.Join(dir, "main.go")
		if err := os.WriteFile(src, []byte("package main\nimport \"os/user\"\nfunc main() { _, _ = user.Current() }\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("go", "build", "-o", out, src)
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo, "GOOS=linux", "GOARCH=amd64")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, b)
		}
	}
	build(static, "0")
	spec, err := BinaryImage(static, "lepton", map[string]string{"org.opencontainers.image.version": "v1"})
	if err != nil {
		t.Fatal(err)
	}
	img, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if cf.Config.Entrypoint[0] != "/usr/local/bin/lepton" || cf.Config.Labels["org.opencontainers.image.version"] != "v1" {
		t.Errorf("config = %+v", cf.Config)
	}
	found := map[string]int64{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		found[h.Name] = h.Mode
	}
	if found["tmp"] != 0o1777 || found["usr/local/bin/lepton"] != 0o755 {
		t.Errorf("layer = %v", found)
	}

	if _, err := BinaryImage(filepath.Join(dir, "main.go"), "x", nil); err == nil {
		t.Error("a Go source file was taken for a binary")
	}
	if _, err := exec.LookPath("gcc"); err == nil {
		dynamic := filepath.Join(dir, "dynamic")
		build(dynamic, "1")
		spec, err := BinaryImage(dynamic, "x", nil)
		if err != nil {
			t.Fatalf("dynamic binary: %v", err)
		}
		// The loader comes with it, at the path the binary names.
		var paths []string
		for _, f := range spec.Files {
			paths = append(paths, f.Path)
		}
		if !strings.Contains(strings.Join(paths, " "), "/ld-linux-x86-64.so.2") || !strings.Contains(strings.Join(paths, " "), "libc.so.6") {
			t.Errorf("dynamic binary's image files = %v, want its loader and libc", paths)
		}
	}
}
