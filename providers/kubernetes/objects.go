package kubernetes

import (
	"errors"
	"fmt"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Kubernetes names of GPU resources and the labels GPU feature discovery
// sets on nodes.
const (
	ResourceGPU          corev1.ResourceName = "nvidia.com/gpu"
	LabelGPUProduct                          = "nvidia.com/gpu.product"
	LabelGPUMemory                           = "nvidia.com/gpu.memory" // MiB per GPU
	DefaultMasterPort                        = 29500
	DefaultOutputDir                         = "/lepton/output"
	DefaultCheckpointDir                     = "/lepton/checkpoints"
	// CompletionIndexAnnotation is where the Job controller writes a pod's
	// index in an Indexed Job.
	CompletionIndexAnnotation = "batch.kubernetes.io/job-completion-index"
)

// Namespace is the namespace a cluster owns.
func Namespace(m Meta) *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: m.Namespace, Labels: m.Labels(), Annotations: m.annotations()},
	}
}

// ServiceAccount is the account lepton's pods run as in m.Namespace.
func ServiceAccount(m Meta, name string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: m.object(name),
		// Lepton's pods do not call the API server.
		AutomountServiceAccountToken: new(false),
	}
}

// Quota bounds what a cluster's namespace may use; zero fields are no bound.
type Quota struct {
	GPUs   int64
	CPU    string // a quantity, e.g. "16" or "500m"
	Memory string // a quantity, e.g. "64Gi"
	Pods   int64
}

// ResourceQuota is the optional quota of a cluster's namespace.
func ResourceQuota(m Meta, name string, q Quota) (*corev1.ResourceQuota, error) {
	hard := corev1.ResourceList{}
	if q.GPUs > 0 {
		hard["requests."+ResourceGPU] = *resource.NewQuantity(q.GPUs, resource.DecimalSI)
	}
	for _, f := range []struct {
		name corev1.ResourceName
		val  string
	}{{corev1.ResourceRequestsCPU, q.CPU}, {corev1.ResourceRequestsMemory, q.Memory}} {
		if f.val == "" {
			continue
		}
		v, err := resource.ParseQuantity(f.val)
		if err != nil {
			return nil, fmt.Errorf("quota %s %q: %w", f.name, f.val, err)
		}
		hard[f.name] = v
	}
	if q.Pods > 0 {
		hard[corev1.ResourcePods] = *resource.NewQuantity(q.Pods, resource.DecimalSI)
	}
	if len(hard) == 0 {
		return nil, errors.New("quota: no bound set")
	}
	return &corev1.ResourceQuota{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"},
		ObjectMeta: m.object(name),
		Spec:       corev1.ResourceQuotaSpec{Hard: hard},
	}, nil
}

func (m Meta) object(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: m.Namespace, Labels: m.Labels(), Annotations: m.annotations()}
}

// Container is what runs in each pod.
type Container struct {
	Image      string
	Command    []string
	Args       []string
	WorkingDir string
	Env        map[string]string
	// GPUs per pod (nvidia.com/gpu limit); GPUProducts, when GPUs are asked,
	// are the nvidia.com/gpu.product label values of the nodes that fit
	// (CheckGPUs gives them): one is a node selector, several a node
	// affinity.
	GPUs        int64
	GPUProducts []string
	CPU         string // request, a quantity; optional
	Memory      string // request and limit, a quantity; optional
	// ServiceAccount the pods run as; optional.
	ServiceAccount string
	// PullPolicy; IfNotPresent when empty.
	PullPolicy corev1.PullPolicy
}

func (c Container) validate(what string) error {
	if c.Image == "" {
		return fmt.Errorf("%s: image is required", what)
	}
	if c.GPUs < 0 {
		return fmt.Errorf("%s: gpus %d < 0", what, c.GPUs)
	}
	return nil
}

// podSpec builds the pod spec of c with extra environment variables first
// (the user's Env may not override them: they are lepton's contract).
func (c Container) podSpec(name string, restart corev1.RestartPolicy, env []corev1.EnvVar) (corev1.PodSpec, error) {
	res := corev1.ResourceRequirements{}
	if c.GPUs > 0 {
		res.Limits = corev1.ResourceList{ResourceGPU: *resource.NewQuantity(c.GPUs, resource.DecimalSI)}
	}
	for _, q := range []struct {
		name  corev1.ResourceName
		val   string
		limit bool
	}{{corev1.ResourceCPU, c.CPU, false}, {corev1.ResourceMemory, c.Memory, true}} {
		if q.val == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.val)
		if err != nil {
			return corev1.PodSpec{}, fmt.Errorf("%s %s %q: %w", name, q.name, q.val, err)
		}
		if res.Requests == nil {
			res.Requests = corev1.ResourceList{}
		}
		res.Requests[q.name] = v
		if q.limit {
			if res.Limits == nil {
				res.Limits = corev1.ResourceList{}
			}
			res.Limits[q.name] = v
		}
	}
	reserved := map[string]bool{}
	for _, e := range env {
		reserved[e.Name] = true
	}
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		if reserved[k] {
			return corev1.PodSpec{}, fmt.Errorf("%s: env %s is set by lepton", name, k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, corev1.EnvVar{Name: k, Value: c.Env[k]})
	}
	pull := c.PullPolicy
	if pull == "" {
		pull = corev1.PullIfNotPresent
	}
	spec := corev1.PodSpec{
		RestartPolicy:                 restart,
		ServiceAccountName:            c.ServiceAccount,
		TerminationGracePeriodSeconds: new(int64(30)),
		Containers: []corev1.Container{{
			Name:                     "main",
			Image:                    c.Image,
			Command:                  c.Command,
			Args:                     c.Args,
			WorkingDir:               c.WorkingDir,
			Env:                      env,
			Resources:                res,
			ImagePullPolicy:          pull,
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		}},
	}
	if c.GPUs > 0 {
		switch len(c.GPUProducts) {
		case 0:
		case 1:
			spec.NodeSelector = map[string]string{LabelGPUProduct: c.GPUProducts[0]}
		default:
			spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
						Key: LabelGPUProduct, Operator: corev1.NodeSelectorOpIn, Values: c.GPUProducts,
					}}}},
				},
			}}
		}
	}
	return spec, nil
}

// Training is a training run on Nodes pods.
type Training struct {
	Meta
	Container
	RunID string
	Nodes int
	// MasterPort is the rendezvous port on pod 0; DefaultMasterPort when 0.
	MasterPort    int
	OutputDir     string
	CheckpointDir string
	// MaxRestarts is the Job's backoffLimit: pod failures survived.
	MaxRestarts int
}

// TrainingObjects are what a training creates.
type TrainingObjects struct {
	Job *batchv1.Job
	// Service is headless: it gives each pod a DNS name
	// (NAME-INDEX.NAME) for the rendezvous.
	Service *corev1.Service
}

// TrainingJob builds a training as an Indexed Job of Nodes completions run
// all at once, one pod per node of the training, and its headless Service.
// Each pod gets the torchrun variables (NODE_RANK from its completion index,
// NUM_NODES and NNODES, MASTER_ADDR naming pod 0, MASTER_PORT,
// GPUS_PER_NODE) and LEPTON_RUN_ID, LEPTON_OUTPUT_DIR, LEPTON_CHECKPOINT_DIR.
func TrainingJob(t Training) (TrainingObjects, error) {
	if err := t.validate("training " + t.Address); err != nil {
		return TrainingObjects{}, err
	}
	if t.Nodes < 1 {
		return TrainingObjects{}, fmt.Errorf("training %s: nodes %d < 1", t.Address, t.Nodes)
	}
	if t.MaxRestarts < 0 {
		return TrainingObjects{}, fmt.Errorf("training %s: max_restarts %d < 0", t.Address, t.MaxRestarts)
	}
	name := ObjectName(t.Address)
	port := t.MasterPort
	if port == 0 {
		port = DefaultMasterPort
	}
	if port < 1 || port > 65535 {
		return TrainingObjects{}, fmt.Errorf("training %s: master port %d out of range", t.Address, port)
	}
	out, ckpt := t.OutputDir, t.CheckpointDir
	if out == "" {
		out = DefaultOutputDir
	}
	if ckpt == "" {
		ckpt = DefaultCheckpointDir
	}
	nodes := strconv.Itoa(t.Nodes)
	env := []corev1.EnvVar{
		{Name: "NODE_RANK", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
			FieldPath: "metadata.annotations['" + CompletionIndexAnnotation + "']",
		}}},
		{Name: "NUM_NODES", Value: nodes},
		{Name: "NNODES", Value: nodes},
		// Pod 0's name under the headless Service; the Job controller names
		// an Indexed Job's pods' hosts NAME-INDEX.
		{Name: "MASTER_ADDR", Value: fmt.Sprintf("%s-0.%s", name, name)},
		{Name: "MASTER_PORT", Value: strconv.Itoa(port)},
		{Name: "GPUS_PER_NODE", Value: strconv.FormatInt(t.GPUs, 10)},
		{Name: "LEPTON_RUN_ID", Value: t.RunID},
		{Name: "LEPTON_OUTPUT_DIR", Value: out},
		{Name: "LEPTON_CHECKPOINT_DIR", Value: ckpt},
	}
	if t.GPUs > 0 {
		ids := make([]byte, 0, 2*t.GPUs)
		for i := int64(0); i < t.GPUs; i++ {
			if i > 0 {
				ids = append(ids, ',')
			}
			ids = strconv.AppendInt(ids, i, 10)
		}
		env = append(env, corev1.EnvVar{Name: "CUDA_VISIBLE_DEVICES", Value: string(ids)})
	}
	spec, err := t.podSpec("training "+t.Address, corev1.RestartPolicyNever, env)
	if err != nil {
		return TrainingObjects{}, err
	}
	spec.Subdomain = name
	mount(&spec, "output", out)
	mount(&spec, "checkpoints", ckpt)

	podLabels := t.Labels()
	if t.RunID != "" {
		podLabels[LabelRun] = LabelValue(t.RunID)
	}
	jobMeta := t.object(name)
	jobMeta.Labels = podLabels
	indexed := batchv1.IndexedCompletion
	n := int32(t.Nodes)
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: jobMeta,
		Spec: batchv1.JobSpec{
			CompletionMode: &indexed,
			Completions:    &n,
			Parallelism:    &n,
			BackoffLimit:   new(int32(t.MaxRestarts)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: t.annotations()},
				Spec:       spec,
			},
		},
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: t.object(name),
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  podLabels,
			// Pod 0 must be found before it is ready: the rendezvous is what
			// makes the run start.
			PublishNotReadyAddresses: true,
			Ports: []corev1.ServicePort{{
				Name: "rendezvous", Port: int32(port), TargetPort: intstr.FromInt(port), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
	return TrainingObjects{Job: job, Service: svc}, nil
}

// mount gives the pod an emptyDir at path (the run's output or checkpoints
// folder, which the run uploads itself).
func mount(spec *corev1.PodSpec, name, path string) {
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	c := &spec.Containers[0]
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: path})
}

// Batch is a batch inference: one pod that runs to completion.
type Batch struct {
	Meta
	Container
	RunID       string
	OutputDir   string
	MaxRestarts int
}

// BatchJob builds a batch inference as a Job of one pod.
func BatchJob(b Batch) (*batchv1.Job, error) {
	if err := b.validate("batch_inference " + b.Address); err != nil {
		return nil, err
	}
	if b.MaxRestarts < 0 {
		return nil, fmt.Errorf("batch_inference %s: max_restarts %d < 0", b.Address, b.MaxRestarts)
	}
	out := b.OutputDir
	if out == "" {
		out = DefaultOutputDir
	}
	spec, err := b.podSpec("batch_inference "+b.Address, corev1.RestartPolicyNever, []corev1.EnvVar{
		{Name: "LEPTON_RUN_ID", Value: b.RunID},
		{Name: "LEPTON_OUTPUT_DIR", Value: out},
	})
	if err != nil {
		return nil, err
	}
	mount(&spec, "output", out)
	labels := b.Labels()
	if b.RunID != "" {
		labels[LabelRun] = LabelValue(b.RunID)
	}
	meta := b.object(ObjectName(b.Address))
	meta.Labels = labels
	one := int32(1)
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta,
		Spec: batchv1.JobSpec{
			Completions:  &one,
			Parallelism:  &one,
			BackoffLimit: new(int32(b.MaxRestarts)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: b.annotations()},
				Spec:       spec,
			},
		},
	}, nil
}

// Health routes of lepton's model server (runtime/serve).
const (
	ReadyPath = "/v2/health/ready"
	LivePath  = "/v2/health/live"
)

// Endpoint is a model server of Replicas pods behind a Service.
type Endpoint struct {
	Meta
	Container
	Replicas int
	// Port the server listens on in the pod (and the Service's port).
	Port int
}

// EndpointObjects are what an endpoint creates.
type EndpointObjects struct {
	Deployment *appsv1.Deployment
	Service    *corev1.Service
}

// EndpointDeployment builds an endpoint as a Deployment whose pods are
// ready only when the server's ready route answers, restarted when its live
// route stops answering, and rolled one new pod at a time with none taken
// away before its successor is ready (a new model is a rolling update with
// no failed request), plus a Service in front of them.
func EndpointDeployment(e Endpoint) (EndpointObjects, error) {
	if err := e.validate("endpoint " + e.Address); err != nil {
		return EndpointObjects{}, err
	}
	if e.Replicas < 0 {
		return EndpointObjects{}, fmt.Errorf("endpoint %s: replicas %d < 0", e.Address, e.Replicas)
	}
	if e.Port < 1 || e.Port > 65535 {
		return EndpointObjects{}, fmt.Errorf("endpoint %s: port %d out of range 1..65535", e.Address, e.Port)
	}
	name := ObjectName(e.Address)
	spec, err := e.podSpec("endpoint "+e.Address, corev1.RestartPolicyAlways, nil)
	if err != nil {
		return EndpointObjects{}, err
	}
	c := &spec.Containers[0]
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: int32(e.Port), Protocol: corev1.ProtocolTCP}}
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
			PeriodSeconds:    period,
			TimeoutSeconds:   2,
			FailureThreshold: failures,
		}
	}
	c.ReadinessProbe = probe(ReadyPath, 2, 2)
	c.LivenessProbe = probe(LivePath, 10, 3)
	// A model can take a while to load: liveness waits until the server
	// has started.
	c.StartupProbe = probe(LivePath, 2, 60)
	// Let the Service stop sending requests before the server drains.
	c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 3}}}

	podLabels := e.Labels()
	replicas := int32(e.Replicas)
	zero, one := intstr.FromInt(0), intstr.FromInt(1)
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: e.object(name),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &one},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: e.annotations()},
				Spec:       spec,
			},
		},
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: e.object(name),
		Spec: corev1.ServiceSpec{
			Selector: podLabels,
			Ports: []corev1.ServicePort{{
				Name: "http", Port: int32(e.Port), TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
	return EndpointObjects{Deployment: dep, Service: svc}, nil
}
