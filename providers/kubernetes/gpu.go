package kubernetes

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/leptonml/lepton/providers/catalog"
)

// Node is what the plan needs to know of a node.
type Node struct {
	Name string
	// GPUs is the node's allocatable nvidia.com/gpu.
	GPUs int64
	// Product is the nvidia.com/gpu.product label GPU feature discovery
	// sets (NVIDIA-A100-SXM4-80GB); MemoryMiB its nvidia.com/gpu.memory.
	Product   string
	MemoryMiB int64
	// Schedulable is false for a cordoned or not-ready node.
	Schedulable bool
}

// NodeFromAPI reads a Node from the API's object.
func NodeFromAPI(n *corev1.Node) Node {
	out := Node{Name: n.Name, Product: n.Labels[LabelGPUProduct], Schedulable: !n.Spec.Unschedulable}
	if q, ok := n.Status.Allocatable[ResourceGPU]; ok {
		out.GPUs = q.Value()
	}
	if m, err := strconv.ParseInt(n.Labels[LabelGPUMemory], 10, 64); err == nil {
		out.MemoryMiB = m
	}
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status == corev1.ConditionTrue
		}
	}
	out.Schedulable = out.Schedulable && ready
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			// lepton's pods tolerate no taint (nvidia.com/gpu taints included:
			// GPU pods get the toleration from the ExtendedResourceToleration
			// admission plugin where the cluster runs it).
			if t.Key != string(ResourceGPU) {
				out.Schedulable = false
			}
		}
	}
	return out
}

// GPUFit is where the pods of a cluster can run.
type GPUFit struct {
	// Nodes the pods could go to, one name per pod (a node may hold several).
	Nodes []string
	// Products are the nvidia.com/gpu.product values of the nodes that fit,
	// for the pods' node selector; empty when no GPU was asked.
	Products []string
}

// CheckGPUs reports whether pods pods, each asking gpu (a cluster's gpu
// argument, "A100:8", or "" for none), fit on nodes: a node holds as many
// such pods as its allocatable nvidia.com/gpu allows, if its GPU model (from
// the nvidia.com/gpu.product label) is the one asked. The error names what
// the nodes offer.
func CheckGPUs(gpu string, pods int, nodes []Node) (GPUFit, error) {
	if pods < 1 {
		return GPUFit{}, fmt.Errorf("nodes = %d: want at least 1", pods)
	}
	var spec catalog.GPUSpec
	if gpu != "" {
		s, err := catalog.ParseGPU(gpu)
		if err != nil {
			return GPUFit{}, err
		}
		spec = s
	}
	sorted := append([]Node(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var fit GPUFit
	products := map[string]bool{}
	for _, n := range sorted {
		if !n.Schedulable {
			continue
		}
		var holds int64
		if gpu == "" {
			holds = int64(pods) // no GPU asked: any ready node holds them all
		} else if productMatches(spec, n) {
			holds = n.GPUs / int64(spec.Count)
		}
		for i := int64(0); i < holds && len(fit.Nodes) < pods; i++ {
			fit.Nodes = append(fit.Nodes, n.Name)
			if n.Product != "" && gpu != "" {
				products[n.Product] = true
			}
		}
	}
	if len(fit.Nodes) < pods {
		what := fmt.Sprintf("%d pod", pods)
		if pods > 1 {
			what += "s"
		}
		if gpu != "" {
			what += " with " + spec.String() + " GPUs each"
		}
		return GPUFit{}, fmt.Errorf("no room for %s on the cluster's nodes, which offer: %s", what, Offers(nodes))
	}
	for p := range products {
		fit.Products = append(fit.Products, p)
	}
	sort.Strings(fit.Products)
	return fit, nil
}

// Offers says what nodes offer, grouped: "2 × NVIDIA-A100-SXM4-40GB (gpu-1,
// gpu-2); no GPU (cpu-1); not schedulable (gpu-3)".
func Offers(nodes []Node) string {
	if len(nodes) == 0 {
		return "no node"
	}
	groups := map[string][]string{}
	for _, n := range nodes {
		var k string
		switch {
		case !n.Schedulable:
			k = "not schedulable"
		case n.GPUs == 0:
			k = "no GPU"
		default:
			p := n.Product
			if p == "" {
				p = "GPU of unknown model (no " + LabelGPUProduct + " label)"
			}
			k = fmt.Sprintf("%d × %s", n.GPUs, p)
		}
		groups[k] = append(groups[k], n.Name)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		names := groups[k]
		sort.Strings(names)
		parts[i] = k + " (" + strings.Join(names, ", ") + ")"
	}
	return strings.Join(parts, "; ")
}

// productMatches reports whether node n's GPU is the model spec asks: the
// model is one of the product's words (A100 in NVIDIA-A100-SXM4-80GB, T4 in
// Tesla-T4, never L4 in NVIDIA-L40S), and the memory, when asked, is the
// product's "-NGB" word or, failing that, its nvidia.com/gpu.memory label.
func productMatches(spec catalog.GPUSpec, n Node) bool {
	if n.GPUs <= 0 {
		return false
	}
	words := strings.FieldsFunc(strings.ToUpper(n.Product), func(r rune) bool {
		return r == '-' || r == '_' || r == ' '
	})
	memGB := float64(n.MemoryMiB) / 1024
	for _, w := range words {
		if strings.HasSuffix(w, "GB") {
			if v, err := strconv.ParseFloat(strings.TrimSuffix(w, "GB"), 64); err == nil {
				memGB = v
			}
		}
	}
	if spec.MinMemoryGB > 0 {
		return memGB >= spec.MinMemoryGB*0.97 // marketing GB are a little more than GiB
	}
	model := false
	for _, w := range words {
		if w == spec.Model {
			model = true
		}
	}
	if !model {
		return false
	}
	return spec.MemoryGB == 0 || math.Abs(memGB-spec.MemoryGB) <= spec.MemoryGB*0.05
}
