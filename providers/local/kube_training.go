package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/leptonml/lepton/internal/ociimage"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/clusters"
	"github.com/leptonml/lepton/providers/kubernetes"
	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/zclconf/go-cty/cty"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// applyKube runs a built-in training as an Indexed Job of one pod in
// lepton's image, or waits again for the Job an interrupted apply started.
func (t *Training) applyKube(ctx context.Context, req providers.ApplyRequest, ts trainingSpec, tg target) (cty.Value, error) {
	kt, c, p, resumed, err := kubeResume(ctx, req, tg)
	if err != nil {
		return cty.NilVal, err
	}
	logf := logger(req.Env)
	if !resumed {
		if p, err = t.startKube(ctx, req, ts, tg, kt, c); err != nil {
			return cty.NilVal, err
		}
	}
	kr := *p.Kube
	res, model, metrics, err := waitKubeJob(ctx, req.Env, c, kr, req.Address, true)
	if err != nil {
		if ctx.Err() != nil {
			return cty.NilVal, err // interrupted: the Job goes on, state says running
		}
		return cty.NilVal, fmt.Errorf("training on %s: %w", tg.address, err)
	}
	digest, err := artifactStore(req.Env.DataDir).PutEncoded(ctx, model)
	if err != nil {
		return cty.NilVal, fmt.Errorf("the model of run %s: %w", p.Run, err)
	}
	if digest != res.Model {
		return cty.NilVal, fmt.Errorf("the model of run %s hashes to %s, but the pod reported %s", p.Run, digest, res.Model)
	}
	if len(metrics) > 0 {
		// The curves are a view (lepton ui): best effort, as locally.
		runstore.PutBytes(ctx, runstore.Sub(storeOf(req.Env.DataDir), runPrefix(req.Address)), "metrics.json", metrics)
	}
	logf("run %s succeeded: model %s", p.Run, digest)
	return trainedValue(req.Planned, digest, res.Metrics, res.EpochsCompleted), nil
}

// kubeJobAlive reports whether the Job k names exists and has not failed.
func kubeJobAlive(ctx context.Context, c *kubernetes.Client, k kubeRun) bool {
	j, err := kubernetes.Get[batchv1.Job](ctx, c, "Job", k.Namespace, k.Name)
	return err == nil && j.DeletionTimestamp == nil && kubernetes.JobState(j).State != kubernetes.StateFailed
}

// startKube pushes the run's image (lepton's plus its inputs), records the
// run in state and creates the Job and its headless Service.
func (t *Training) startKube(ctx context.Context, req providers.ApplyRequest, ts trainingSpec, tg target, kt kubeTarget, c *kubernetes.Client) (runPrivate, error) {
	id := newRunID(req.Address)
	pr := kubernetes.PodRun{Address: req.Address, Objective: ts.objective}
	var files []ociimage.File
	if ts.objective == "q_learning" {
		rs := ts.rl
		pr.RL = &rs
	} else {
		sup := ts.sup
		pr.Train = &sup
		dsVal, ok := req.Env.Lookup(ts.dataset)
		if !ok {
			return runPrivate{}, fmt.Errorf("dataset %s is not in state: apply it first", ts.dataset)
		}
		digest, err := snapshotDataset(ctx, req.Env, ts.dataset, dsVal)
		if err != nil {
			return runPrivate{}, err
		}
		b, err := runstore.ReadAll(ctx, storeOf(req.Env.DataDir), cacheKey(digest))
		if err != nil {
			return runPrivate{}, fmt.Errorf("the snapshot of %s: %w", ts.dataset, err)
		}
		pr.Dataset = "dataset.bin"
		files = append(files, ociimage.File{Path: kubernetes.InputDir + "/" + pr.Dataset, Data: b, Mode: 0o644})
		if ts.base != "" {
			mb, err := artifactStore(req.Env.DataDir).GetEncoded(ctx, ts.base)
			if err != nil {
				return runPrivate{}, fmt.Errorf("base_model: %w", err)
			}
			pr.BaseModel = "base.lmodel"
			files = append(files, ociimage.File{Path: kubernetes.InputDir + "/" + pr.BaseModel, Data: mb, Mode: 0o644})
		}
	}
	rb, err := json.Marshal(pr)
	if err != nil {
		return runPrivate{}, err
	}
	files = append(files, ociimage.File{Path: kubernetes.RunFile, Data: rb, Mode: 0o644})
	bin, err := leptonBinary()
	if err != nil {
		return runPrivate{}, err
	}
	start := time.Now()
	ref, err := kubernetes.PushRunImage(ctx, bin, kt.registry, leptonVersion(), files, kt.run.Name)
	if err != nil {
		return runPrivate{}, err
	}
	logger(req.Env)("pushed %s (%s)", ref, time.Since(start).Round(time.Millisecond))
	kr := kt.run
	kr.Image = ref
	p := runPrivate{Run: id, Cluster: tg.address, Cloud: clusters.Kubernetes, Nodes: []int{0}, Started: nowUTC(), Kube: &kr}
	if err := deleteKube(ctx, kr, req.Address, req.Env.Lineage); err != nil {
		return p, fmt.Errorf("removing the previous run's Job: %w", err)
	}
	if req.Record != nil {
		if err := req.Record(ctx, p.bytes()); err != nil {
			return p, err
		}
	}
	objs, err := kubernetes.TrainingJob(kubernetes.Training{
		Meta: kr.meta(req.Address, req.Env.Lineage),
		Container: kubernetes.Container{
			Image:   ref,
			Command: []string{kubernetes.LeptonBinary, "internal-kube-run", "train", kubernetes.RunFile},
			GPUs:    kt.gpus, GPUProducts: kt.products, ServiceAccount: kubernetes.ServiceAccountName,
		},
		RunID: id, Nodes: 1,
	})
	if err != nil {
		return p, err
	}
	withResultProbe(objs)
	if err := applyTrainingObjects(ctx, c, objs); err != nil {
		return p, err
	}
	logger(req.Env)("started Job %s/%s (run %s)", kr.Namespace, kr.Name, id)
	return p, nil
}

// withResultProbe makes a built-in run's pod ready once its result is
// there to fetch.
func withResultProbe(objs kubernetes.TrainingObjects) {
	ctr := &objs.Job.Spec.Template.Spec.Containers[0]
	ctr.Ports = []corev1.ContainerPort{{Name: "result", ContainerPort: kubernetes.ResultPort, Protocol: corev1.ProtocolTCP}}
	ctr.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/result", Port: intstr.FromInt(kubernetes.ResultPort)}},
		PeriodSeconds: 1, FailureThreshold: 1,
	}
}

func applyTrainingObjects(ctx context.Context, c *kubernetes.Client, objs kubernetes.TrainingObjects) error {
	if _, err := c.Apply(ctx, objs.Service); err != nil {
		return err
	}
	_, err := c.Apply(ctx, objs.Job)
	return err
}

// waitKubeJob follows the Job's pod 0 (its log lines go to the progress
// output) until it ends. A built-in run (fetch) ends ready with its result,
// which is fetched through a port-forward before the pod is let go; a run
// of the user's command ends when the Job completes.
func waitKubeJob(ctx context.Context, env providers.Env, c *kubernetes.Client, k kubeRun, address string, fetch bool) (kubernetes.PodResult, []byte, []byte, error) {
	sel := k.meta(address, "").Selector()
	streaming := ""
	lctx, stopLogs := context.WithCancel(ctx)
	defer stopLogs()
	logDone := make(chan struct{})
	close(logDone)
	lastMsg := ""
	for {
		j, err := kubernetes.Get[batchv1.Job](ctx, c, "Job", k.Namespace, k.Name)
		if apierrors.IsNotFound(err) {
			return kubernetes.PodResult{}, nil, nil, fmt.Errorf("Job %s/%s was deleted", k.Namespace, k.Name)
		}
		if err != nil {
			return kubernetes.PodResult{}, nil, nil, err
		}
		st := kubernetes.JobState(j)
		pods, err := c.Pods(ctx, k.Namespace, sel)
		if err != nil {
			return kubernetes.PodResult{}, nil, nil, err
		}
		var pod0 *corev1.Pod
		for i := range pods {
			if pods[i].Annotations[kubernetes.CompletionIndexAnnotation] == "0" && pods[i].DeletionTimestamp == nil {
				pod0 = &pods[i]
				if pod0.Status.Phase == corev1.PodRunning || pod0.Status.Phase == corev1.PodSucceeded || pod0.Status.Phase == corev1.PodFailed {
					break
				}
			}
		}
		if pod0 != nil && streaming != pod0.Name && pod0.Status.Phase != corev1.PodPending && env.Progress != nil {
			streaming = pod0.Name
			<-logDone
			ch := make(chan struct{})
			logDone = ch
			go func(name string) {
				defer close(ch)
				if rc, err := c.Logs(lctx, k.Namespace, name, true); err == nil {
					io.Copy(env.Progress, rc)
					rc.Close()
				}
			}(pod0.Name)
		}
		switch {
		case st.State == kubernetes.StateFailed:
			return kubernetes.PodResult{}, nil, nil, fmt.Errorf("Job %s/%s failed: %s%s", k.Namespace, k.Name, st.Message, podFailure(pods))
		case st.State == kubernetes.StateSucceeded && !fetch:
			waitLogs(logDone)
			return kubernetes.PodResult{}, nil, nil, nil
		case fetch && pod0 != nil && kubernetes.PodReady(pod0):
			res, model, metrics, err := c.FetchResult(ctx, k.Namespace, pod0.Name)
			if err != nil {
				return res, nil, nil, err
			}
			if err := c.Done(ctx, k.Namespace, pod0.Name); err != nil {
				logger(env)("the pod %s keeps waiting: %v", pod0.Name, err)
			}
			waitLogs(logDone)
			return res, model, metrics, nil
		case st.State == kubernetes.StateSucceeded && fetch:
			return kubernetes.PodResult{}, nil, nil, fmt.Errorf("Job %s/%s ended before lepton fetched its result: run apply again", k.Namespace, k.Name)
		}
		if msg := waitingFor(pods); msg != "" && msg != lastMsg {
			logger(env)("%s", msg)
			lastMsg = msg
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return kubernetes.PodResult{}, nil, nil, err
		}
	}
}

func waitLogs(done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
}

// waitingFor names a reason pods wait (an image that cannot be pulled, no
// node to go to), or "".
func waitingFor(pods []corev1.Pod) string {
	for i := range pods {
		p := &pods[i]
		for _, s := range p.Status.ContainerStatuses {
			if w := s.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
				return fmt.Sprintf("pod %s: %s: %s", p.Name, w.Reason, w.Message)
			}
		}
		for _, cnd := range p.Status.Conditions {
			if cnd.Type == corev1.PodScheduled && cnd.Status == corev1.ConditionFalse && cnd.Message != "" {
				return fmt.Sprintf("pod %s not scheduled: %s", p.Name, cnd.Message)
			}
		}
	}
	return ""
}

// podFailure is what the failed pods' containers said.
func podFailure(pods []corev1.Pod) string {
	var out []string
	for i := range pods {
		for _, s := range pods[i].Status.ContainerStatuses {
			if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
				msg := strings.TrimSpace(t.Message)
				if len(msg) > 600 {
					msg = "…" + msg[len(msg)-600:]
				}
				out = append(out, fmt.Sprintf("pod %s exited %d: %s", pods[i].Name, t.ExitCode, msg))
			}
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "; " + strings.Join(out, "; ")
}

// trainedValue is a finished built-in training's value: its model, metrics
// and epochs (a remote or Kubernetes run's, as a local one's).
func trainedValue(planned cty.Value, digest string, metrics map[string]float64, epochs int) cty.Value {
	mv := map[string]cty.Value{}
	for k, v := range metrics {
		mv[k] = numVal(sig(v))
	}
	metricsVal := cty.MapValEmpty(cty.Number)
	if len(mv) > 0 {
		metricsVal = cty.MapVal(mv)
	}
	return withComputed("training", planned, map[string]cty.Value{
		"model": cty.StringVal(digest), "metrics": metricsVal, "outputs": cty.NullVal(cty.String),
		"epochs_completed": numVal(float64(epochs)), "status": cty.StringVal("succeeded"),
	})
}

// kubeResume connects to tg for the run at address and returns the run an
// interrupted apply recorded (resumed) when its Job still goes on.
func kubeResume(ctx context.Context, req providers.ApplyRequest, tg target) (kubeTarget, *kubernetes.Client, runPrivate, bool, error) {
	kt, err := kubeTargetOf(req.Env, tg, req.Address)
	if err != nil {
		return kt, nil, runPrivate{}, false, err
	}
	c, err := kt.run.client()
	if err != nil {
		return kt, nil, runPrivate{}, false, err
	}
	p, ok := parsePrivate(req.Private)
	if ok && p.Kube != nil && p.Cluster == tg.address && kubeJobAlive(ctx, c, *p.Kube) {
		logger(req.Env)("waiting again for run %s (Job %s/%s)", p.Run, p.Kube.Namespace, p.Kube.Name)
		return kt, c, p, true, nil
	}
	return kt, c, runPrivate{}, false, nil
}
