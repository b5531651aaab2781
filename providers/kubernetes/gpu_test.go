package kubernetes

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCheckGPUs(t *testing.T) {
	a100x8 := Node{Name: "a100-1", GPUs: 8, Product: "NVIDIA-A100-SXM4-80GB", MemoryMiB: 81920, Schedulable: true}
	a100x4 := Node{Name: "a100-2", GPUs: 4, Product: "NVIDIA-A100-SXM4-40GB", MemoryMiB: 40960, Schedulable: true}
	t4 := Node{Name: "t4-1", GPUs: 1, Product: "Tesla-T4", MemoryMiB: 15360, Schedulable: true}
	l40s := Node{Name: "l40s-1", GPUs: 2, Product: "NVIDIA-L40S", MemoryMiB: 46068, Schedulable: true}
	cpu := Node{Name: "cpu-1", Schedulable: true}
	cordoned := Node{Name: "a100-3", GPUs: 8, Product: "NVIDIA-A100-SXM4-80GB", Schedulable: false}
	all := []Node{a100x8, a100x4, t4, l40s, cpu, cordoned}

	tests := []struct {
		name     string
		gpu      string
		pods     int
		nodes    []Node
		want     GPUFit
		wantErr  string // substring
		wantErr2 string
	}{
		{name: "no gpu, one node", pods: 3, nodes: []Node{cpu}, want: GPUFit{Nodes: []string{"cpu-1", "cpu-1", "cpu-1"}}},
		{name: "no gpu, no ready node", pods: 1, nodes: []Node{cordoned}, wantErr: "no room for 1 pod on the cluster's nodes, which offer: not schedulable (a100-3)"},
		{name: "no node at all", gpu: "T4", pods: 1, wantErr: "which offer: no node"},
		{name: "a100:8 two pods need two 8-GPU nodes", gpu: "A100:8", pods: 2, nodes: all,
			wantErr:  "no room for 2 pods with A100:8 GPUs each",
			wantErr2: "1 × Tesla-T4 (t4-1); 2 × NVIDIA-L40S (l40s-1); 4 × NVIDIA-A100-SXM4-40GB (a100-2); 8 × NVIDIA-A100-SXM4-80GB (a100-1); no GPU (cpu-1); not schedulable (a100-3)"},
		{name: "a100:4 packs two pods on the 8-GPU node first by name", gpu: "A100:4", pods: 3, nodes: all,
			want: GPUFit{Nodes: []string{"a100-1", "a100-1", "a100-2"}, Products: []string{"NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-SXM4-80GB"}}},
		{name: "memory suffix picks the 80GB", gpu: "A100-80GB:2", pods: 4, nodes: all,
			want: GPUFit{Nodes: []string{"a100-1", "a100-1", "a100-1", "a100-1"}, Products: []string{"NVIDIA-A100-SXM4-80GB"}}},
		{name: "memory suffix 40GB", gpu: "a100-40gb:4", pods: 2, nodes: all, wantErr: "no room for 2 pods with A100-40GB:4"},
		{name: "L4 is not L40S", gpu: "L4", pods: 1, nodes: all, wantErr: "no room for 1 pod with L4:1"},
		{name: "L40S", gpu: "L40S:2", pods: 1, nodes: all, want: GPUFit{Nodes: []string{"l40s-1"}, Products: []string{"NVIDIA-L40S"}}},
		{name: "T4 in Tesla-T4", gpu: "T4", pods: 1, nodes: all, want: GPUFit{Nodes: []string{"t4-1"}, Products: []string{"Tesla-T4"}}},
		{name: "memory bound", gpu: "44GB+:2", pods: 5, nodes: all,
			want: GPUFit{Nodes: []string{"a100-1", "a100-1", "a100-1", "a100-1", "l40s-1"}, Products: []string{"NVIDIA-A100-SXM4-80GB", "NVIDIA-L40S"}}},
		{name: "unknown model label", gpu: "A100", pods: 1, nodes: []Node{{Name: "g", GPUs: 2, Schedulable: true}},
			wantErr: "2 × GPU of unknown model (no nvidia.com/gpu.product label) (g)"},
		{name: "H100 asked, none", gpu: "H100:8", pods: 1, nodes: all, wantErr: "no room for 1 pod with H100:8 GPUs each"},
		{name: "bad gpu", gpu: "A100:0", pods: 1, nodes: all, wantErr: `gpu "A100:0": count 0 out of range`},
		{name: "zero pods", gpu: "A100", pods: 0, nodes: all, wantErr: "nodes = 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckGPUs(tt.gpu, tt.pods, tt.nodes)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.wantErr2) {
					t.Fatalf("err = %v, want it to contain %q and %q", err, tt.wantErr, tt.wantErr2)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("fit = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNodeFromAPI(t *testing.T) {
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue}
	notReady := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse}
	gpu := corev1.ResourceList{ResourceGPU: resource.MustParse("4")}
	labels := map[string]string{LabelGPUProduct: "NVIDIA-H100-80GB-HBM3", LabelGPUMemory: "81559"}
	tests := []struct {
		name string
		node corev1.Node
		want Node
	}{
		{"gpu node", corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: labels},
			Status:     corev1.NodeStatus{Allocatable: gpu, Conditions: []corev1.NodeCondition{ready}},
		}, Node{Name: "n1", GPUs: 4, Product: "NVIDIA-H100-80GB-HBM3", MemoryMiB: 81559, Schedulable: true}},
		{"not ready", corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "n2"},
			Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{notReady}},
		}, Node{Name: "n2"}},
		{"cordoned", corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "n3"}, Spec: corev1.NodeSpec{Unschedulable: true},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}},
		}, Node{Name: "n3"}},
		{"tainted", corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "n4"},
			Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "dedicated", Value: "x", Effect: corev1.TaintEffectNoSchedule}}},
			Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}},
		}, Node{Name: "n4"}},
		{"gpu taint is tolerated", corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "n5"},
			Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "nvidia.com/gpu", Effect: corev1.TaintEffectNoSchedule}}},
			Status:     corev1.NodeStatus{Allocatable: gpu, Conditions: []corev1.NodeCondition{ready}},
		}, Node{Name: "n5", GPUs: 4, Schedulable: true}},
	}
	for _, tt := range tests {
		if got := NodeFromAPI(&tt.node); got != tt.want {
			t.Errorf("%s: NodeFromAPI = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
