package kubernetes

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The tests in this file run real pods on the single-node cluster that
// .ci/setup-kubernetes.sh starts. They read LEPTON_TEST_KUBECONFIG (never
// KUBECONFIG: a developer's may name a real cluster) and
// LEPTON_TEST_BUSYBOX_IMAGE, which that script prints.

func realCluster(t *testing.T) (*Client, string) {
	t.Helper()
	kc, image := os.Getenv("LEPTON_TEST_KUBECONFIG"), os.Getenv("LEPTON_TEST_BUSYBOX_IMAGE")
	if kc == "" || image == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and LEPTON_TEST_KUBECONFIG or LEPTON_TEST_BUSYBOX_IMAGE is not: .ci/setup-kubernetes.sh did not start the test cluster")
		}
		t.Skip("skipping the real-pod tests: no test cluster (eval \"$(bash .ci/setup-kubernetes.sh)\" starts one)")
	}
	c, err := Connect(Config{Kubeconfig: kc})
	if err != nil {
		t.Fatal(err)
	}
	return c, image
}

// testNamespace applies a fresh namespace and deletes it at the end.
func testNamespace(t *testing.T, c *Client, name string) Meta {
	t.Helper()
	ctx := context.Background()
	m := Meta{Namespace: name, Lineage: testLineage}
	_ = typedOf(c).CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := c.Apply(ctx, Namespace(m))
		if err == nil {
			break
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "being terminated") {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	deadline = time.Now().Add(time.Minute)
	for { // the controller-manager creates the default service account
		if _, err := typedOf(c).CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{}); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Cleanup(func() {
		_ = typedOf(c).CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return m
}

// podLogs returns the logs of the pods matching sel, for failure messages.
func podLogs(c *Client, ns, sel string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, err := typedOf(c).CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		b.WriteString("--- " + p.Name + " (" + string(p.Status.Phase) + ")\n")
		raw, err := typedOf(c).CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{}).Do(ctx).Raw()
		if err != nil {
			b.WriteString("logs: " + err.Error() + "\n")
		}
		b.Write(raw)
	}
	return b.String()
}

// TestIndexedJobRendezvous runs a 2-node training as lepton builds it, with
// busybox as the program: each pod checks the variables lepton sets, then
// pod 1 finds pod 0 by MASTER_ADDR through the cluster DNS and the headless
// Service and sends it its rank over MASTER_PORT, as torchrun's rendezvous
// would.
func TestIndexedJobRendezvous(t *testing.T) {
	c, image := realCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := testNamespace(t, c, "lepton-test-rendezvous")
	script := `set -eu
test "$NUM_NODES" = 2 && test "$NNODES" = 2 && test -n "$MASTER_ADDR" && test "$LEPTON_RUN_ID" = run-1
echo "rank $NODE_RANK of $NUM_NODES, master $MASTER_ADDR:$MASTER_PORT"
if [ "$NODE_RANK" = 0 ]; then
  got=$(timeout 120 nc -l -p "$MASTER_PORT")
  echo "master got: $got"
  test "$got" = "hello from rank 1"
else
  # busybox is static glibc, whose getaddrinfo cannot load its DNS module
  # in this image: ask the cluster DNS with busybox's own nslookup.
  for i in $(seq 1 120); do
    ip=$(nslookup "$MASTER_ADDR.NAMESPACE.svc.cluster.local" 2>/dev/null | awk '/^Name:/ {n=1} n && /^Address/ {print $NF}' | tail -1)
    if [ -n "$ip" ] && echo "hello from rank $NODE_RANK" | nc "$ip" "$MASTER_PORT"; then
      echo "reached $MASTER_ADDR at $ip"
      exit 0
    fi
    sleep 1
  done
  exit 1
fi`
	script = strings.ReplaceAll(script, "NAMESPACE", ns.Namespace)
	m := ns
	m.Address = "training.ddp"
	objs, err := TrainingJob(Training{
		Meta:      m,
		Container: Container{Image: image, Command: []string{"/bin/sh", "-c", script}},
		Nodes:     2, RunID: "run-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []runtime.Object{objs.Service, objs.Job} {
		if _, err := c.Apply(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	var st JobStatus
	for {
		j, err := typedOf(c).BatchV1().Jobs(m.Namespace).Get(ctx, objs.Job.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st = JobState(j); st.Terminal() {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("job still %s after %s: %s\n%s", st.State, time.Since(start), st.Message, podLogs(c, m.Namespace, m.Selector()))
		}
		time.Sleep(500 * time.Millisecond)
	}
	logs := podLogs(c, m.Namespace, m.Selector())
	if st.State != StateSucceeded || st.CompletedIndexes != "0,1" && st.CompletedIndexes != "0-1" {
		t.Fatalf("job %+v\n%s", st, logs)
	}
	if !strings.Contains(logs, "master got: hello from rank 1") {
		t.Errorf("pod 0 did not hear from pod 1:\n%s", logs)
	}
	t.Logf("2-pod indexed job succeeded in %s", time.Since(start).Round(100*time.Millisecond))
}

// TestEndpointDeploymentScales runs an endpoint as lepton builds it, with
// busybox's httpd answering the health routes in place of lepton's server:
// its pods become ready through the readiness probe, and 2 replicas scaled
// to 3 keep the same ReplicaSet and pods (an in-place update, no rollout).
func TestEndpointDeploymentScales(t *testing.T) {
	c, image := realCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := testNamespace(t, c, "lepton-test-endpoint")
	m := ns
	m.Address = "endpoint.digits"
	script := `mkdir -p /www/v2/health && echo ok >/www` + ReadyPath + ` && echo ok >/www` + LivePath + ` && exec httpd -f -p 8080 -h /www`
	build := func(replicas int) EndpointObjects {
		objs, err := EndpointDeployment(Endpoint{Meta: m, Container: Container{Image: image, Command: []string{"/bin/sh", "-c", script}}, Replicas: replicas, Port: 8080})
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	waitServing := func(objs EndpointObjects) {
		t.Helper()
		start := time.Now()
		for {
			d, err := typedOf(c).AppsV1().Deployments(m.Namespace).Get(ctx, objs.Deployment.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			st := DeploymentState(d)
			if st.State == StateServing {
				t.Logf("%d replicas serving after %s", st.Replicas, time.Since(start).Round(100*time.Millisecond))
				return
			}
			if st.State == StateFailed || ctx.Err() != nil {
				t.Fatalf("deployment %+v\n%s", st, podLogs(c, m.Namespace, m.Selector()))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	podNames := func() map[string]bool {
		pods, err := typedOf(c).CoreV1().Pods(m.Namespace).List(ctx, metav1.ListOptions{LabelSelector: m.Selector()})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				out[p.Name] = true
			}
		}
		return out
	}
	two := build(2)
	for _, o := range []runtime.Object{two.Service, two.Deployment} {
		if _, err := c.Apply(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitServing(two)
	before := podNames()
	three := build(3)
	if _, err := c.Apply(ctx, three.Deployment); err != nil {
		t.Fatal(err)
	}
	waitServing(three)
	after := podNames()
	if len(after) != 3 {
		t.Fatalf("pods after scaling to 3: %v", after)
	}
	for p := range before {
		if !after[p] {
			t.Errorf("pod %s was replaced by the scale: not an in-place update (before %v, after %v)", p, before, after)
		}
	}
}
