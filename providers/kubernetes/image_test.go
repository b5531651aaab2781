package kubernetes

import (
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
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestPushLeptonImage(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	bin := filepath.Join(dir, "lepton")
	if err := os.WriteFile(src, []byte("package main\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://") + "/ml"

	ref, err := PushLeptonImage(context.Background(), bin, reg+"/", "v1.2.3+dirty")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref, reg+"/lepton@sha256:") {
		t.Fatalf("ref = %s", ref)
	}
	again, err := PushLeptonImage(context.Background(), bin, reg, "v1.2.3+dirty")
	if err != nil || again != ref {
		t.Fatalf("second push = %s, %v; want %s", again, err, ref)
	}
	tag, _ := name.NewTag(reg+"/lepton:v1.2.3-dirty", name.Insecure)
	desc, err := remote.Head(tag)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(ref, desc.Digest.String()) {
		t.Errorf("tag points at %s, pushed %s", desc.Digest, ref)
	}
	if _, err := PushLeptonImage(context.Background(), bin, "", "v1"); err == nil || !strings.Contains(err.Error(), "registry") {
		t.Errorf("no registry: err = %v", err)
	}
}

func TestImageTag(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":       "v1.2.3",
		"v1.2.3+dirty": "v1.2.3-dirty",
		"(devel)":      "devel",
		"":             "",
		".x":           "x",
	} {
		if got := imageTag(in); got != want {
			t.Errorf("imageTag(%q) = %q, want %q", in, got, want)
		}
	}
}
