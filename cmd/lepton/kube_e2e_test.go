package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/leptonml/lepton/providers/kubernetes"
)

// The built binary against the single-node cluster .ci/setup-kubernetes.sh
// starts (real pods): a built-in training as a Job gives the model the same
// training gives on this machine, a batch inference Job the same
// predictions; an endpoint Deployment of 2 replicas
// answers predict through a port-forward, scales to 3 in place, comes back
// after its Deployment is deleted; a two-pod run meets through
// NODE_RANK/NUM_NODES/MASTER_ADDR; a cluster asking for GPUs no node has
// fails at plan; destroy leaves no object with the state's labels.
func TestKubernetesEndToEnd(t *testing.T) {
	kc, reg, busybox := os.Getenv("LEPTON_TEST_KUBECONFIG"), os.Getenv("LEPTON_TEST_REGISTRY"), os.Getenv("LEPTON_TEST_BUSYBOX_IMAGE")
	if kc == "" || reg == "" || busybox == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and LEPTON_TEST_KUBECONFIG, LEPTON_TEST_REGISTRY or LEPTON_TEST_BUSYBOX_IMAGE is not: .ci/setup-kubernetes.sh did not start the test cluster")
		}
		t.Skip("skipping the Kubernetes end-to-end test: no test cluster (eval \"$(bash .ci/setup-kubernetes.sh)\" starts one)")
	}
	c, err := kubernetes.Connect(kubernetes.Config{Kubeconfig: kc})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	training := `
dataset "iris" {
  source {
    builtin = "iris"
  }
  label = "label"
}

training "iris" {
  dataset   = dataset.iris
  objective = "classification"
  model {
    kind   = "mlp"
    hidden = [16]
  }
  epochs     = 5
  batch_size = 16
  seed       = 7
  CLUSTER
}

batch_inference "scores" {
  model   = training.iris.model
  dataset = dataset.iris
  output  = "out/scores.csv"
  CLUSTER
}
`
	// The same training on this machine, for its model's digest.
	local := t.TempDir()
	write(t, local, "main.lep.hcl", strings.ReplaceAll(training, "CLUSTER", ""))
	ok(t, local, "apply", "-auto-approve")
	want := readState(t, local).Find("training.iris").Attributes
	var lattrs struct{ Model string }
	json.Unmarshal(want, &lattrs)
	var lbatch struct{ Digest string }
	json.Unmarshal(readState(t, local).Find("batch_inference.scores").Attributes, &lbatch)

	dir := t.TempDir()
	config := fmt.Sprintf(`
provider "kubernetes" {
  kubeconfig = %q
  registry   = %q
}

cluster "k" {
  clouds = ["kubernetes"]
  nodes  = 2
}
`, kc, reg) + strings.ReplaceAll(training, "CLUSTER", "cluster = cluster.k") + fmt.Sprintf(`
endpoint "iris" {
  model    = training.iris.model
  cluster  = cluster.k
  replicas = 2
}

training "meet" {
  cluster = cluster.k
  run {
    image   = %q
    command = ["sh", "-c", <<-SH
      set -e
      test "$NUM_NODES" = 2
      echo "rank $NODE_RANK of $NUM_NODES, master $MASTER_ADDR:$MASTER_PORT"
      if [ "$NODE_RANK" = 0 ]; then
        msg=$(nc -l -p "$MASTER_PORT")
        echo "rank 0 got: $msg"
        test "$msg" = "hello from rank 1"
      else
        for i in $(seq 1 60); do
          if echo "hello from rank 1" | nc "$MASTER_ADDR" "$MASTER_PORT"; then exit 0; fi
          sleep 1
        done
        exit 1
      fi
    SH
    ]
  }
}
`, busybox)
	write(t, dir, "main.lep.hcl", config)
	lineage := ""
	t.Cleanup(func() {
		if t.Failed() {
			lep(t, dir, "destroy", "-auto-approve")
		}
	})
	start := time.Now()
	r := ok(t, dir, "apply", "-auto-approve")
	t.Logf("apply on Kubernetes: %s", time.Since(start).Round(time.Millisecond))
	contains(t, r.all(), "rank 0 got: hello from rank 1", "started Job")
	st := readState(t, dir)
	lineage = st.Lineage
	var kattrs struct{ Model string }
	json.Unmarshal(st.Find("training.iris").Attributes, &kattrs)
	if kattrs.Model == "" || kattrs.Model != lattrs.Model {
		t.Fatalf("the model trained as a Job is %q, on this machine %q", kattrs.Model, lattrs.Model)
	}
	var kbatch struct{ Digest string }
	json.Unmarshal(st.Find("batch_inference.scores").Attributes, &kbatch)
	if kbatch.Digest == "" || kbatch.Digest != lbatch.Digest {
		t.Errorf("the predictions of the batch Job are %q, on this machine %q", kbatch.Digest, lbatch.Digest)
	}

	r = ok(t, dir, "predict", "endpoint.iris", "-input", "[[5.1, 3.5, 1.4, 0.2]]")
	contains(t, r.stdout, `"predictions"`)
	ok(t, dir, "logs", "training.meet")
	r = ok(t, dir, "status")
	contains(t, r.stdout, "2 of 2 replicas ready", "restarts")

	ns := ""
	for _, res := range st.Resources {
		if res.Address == "cluster.k" {
			var a struct{ Region string }
			json.Unmarshal(res.Attributes, &a)
			ns = a.Region
		}
	}
	rsBefore := replicaSets(t, c, ns)

	// replicas = 3 is an in-place scale: the same ReplicaSet, one more pod.
	edit(t, dir, "main.lep.hcl", "replicas = 2", "replicas = 3")
	r = ok(t, dir, "plan")
	contains(t, r.stdout, "update in-place", "replicas       = 2 -> 3")
	lacks(t, r.stdout, "must be replaced")
	ok(t, dir, "apply", "-auto-approve")
	if after := replicaSets(t, c, ns); after != rsBefore {
		t.Errorf("scaling made a new ReplicaSet: %s -> %s", rsBefore, after)
	}
	ok(t, dir, "predict", "endpoint.iris", "-input", "[[6.7, 3.0, 5.2, 2.3]]")

	// A new model is a rolling update: no request fails while it rolls.
	edit(t, dir, "main.lep.hcl", "seed       = 7", "seed       = 8")
	stop := make(chan struct{})
	failed := make(chan string, 1)
	calls := 0
	go func() {
		defer close(failed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			calls++
			if r := lep(t, dir, "predict", "endpoint.iris", "-input", "[[5.1, 3.5, 1.4, 0.2]]"); r.code != 0 {
				failed <- r.String()
				return
			}
		}
	}()
	r = ok(t, dir, "apply", "-auto-approve")
	close(stop)
	if f, bad := <-failed; bad {
		t.Errorf("a request failed during the rolling update:\n%s", f)
	}
	t.Logf("%d predictions during the rolling update", calls)
	contains(t, r.all(), "rolling out")

	// A deleted Deployment is drift, and the next apply brings it back.
	if err := typed(t, c).AppsV1().Deployments(ns).Delete(ctx, "endpoint-iris", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r = ok(t, dir, "plan")
	contains(t, r.stdout, "endpoint.iris has been deleted", "1 to add")
	ok(t, dir, "apply", "-auto-approve")
	ok(t, dir, "predict", "endpoint.iris", "-input", "[[5.1, 3.5, 1.4, 0.2]]")
	r = ok(t, dir, "plan")
	contains(t, r.stdout, "No changes")

	// GPUs no node has fail at plan, naming what the nodes offer.
	gdir := t.TempDir()
	write(t, gdir, "main.lep.hcl", fmt.Sprintf(`
provider "kubernetes" {
  kubeconfig = %q
}
cluster "gpu" {
  clouds = ["kubernetes"]
  gpu    = "A100:8"
}
`, kc))
	r = exits(t, 1, gdir, "plan")
	contains(t, r.all(), "main.lep.hcl:7", "no room for 1 pod with A100:8 GPUs each", "which offer: no GPU")

	ok(t, dir, "destroy", "-auto-approve")
	left, err := kubernetes.Labeled(ctx, c, "", kubernetes.Meta{Lineage: lineage}.Selector())
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("destroy left objects with the state's labels: %v", left)
	}
}

// typed is a typed clientset for c's cluster (lepton links only the
// dynamic client).
func typed(t *testing.T, c *kubernetes.Client) k8s.Interface {
	t.Helper()
	cs, err := k8s.NewForConfig(c.REST)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// replicaSets names the ReplicaSets of namespace ns.
func replicaSets(t *testing.T, c *kubernetes.Client, ns string) string {
	t.Helper()
	list, err := typed(t, c).AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, rs := range list.Items {
		names = append(names, rs.Name)
	}
	return strings.Join(names, ",")
}
