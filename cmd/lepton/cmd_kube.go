package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/leptonml/lepton/providers/kubernetes"
	"github.com/leptonml/lepton/runtime/serve"
)

// cmdInternalKubeRun is what lepton's image runs in a Kubernetes pod; lepton
// creates those pods, users do not run it:
//
//	lepton internal-kube-run train RUN.json   a built-in training (providers/kubernetes.RunPod)
//	lepton internal-kube-run serve SPEC.json  an endpoint's server, its token from $LEPTON_TOKEN
func cmdInternalKubeRun(m *meta, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if len(args) != 2 {
		fmt.Fprintln(m.stderr, "usage: lepton internal-kube-run train|serve FILE")
		return 2
	}
	var err error
	switch args[0] {
	case "train":
		err = kubernetes.RunPod(ctx, args[1], m.stdout)
	case "serve":
		err = kubeServe(m, args[1])
	default:
		err = fmt.Errorf("unknown mode %q", args[0])
	}
	if err != nil {
		fmt.Fprintf(m.stderr, "lepton internal-kube-run: %v\n", err)
		return 1
	}
	return 0
}

// kubeServe runs the endpoint's server from the spec in the image, with the
// token the pod gets from its Secret (a token never goes into an image).
func kubeServe(m *meta, specFile string) error {
	b, err := os.ReadFile(specFile)
	if err != nil {
		return err
	}
	var sp serve.ProcessSpec
	if err := json.Unmarshal(b, &sp); err != nil {
		return fmt.Errorf("%s: %w", specFile, err)
	}
	sp.Token = os.Getenv("LEPTON_TOKEN")
	dir, err := os.MkdirTemp("", "serve")
	if err != nil {
		return err
	}
	sp.ReadyFile = filepath.Join(dir, "ready.json")
	out, _ := json.Marshal(sp)
	path := filepath.Join(dir, "spec.json")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return err
	}
	if code := cmdInternalServe(m, []string{"-spec", path}); code != 0 {
		return fmt.Errorf("the server exited with %d", code)
	}
	return nil
}
