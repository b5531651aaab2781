package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Config is the provider "kubernetes" block's connection settings.
type Config struct {
	// Kubeconfig is a kubeconfig file; empty means as kubectl finds it
	// (KUBECONFIG, ~/.kube/config) and, failing that, the in-cluster
	// service account.
	Kubeconfig string
	Context    string // kubeconfig context; empty for the current one
	Namespace  string // empty: the context's namespace, else "default"
	// Registry is where lepton pushes the images its pods run (lepton's
	// own binary, a run's inputs, an endpoint's model), e.g.
	// registry.example.com/ml or 127.0.0.1:5000.
	Registry string
}

// ConfigFromBlock reads the provider "kubernetes" block's arguments.
func ConfigFromBlock(b map[string]string) Config {
	return Config{Kubeconfig: b["kubeconfig"], Context: b["context"], Namespace: b["namespace"], Registry: b["registry"]}
}

// Client talks to one cluster. It holds only the dynamic client: the
// typed clientset would link every API group's types and apply
// configurations into lepton (about 40 MB); objects are converted to and
// from the core, apps and batch types this package builds.
type Client struct {
	REST      *rest.Config
	Dynamic   dynamic.Interface
	HTTP      *http.Client // for logs and port-forward, which are not objects
	Namespace string
}

// Connect loads c the way kubectl does and makes the clients; it does not
// call the API server.
func Connect(c Config) (*Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if c.Kubeconfig != "" {
		rules.ExplicitPath = c.Kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context})
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: load kubeconfig: %w", err)
	}
	ns := c.Namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil || ns == "" {
			ns = "default"
		}
	}
	return NewClient(rc, ns)
}

// NewClient makes a Client from a REST config.
func NewClient(rc *rest.Config, namespace string) (*Client, error) {
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "lepton"
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	dyn, err := dynamic.NewForConfigAndClient(rc, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	return &Client{REST: rc, Dynamic: dyn, HTTP: hc, Namespace: namespace}, nil
}

// Nodes lists the cluster's nodes as the GPU check reads them.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	list, err := List[corev1.Node](ctx, c, "Node", "", "")
	if err != nil {
		return nil, err
	}
	out := make([]Node, len(list))
	for i := range list {
		out[i] = NodeFromAPI(&list[i])
	}
	return out, nil
}

// FieldManager is lepton's name in the objects' managed fields.
const FieldManager = "lepton"

// resources maps the kinds lepton creates to their API resources.
var resources = map[string]struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}{
	"Namespace":      {schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, false},
	"ServiceAccount": {schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, true},
	"ResourceQuota":  {schema.GroupVersionResource{Version: "v1", Resource: "resourcequotas"}, true},
	"Service":        {schema.GroupVersionResource{Version: "v1", Resource: "services"}, true},
	"Secret":         {schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, true},
	"Job":            {schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, true},
	"Deployment":     {schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, true},
	// Read only.
	"Node":       {schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, false},
	"Pod":        {schema.GroupVersionResource{Version: "v1", Resource: "pods"}, true},
	"ReplicaSet": {schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, true},
}

func (c *Client) resource(kind, ns string) (dynamic.ResourceInterface, error) {
	r, ok := resources[kind]
	if !ok {
		return nil, fmt.Errorf("kubernetes: kind %q is not one lepton reads", kind)
	}
	if r.namespaced {
		return c.Dynamic.Resource(r.gvr).Namespace(ns), nil
	}
	return c.Dynamic.Resource(r.gvr), nil
}

// Get reads one object (kind is one of resources' keys) into T, the
// object's Go type (batchv1.Job for "Job").
func Get[T any](ctx context.Context, c *Client, kind, ns, name string) (*T, error) {
	ri, err := c.resource(kind, ns)
	if err != nil {
		return nil, err
	}
	u, err := ri.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, fmt.Errorf("kubernetes: %s %s/%s: %w", kind, ns, name, err)
	}
	return out, nil
}

// List reads the objects of kind matching the label selector sel in ns.
func List[T any](ctx context.Context, c *Client, kind, ns, sel string) ([]T, error) {
	ri, err := c.resource(kind, ns)
	if err != nil {
		return nil, err
	}
	l, err := ri.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list %ss (%s) in %q: %w", kind, sel, ns, err)
	}
	out := make([]T, len(l.Items))
	for i := range l.Items {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(l.Items[i].Object, &out[i]); err != nil {
			return nil, fmt.Errorf("kubernetes: %s %s: %w", kind, l.Items[i].GetName(), err)
		}
	}
	return out, nil
}

// Delete deletes one object, its dependents in the background.
func (c *Client) Delete(ctx context.Context, kind, ns, name string) error {
	ri, err := c.resource(kind, ns)
	if err != nil {
		return err
	}
	bg := metav1.DeletePropagationBackground
	return ri.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
}

// Apply creates or updates obj (one of the objects this package builds) by
// server-side apply, so fields other managers own (the Job controller's,
// an autoscaler's) are left alone, and returns the object as stored.
func (c *Client) Apply(ctx context.Context, obj runtime.Object) (map[string]any, error) {
	acc, err := metaOf(obj)
	if err != nil {
		return nil, err
	}
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	r, ok := resources[kind]
	if !ok {
		return nil, fmt.Errorf("kubernetes: apply: kind %q is not one lepton creates", kind)
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: apply %s %s: %w", kind, acc.GetName(), err)
	}
	var ri dynamic.ResourceInterface = c.Dynamic.Resource(r.gvr)
	if r.namespaced {
		ri = c.Dynamic.Resource(r.gvr).Namespace(acc.GetNamespace())
	}
	out, err := ri.Patch(ctx, acc.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, Force: new(true)})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: apply %s %s/%s: %w", kind, acc.GetNamespace(), acc.GetName(), err)
	}
	return out.Object, nil
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	acc, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("kubernetes: %T has no object metadata", obj)
	}
	return acc, nil
}
