package local

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/leptonml/lepton/internal/version"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/catalog"
	"github.com/leptonml/lepton/providers/clusters"
	"github.com/leptonml/lepton/providers/kubernetes"
	corev1 "k8s.io/api/core/v1"
)

// Runs and endpoints on a Kubernetes cluster (clouds = ["kubernetes"]): a
// training is an Indexed Job, an endpoint a Deployment and a Service, in the
// cluster's namespace (providers/kubernetes builds them). Built-in kernels
// run in lepton's own image, pushed to the provider block's registry with
// the run's inputs as one more layer; the result comes back through the API
// server's port-forward (see providers/kubernetes/podrun.go). The objects
// carry the address and lineage labels: drift is read from them, and
// delete removes what matches them.

// kubeRun is what state keeps of a run or endpoint on Kubernetes (in the
// instance's private data), so the read-only commands, which have no
// provider block, reach it too.
type kubeRun struct {
	Kubeconfig string `json:"kubeconfig,omitempty"` // absolute; empty: as kubectl finds it
	Context    string `json:"context,omitempty"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"` // the Job's or Deployment's name
	Image      string `json:"image,omitempty"`
	// Selector finds the address's objects and pods.
	Selector string `json:"selector"`
}

// kubeTarget is a Kubernetes cluster a run is placed on.
type kubeTarget struct {
	run      kubeRun
	registry string
	gpus     int64    // per pod
	products []string // nvidia.com/gpu.product values the pods may go to
	nodes    int
}

func isKube(tg target) bool { return tg.cloud == clusters.Kubernetes }

// kubeTargetOf reads the cluster's placement (its namespace) and the
// provider block's connection.
func kubeTargetOf(env providers.Env, tg target, address string) (kubeTarget, error) {
	v, _ := env.Lookup(tg.address)
	block := env.Providers[clusters.Kubernetes]
	kc := kubernetes.ConfigFromBlock(block)
	if kc.Kubeconfig != "" && !filepath.IsAbs(kc.Kubeconfig) {
		kc.Kubeconfig = filepath.Join(env.Dir, kc.Kubeconfig)
	}
	kt := kubeTarget{
		run: kubeRun{
			Kubeconfig: kc.Kubeconfig, Context: kc.Context, Namespace: str(attr(v, "region")),
			Name: kubernetes.ObjectName(address),
		},
		registry: kc.Registry,
		nodes:    len(tg.ids),
	}
	kt.run.Selector = kt.run.meta(address, env.Lineage).Selector()
	if kt.run.Namespace == "" {
		return kt, fmt.Errorf("%s has no namespace in state: apply it first", tg.address)
	}
	if g := str(attr(v, "gpu")); g != "" {
		spec, err := catalog.ParseGPU(g)
		if err != nil {
			return kt, err
		}
		kt.gpus = int64(spec.Count)
		if it := str(attr(v, "instance_type")); it != "" && it != "pod" {
			kt.products = strings.Split(it, ",")
		}
	}
	return kt, nil
}

// client connects to the run's cluster.
func (k kubeRun) client() (*kubernetes.Client, error) {
	return kubernetes.Connect(kubernetes.Config{Kubeconfig: k.Kubeconfig, Context: k.Context, Namespace: k.Namespace})
}

func (k kubeRun) meta(address, lineage string) kubernetes.Meta {
	return kubernetes.Meta{Address: address, Lineage: lineage, Namespace: k.Namespace}
}

// leptonBinary is the binary lepton's image is made of: this one.
func leptonBinary() (string, error) {
	bin, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the lepton binary for its image: %w", err)
	}
	return bin, nil
}

func leptonVersion() string { return version.Version }

// deleteKube removes an address's objects (Job, Service, Deployment,
// Secret) and waits until they and their pods are gone, so a new Job of
// that name can be created and nothing with the address's labels is left.
func deleteKube(ctx context.Context, k kubeRun, address, lineage string) error {
	c, err := k.client()
	if err != nil {
		return err
	}
	sel := k.meta(address, lineage).Selector()
	if err := kubernetes.DeleteSelected(ctx, c, k.Namespace, sel); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := kubernetes.WaitGone(wctx, c, k.Namespace, sel); err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: %w", address, err)
	}
	return ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// kubePodLog follows (or reads) the log of the first pod of sel; when no
// pod is left, ok is false.
func kubePodLog(ctx context.Context, k kubeRun, sel string, follow bool) (io.ReadCloser, bool, error) {
	c, err := k.client()
	if err != nil {
		return nil, false, err
	}
	pods, err := c.Pods(ctx, k.Namespace, sel)
	if err != nil {
		return nil, false, err
	}
	for i := range pods {
		p := &pods[i]
		if p.Status.Phase == corev1.PodPending && len(p.Status.ContainerStatuses) == 0 {
			continue
		}
		rc, err := c.Logs(ctx, k.Namespace, p.Name, follow)
		return rc, err == nil, err
	}
	return nil, false, nil
}

// kubePods summarises the pods of sel for `lepton status`.
func kubePods(ctx context.Context, k kubeRun, sel string) string {
	c, err := k.client()
	if err != nil {
		return err.Error()
	}
	pods, err := c.Pods(ctx, k.Namespace, sel)
	if err != nil {
		return err.Error()
	}
	if len(pods) == 0 {
		return "no pod"
	}
	s := make([]string, len(pods))
	for i := range pods {
		s[i] = kubernetes.PodSummary(&pods[i])
	}
	return strings.Join(s, "; ")
}
