package kubernetes

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

func TestTrainingJobEnv(t *testing.T) {
	objs, err := TrainingJob(Training{
		Meta:      Meta{Address: "training.ddp", Lineage: "l", Namespace: "ml"},
		Container: Container{Image: "img", GPUs: 2, GPUProducts: []string{"A", "B"}, Env: map[string]string{"Z": "1", "A": "2"}},
		Nodes:     3, RunID: "run-9",
	})
	if err != nil {
		t.Fatal(err)
	}
	c := objs.Job.Spec.Template.Spec.Containers[0]
	env := envOf(c)
	want := map[string]string{
		"NUM_NODES": "3", "NNODES": "3", "MASTER_ADDR": "training-ddp-0.training-ddp", "MASTER_PORT": "29500",
		"GPUS_PER_NODE": "2", "CUDA_VISIBLE_DEVICES": "0,1", "LEPTON_RUN_ID": "run-9",
		"LEPTON_OUTPUT_DIR": DefaultOutputDir, "LEPTON_CHECKPOINT_DIR": DefaultCheckpointDir, "A": "2", "Z": "1",
	}
	for k, v := range want {
		if env[k].Value != v {
			t.Errorf("%s = %q, want %q", k, env[k].Value, v)
		}
	}
	if fr := env["NODE_RANK"].ValueFrom; fr == nil || fr.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("NODE_RANK = %+v", env["NODE_RANK"])
	}
	if c.Env[len(c.Env)-2].Name != "A" || c.Env[len(c.Env)-1].Name != "Z" {
		t.Errorf("user env not last and sorted: %v", c.Env)
	}
	aff := objs.Job.Spec.Template.Spec.Affinity
	if aff == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Values[1] != "B" {
		t.Errorf("two GPU products should be a node affinity: %+v", aff)
	}
	if objs.Service.Spec.Selector[LabelRun] != "run-9" || !objs.Service.Spec.PublishNotReadyAddresses {
		t.Errorf("service = %+v", objs.Service.Spec)
	}
}

func TestBuilderErrors(t *testing.T) {
	m := Meta{Address: "training.x", Namespace: "ml"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no image", func() error { _, err := TrainingJob(Training{Meta: m, Nodes: 1}); return err }(), "image is required"},
		{"no nodes", func() error { _, err := TrainingJob(Training{Meta: m, Container: Container{Image: "i"}}); return err }(), "nodes 0 < 1"},
		{"reserved env", func() error {
			_, err := TrainingJob(Training{Meta: m, Container: Container{Image: "i", Env: map[string]string{"NODE_RANK": "0"}}, Nodes: 1})
			return err
		}(), "env NODE_RANK is set by lepton"},
		{"bad memory", func() error {
			_, err := BatchJob(Batch{Meta: m, Container: Container{Image: "i", Memory: "lots"}})
			return err
		}(), `memory "lots"`},
		{"bad port", func() error {
			_, err := EndpointDeployment(Endpoint{Meta: m, Container: Container{Image: "i"}, Replicas: 1, Port: 0})
			return err
		}(), "port 0 out of range"},
		{"empty quota", func() error { _, err := ResourceQuota(m, "q", Quota{}); return err }(), "no bound"},
	}
	for _, tt := range tests {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, tt.err, tt.want)
		}
	}
}
