package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
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

// Client talks to one cluster.
type Client struct {
	REST      *rest.Config
	Typed     kubernetes.Interface
	Dynamic   dynamic.Interface
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
	typed, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	return &Client{REST: rc, Typed: typed, Dynamic: dyn, Namespace: namespace}, nil
}

// Nodes lists the cluster's nodes as the GPU check reads them.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	list, err := c.Typed.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list nodes: %w", err)
	}
	out := make([]Node, len(list.Items))
	for i := range list.Items {
		out[i] = NodeFromAPI(&list.Items[i])
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
