package kubernetes

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// The tests in this file run against a real kube-apiserver and etcd
// (controller-runtime's envtest), built from Go modules by
// .ci/build-kubernetes.sh and cached by version. KUBEBUILDER_ASSETS names
// their folder (.ci/setup-kubernetes.sh prints it); without it the default
// cache folder is tried. In CI (CI set) missing binaries fail the tests;
// elsewhere they skip.

// kubeVersion is the version .ci/build-kubernetes.sh builds.
const kubeVersion = "v1.36.3"

var apiEnv struct {
	once   sync.Once
	env    *envtest.Environment
	assets string
	client *Client
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if apiEnv.env != nil {
		if err := apiEnv.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}
	if apiEnv.assets != "" {
		os.RemoveAll(apiEnv.assets)
	}
	os.Exit(code)
}

// assetsDir finds etcd and kube-apiserver, or says why not.
func assetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		cache := os.Getenv("LEPTON_K8S_CACHE")
		if cache == "" {
			cache = "/var/cache/lepton/kubernetes"
		}
		dir = filepath.Join(cache, kubeVersion)
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("no %s in %s (build them with: bash .ci/build-kubernetes.sh, or set KUBEBUILDER_ASSETS)", b, dir)
		}
	}
	return dir, nil
}

// apiServer starts (once per test binary) a kube-apiserver and etcd and
// returns a client for them.
func apiServer(t *testing.T) *Client {
	t.Helper()
	dir, err := assetsDir()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and the Kubernetes test binaries are missing: %v", err)
		}
		t.Skipf("skipping the kube-apiserver tests: %v", err)
	}
	apiEnv.once.Do(func() {
		// envtest wants kubectl beside the other binaries; the cache
		// folder may lack it, so give it a folder of links.
		links, err := os.MkdirTemp("", "lepton-envtest-")
		if err != nil {
			apiEnv.err = err
			return
		}
		apiEnv.assets = links
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			kubectl = filepath.Join(dir, "kubectl")
		}
		for name, target := range map[string]string{
			"etcd": filepath.Join(dir, "etcd"), "kube-apiserver": filepath.Join(dir, "kube-apiserver"), "kubectl": kubectl,
		} {
			if err := os.Symlink(target, filepath.Join(links, name)); err != nil {
				apiEnv.err = err
				return
			}
		}
		apiEnv.env = &envtest.Environment{
			BinaryAssetsDirectory:    links,
			ControlPlaneStartTimeout: 2 * time.Minute,
			ControlPlaneStopTimeout:  30 * time.Second,
		}
		cfg, err := apiEnv.env.Start()
		if err != nil {
			apiEnv.err = fmt.Errorf("start kube-apiserver and etcd from %s: %w", dir, err)
			return
		}
		apiEnv.client, apiEnv.err = NewClient(cfg, "default")
	})
	if apiEnv.err != nil {
		t.Fatal(apiEnv.err)
	}
	return apiEnv.client
}

const testLineage = "6f1c1c52-6c0e-4c43-9a3b-0d6b9b8f4a11"

// must returns v; a test's setup step that fails panics, which fails the
// test with the error and its stack.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestAPIServerAcceptsObjects applies every object lepton creates to a real
// API server, whose validation and defaulting are the ones clusters run.
func TestAPIServerAcceptsObjects(t *testing.T) {
	c := apiServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cluster := Meta{Address: `cluster.gpu["a"]`, Lineage: testLineage, Namespace: "lepton-accepts"}
	train := Meta{Address: `training.digits["big"]`, Lineage: testLineage, Namespace: cluster.Namespace}
	batch := Meta{Address: "batch_inference.scores", Lineage: testLineage, Namespace: cluster.Namespace}
	endpoint := Meta{Address: "endpoint.digits", Lineage: testLineage, Namespace: cluster.Namespace}
	image := "registry.example.com/ml/lepton:v1.2.3"

	gpuTraining := must(TrainingJob(Training{
		Meta: train, RunID: "run-1",
		Container: Container{Image: image, Command: []string{"lepton", "agent"}, Env: map[string]string{"A": "1"},
			GPUs: 8, GPUProducts: []string{"NVIDIA-A100-SXM4-80GB"}, CPU: "4", Memory: "16Gi", ServiceAccount: "lepton"},
		Nodes: 4, MaxRestarts: 3,
	}))
	cpuTraining := must(TrainingJob(Training{
		Meta:      Meta{Address: "training.small", Lineage: testLineage, Namespace: cluster.Namespace},
		Container: Container{Image: image, GPUs: 1, GPUProducts: []string{"Tesla-T4", "NVIDIA-L4"}},
		Nodes:     1, RunID: "run-2",
	}))
	bj := must(BatchJob(Batch{Meta: batch, Container: Container{Image: image, Args: []string{"score"}}, RunID: "run-3"}))
	ep := must(EndpointDeployment(Endpoint{Meta: endpoint, Container: Container{Image: image}, Replicas: 2, Port: 8080}))
	quota := must(ResourceQuota(cluster, "lepton", Quota{GPUs: 16, CPU: "64", Memory: "256Gi", Pods: 20}))

	objects := []runtime.Object{
		Namespace(cluster), ServiceAccount(cluster, "lepton"), quota,
		gpuTraining.Service, gpuTraining.Job, cpuTraining.Service, cpuTraining.Job,
		bj, ep.Service, ep.Deployment,
	}
	for _, o := range objects {
		for range 2 { // a second apply of the same object is no change
			stored, err := c.Apply(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			md := stored["metadata"].(map[string]any)
			labels, _ := md["labels"].(map[string]any)
			if labels[LabelManagedBy] != ManagedByValue || labels[LabelLineage] != testLineage {
				t.Errorf("%s %s: stored labels %v", o.GetObjectKind().GroupVersionKind().Kind, md["name"], labels)
			}
		}
	}

	// Everything of the lineage is found by its labels (how orphans are found).
	sel := metav1.ListOptions{LabelSelector: Meta{Lineage: testLineage}.Selector()}
	jobs := must(typedOf(c).BatchV1().Jobs(cluster.Namespace).List(ctx, sel))
	svcs := must(typedOf(c).CoreV1().Services(cluster.Namespace).List(ctx, sel))
	deps := must(typedOf(c).AppsV1().Deployments(cluster.Namespace).List(ctx, sel))
	if len(jobs.Items) != 3 || len(svcs.Items) != 3 || len(deps.Items) != 1 {
		t.Errorf("by lineage: %d jobs, %d services, %d deployments; want 3, 3, 1", len(jobs.Items), len(svcs.Items), len(deps.Items))
	}
	byAddr := must(typedOf(c).BatchV1().Jobs(cluster.Namespace).List(ctx, metav1.ListOptions{LabelSelector: train.Selector()}))
	if len(byAddr.Items) != 1 || byAddr.Items[0].Annotations[AnnotationAddress] != train.Address {
		t.Errorf("by address %s: %d jobs", train.Address, len(byAddr.Items))
	}

	// What the API server defaulted and kept is what the pods need.
	job := must(typedOf(c).BatchV1().Jobs(cluster.Namespace).Get(ctx, gpuTraining.Job.Name, metav1.GetOptions{}))
	if *job.Spec.Completions != 4 || *job.Spec.Parallelism != 4 || *job.Spec.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("job spec: completions %d parallelism %d mode %s", *job.Spec.Completions, *job.Spec.Parallelism, *job.Spec.CompletionMode)
	}
	pod := job.Spec.Template.Spec
	if q := pod.Containers[0].Resources.Limits[ResourceGPU]; q.Value() != 8 {
		t.Errorf("gpu limit = %s", q.String())
	}
	if pod.NodeSelector[LabelGPUProduct] != "NVIDIA-A100-SXM4-80GB" || pod.Subdomain != gpuTraining.Service.Name {
		t.Errorf("node selector %v, subdomain %q", pod.NodeSelector, pod.Subdomain)
	}
	svc := must(typedOf(c).CoreV1().Services(cluster.Namespace).Get(ctx, gpuTraining.Service.Name, metav1.GetOptions{}))
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("rendezvous service ClusterIP = %q, want None", svc.Spec.ClusterIP)
	}

	// The API server does validate: a broken object is refused (so the
	// applies above passing means something).
	bad := ep.Deployment.DeepCopy()
	bad.Spec.Template.Labels = map[string]string{"other": "x"} // no longer matches the selector
	bad.Name = "bad"
	if _, err := c.Apply(ctx, bad); err == nil {
		t.Error("a Deployment whose selector does not match its pods was accepted")
	}
}

// TestStatusAsControllersWriteIt writes Job and Deployment status the way
// the 1.36 controllers do (the API server validates status transitions) and
// reads it back.
func TestStatusAsControllersWriteIt(t *testing.T) {
	c := apiServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := "lepton-status"
	if _, err := c.Apply(ctx, Namespace(Meta{Namespace: ns, Lineage: testLineage})); err != nil {
		t.Fatal(err)
	}
	image := "registry.example.com/ml/lepton:v1"
	newJob := func(addr string, nodes int) *batchv1.Job {
		t.Helper()
		objs := must(TrainingJob(Training{Meta: Meta{Address: addr, Lineage: testLineage, Namespace: ns},
			Container: Container{Image: image}, Nodes: nodes, RunID: "r"}))
		if _, err := c.Apply(ctx, objs.Job); err != nil {
			t.Fatal(err)
		}
		return must(typedOf(c).BatchV1().Jobs(ns).Get(ctx, objs.Job.Name, metav1.GetOptions{}))
	}
	writeStatus := func(j *batchv1.Job, mutate func(*batchv1.JobStatus)) *batchv1.Job {
		t.Helper()
		mutate(&j.Status)
		out, err := typedOf(c).BatchV1().Jobs(ns).UpdateStatus(ctx, j, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("write status of %s: %v", j.Name, err)
		}
		return out
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	cond := func(typ batchv1.JobConditionType, reason, msg string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastProbeTime: now, LastTransitionTime: now}
	}

	// A training of 2 nodes: pending, running, then succeeded.
	ok := newJob("training.ok", 2)
	if st := JobState(ok); st.State != StatePending || st.Terminal() {
		t.Errorf("new job: %+v", st)
	}
	ok = writeStatus(ok, func(s *batchv1.JobStatus) {
		s.StartTime = &now
		s.Active = 2
		s.Ready = new(int32(2))
		s.Terminating = new(int32(0))
	})
	if st := JobState(ok); st.State != StateRunning || st.Active != 2 {
		t.Errorf("running job: %+v", st)
	}
	// The API server holds status to the controller's rules: Complete
	// without SuccessCriteriaMet and a completion time is refused.
	early := ok.DeepCopy()
	early.Status.Succeeded = 2
	early.Status.Active = 0
	early.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobComplete, batchv1.JobReasonCompletionsReached, "")}
	if _, err := typedOf(c).BatchV1().Jobs(ns).UpdateStatus(ctx, early, metav1.UpdateOptions{}); err == nil {
		t.Error("a Job marked Complete without SuccessCriteriaMet and completionTime was accepted")
	}
	ok = writeStatus(ok, func(s *batchv1.JobStatus) {
		s.Active, s.Ready = 0, new(int32(0))
		s.Succeeded = 2
		s.CompletedIndexes = "0-1"
		s.CompletionTime = &now
		s.Conditions = []batchv1.JobCondition{
			cond(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods"),
			cond(batchv1.JobComplete, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods"),
		}
	})
	if st := JobState(ok); st.State != StateSucceeded || !st.Terminal() || st.CompletedIndexes != "0-1" {
		t.Errorf("completed job: %+v", st)
	}

	// A training whose pod failed past its backoff limit.
	bad := newJob("training.bad", 2)
	bad = writeStatus(bad, func(s *batchv1.JobStatus) {
		s.StartTime = &now
		s.Active = 2
		s.Ready = new(int32(0))
		s.Terminating = new(int32(0))
	})
	bad = writeStatus(bad, func(s *batchv1.JobStatus) {
		s.Active = 0
		s.Failed = 1
		s.Conditions = []batchv1.JobCondition{
			cond(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"),
		}
	})
	if st := JobState(bad); st.State != StateFailed || st.Message != "BackoffLimitExceeded: Job has reached the specified backoff limit" {
		t.Errorf("failing job: %+v", st)
	}
	bad = writeStatus(bad, func(s *batchv1.JobStatus) {
		s.Conditions = append(s.Conditions,
			cond(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"))
	})
	if st := JobState(bad); st.State != StateFailed || !st.Terminal() {
		t.Errorf("failed job: %+v", st)
	}

	// An endpoint Deployment rolling out, then serving.
	objs := must(EndpointDeployment(Endpoint{Meta: Meta{Address: "endpoint.e", Lineage: testLineage, Namespace: ns},
		Container: Container{Image: image}, Replicas: 2, Port: 8080}))
	if _, err := c.Apply(ctx, objs.Deployment); err != nil {
		t.Fatal(err)
	}
	d := must(typedOf(c).AppsV1().Deployments(ns).Get(ctx, objs.Deployment.Name, metav1.GetOptions{}))
	if st := DeploymentState(d); st.State != StatePending {
		t.Errorf("new deployment: %+v", st)
	}
	writeDep := func(mutate func(*appsv1.DeploymentStatus)) {
		t.Helper()
		mutate(&d.Status)
		d = must(typedOf(c).AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}))
	}
	writeDep(func(s *appsv1.DeploymentStatus) {
		s.ObservedGeneration = d.Generation
		s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, s.UnavailableReplicas = 2, 2, 1, 1, 1
	})
	if st := DeploymentState(d); st.State != StateRunning || st.RolledOut {
		t.Errorf("half-ready deployment: %+v", st)
	}
	writeDep(func(s *appsv1.DeploymentStatus) {
		s.ReadyReplicas, s.AvailableReplicas, s.UnavailableReplicas = 2, 2, 0
		s.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now}}
	})
	if st := DeploymentState(d); st.State != StateServing || !st.RolledOut {
		t.Errorf("ready deployment: %+v", st)
	}
	writeDep(func(s *appsv1.DeploymentStatus) {
		s.Conditions = append(s.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
			Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "e-1" has timed out progressing.`, LastUpdateTime: now, LastTransitionTime: now})
	})
	if st := DeploymentState(d); st.State != StateFailed {
		t.Errorf("stalled deployment: %+v", st)
	}
}
