package clusters

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/kubernetes"
	"github.com/zclconf/go-cty/cty"
)

// A cluster with clouds = ["kubernetes"] is a namespace of the cluster the
// provider "kubernetes" block names (kubeconfig, context, namespace): the
// namespace lepton creates (lepton-NAME-LINEAGE) or the one the block
// gives, and a service account its pods run as. Its attributes say where:
// region is the namespace, zone the kubeconfig context (empty: the current
// one), instance_type the GPU product the pods go to ("pod" without GPU),
// node_ids the nodes that can hold its pods (one per pod).

// Kubernetes is the clouds value of a cluster on Kubernetes.
const Kubernetes = "kubernetes"

func (a args) kube() bool { return len(a.Clouds) == 1 && a.Clouds[0] == Kubernetes }

// KubeConfig is the connection a kubernetes cluster's block gives, with
// the namespace the cluster uses.
func KubeConfig(block map[string]string, address, lineage string) (cfg kubernetes.Config, own bool) {
	cfg = kubernetes.ConfigFromBlock(block)
	if cfg.Namespace == "" {
		cfg.Namespace, own = kubernetes.ClusterNamespace(address, lineage), true
	}
	return cfg, own
}

func kubeConnect(env providers.Env, address string) (*kubernetes.Client, kubernetes.Config, bool, error) {
	cfg, own := KubeConfig(env.Providers[Kubernetes], address, env.Lineage)
	c, err := kubernetes.Connect(cfg)
	if err != nil {
		return nil, cfg, own, err
	}
	return c, cfg, own, nil
}

// kubeFit lists the nodes and checks that they hold a's pods.
func kubeFit(ctx context.Context, c *kubernetes.Client, a args) (kubernetes.GPUFit, error) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nodes, err := c.Nodes(lctx)
	if err != nil {
		return kubernetes.GPUFit{}, err
	}
	fit, err := kubernetes.CheckGPUs(a.GPU, a.Nodes, nodes)
	if err != nil {
		return fit, providers.AtArg("gpu", err)
	}
	return fit, nil
}

func kubeComputed(cfg kubernetes.Config, fit kubernetes.GPUFit) map[string]cty.Value {
	it := "pod"
	if len(fit.Products) > 0 {
		it = strings.Join(fit.Products, ",")
	}
	return map[string]cty.Value{
		"cloud":          cty.StringVal(Kubernetes),
		"region":         cty.StringVal(cfg.Namespace),
		"zone":           cty.StringVal(cfg.Context),
		"instance_type":  cty.StringVal(it),
		"price_per_hour": numVal(0),
		"node_ids":       strListVal(fit.Nodes),
		"node_addresses": strListVal(fit.Nodes),
		"status":         cty.StringVal(statusRunning),
	}
}

// planKube checks a kubernetes cluster. Without GPUs nothing needs the API
// (any ready node holds the pods; apply checks). With GPUs the plan lists
// the nodes and fails, naming what they offer, when they cannot hold
// `nodes` pods of the asked GPUs.
func (c *Cluster) planKube(ctx context.Context, req providers.PlanRequest, a args) (providers.PlanResponse, error) {
	switch {
	case a.Spot || a.MaxPrice > 0 || a.InstanceType != "" || len(a.Regions) > 0 || a.Image != "" || a.DiskGB > 0:
		return providers.PlanResponse{}, fmt.Errorf(`clouds = ["kubernetes"] runs pods on the nodes the cluster has: spot, max_price_per_hour, instance_type, regions, image and disk_gb apply to cloud clusters only`)
	}
	cfg, own := KubeConfig(req.Env.Providers[Kubernetes], req.Address, req.Env.Lineage)
	where := "namespace " + cfg.Namespace
	if own {
		where += " (lepton creates it)"
	}
	if cfg.Context != "" {
		where = "context " + cfg.Context + ", " + where
	}
	comp := map[string]cty.Value{
		"cloud": cty.StringVal(Kubernetes), "region": cty.StringVal(cfg.Namespace), "zone": cty.StringVal(cfg.Context),
		"price_per_hour": numVal(0),
	}
	if own && req.Env.Lineage == "" {
		// A new state gets its lineage at apply, and the namespace's name
		// comes from it.
		comp["region"] = cty.UnknownVal(cty.String)
		where = "a namespace lepton creates"
		if cfg.Context != "" {
			where = "context " + cfg.Context + ", " + where
		}
	}
	detail := []string{"kubernetes " + where}
	if !req.Prior.IsNull() {
		for _, n := range []string{"instance_type", "node_ids", "node_addresses", "status"} {
			comp[n] = req.Prior.GetAttr(n)
		}
	}
	if a.GPU != "" || (!req.Prior.IsNull() && len(strList(attr(req.Prior, "node_ids"))) != a.Nodes) {
		kc, err := kubernetes.Connect(cfg)
		if err != nil {
			return providers.PlanResponse{}, err
		}
		fit, err := kubeFit(ctx, kc, a)
		if err != nil {
			return providers.PlanResponse{}, err
		}
		for k, v := range kubeComputed(cfg, fit) {
			comp[k] = v
		}
		detail = append(detail, fmt.Sprintf("%d pod(s) fit on %s", a.Nodes, strings.Join(uniq(fit.Nodes), ", ")))
	} else if req.Prior.IsNull() {
		detail = append(detail, fmt.Sprintf("%d pod(s) without GPU: any ready node (checked at apply)", a.Nodes))
	}
	return providers.PlanResponse{Planned: stateValue(req.Config, comp), Detail: detail}, nil
}

func uniq(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// applyKube creates (or updates) the namespace, when the cluster owns it,
// and the service account.
func (c *Cluster) applyKube(ctx context.Context, req providers.ApplyRequest, a args) (cty.Value, error) {
	kc, cfg, own, err := kubeConnect(req.Env, req.Address)
	if err != nil {
		return cty.NilVal, err
	}
	fit, err := kubeFit(ctx, kc, a)
	if err != nil {
		return cty.NilVal, err
	}
	m := kubernetes.Meta{Address: req.Address, Lineage: req.Env.Lineage, Namespace: cfg.Namespace}
	if err := kubernetes.EnsureCluster(ctx, kc, m, own, kubernetes.Quota{}); err != nil {
		return cty.NilVal, err
	}
	logger(req.Env)("namespace %s ready; %d pod(s) fit on %s", cfg.Namespace, a.Nodes, strings.Join(uniq(fit.Nodes), ", "))
	return stateValue(req.Planned, kubeComputed(cfg, fit)), nil
}

// readKube: the cluster is gone when its namespace is; degraded when its
// nodes no longer hold its pods.
func (c *Cluster) readKube(ctx context.Context, req providers.ReadRequest) (cty.Value, error) {
	cur := req.Current
	a, err := parseArgs(cur, req.Env.Providers)
	if err != nil {
		return cty.NilVal, err
	}
	ns := str(attr(cur, "region"))
	cfg := kubernetes.ConfigFromBlock(req.Env.Providers[Kubernetes])
	cfg.Namespace = ns
	kc, err := kubernetes.Connect(cfg)
	if err != nil {
		return cty.NilVal, err
	}
	ok, err := kubernetes.NamespaceExists(ctx, kc, ns)
	if err != nil {
		return cty.NilVal, err
	}
	if !ok {
		return cty.NullVal(cur.Type()), nil
	}
	fit, err := kubeFit(ctx, kc, a)
	if err != nil {
		return setAttr(cur, "status", cty.StringVal(statusDegraded)), nil
	}
	v := setAttr(cur, "node_ids", strListVal(fit.Nodes))
	v = setAttr(v, "node_addresses", strListVal(fit.Nodes))
	return setAttr(v, "status", cty.StringVal(statusRunning)), nil
}

// deleteKube deletes every object of the state's lineage in the cluster's
// namespace, and the namespace when the cluster owns it.
func (c *Cluster) deleteKube(ctx context.Context, req providers.DeleteRequest) error {
	ns := str(attr(req.Current, "region"))
	cfg := kubernetes.ConfigFromBlock(req.Env.Providers[Kubernetes])
	cfg.Namespace = ns
	kc, err := kubernetes.Connect(cfg)
	if err != nil {
		return err
	}
	m := kubernetes.Meta{Lineage: req.Env.Lineage, Namespace: ns}
	if err := kubernetes.DeleteSelected(ctx, kc, ns, m.Selector()); err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if ns == kubernetes.ClusterNamespace(req.Address, req.Env.Lineage) {
		if err := kubernetes.DeleteNamespace(dctx, kc, ns); err != nil {
			return err
		}
	} else if err := kubernetes.WaitGone(dctx, kc, ns, m.Selector()); err != nil {
		return err
	}
	logger(req.Env)("deleted lepton's objects in namespace %s", ns)
	return nil
}
