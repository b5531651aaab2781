package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/leptonml/lepton/internal/ociimage"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/clusters"
	"github.com/leptonml/lepton/providers/kubernetes"
	"github.com/leptonml/lepton/runtime/serve"
	"github.com/zclconf/go-cty/cty"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// An endpoint on Kubernetes is a Deployment of `replicas` pods, each a
// model server (lepton internal-kube-run serve) in an image of lepton plus
// the model, and a Service in front of them. A new replica count changes
// only the Deployment's replicas (an in-place scale); a new model is a new
// image, rolled one pod at a time with none taken away before its
// successor is ready. The token is a Secret the pods read.

// Where an endpoint's pod keeps its model and spec, and listens.
const (
	kubeServePort  = 8080
	kubeArtifacts  = "/lepton/artifacts"
	kubeServeSpec  = "/lepton/serve.json"
	annotModel     = "lepton.dev/model"
	annotTokenHash = "lepton.dev/token-sha256"
)

func (e *Endpoint) applyKube(ctx context.Context, req providers.ApplyRequest, a endpointArgs, token string, tg target) (cty.Value, error) {
	kt, err := kubeTargetOf(req.Env, tg, req.Address)
	if err != nil {
		return cty.NilVal, err
	}
	c, err := kt.run.client()
	if err != nil {
		return cty.NilVal, err
	}
	logf := logger(req.Env)
	kr := kt.run
	p := runPrivate{Run: "endpoint-" + kr.Name, Cluster: tg.address, Cloud: clusters.Kubernetes, Started: nowUTC(), Kube: &kr}
	if old, ok := parsePrivate(req.Private); ok && old.Kube != nil {
		p.Started = old.Started
		kr.Image = old.Kube.Image
	}
	// Recorded first: while this apply goes on, predict, logs and status
	// reach the pods that serve now.
	if req.Record != nil {
		if err := req.Record(ctx, p.bytes()); err != nil {
			return cty.NilVal, err
		}
	}
	// The image holds the model: the same model is the same image.
	model, err := artifactStore(req.Env.DataDir).GetEncoded(ctx, a.model)
	if err != nil {
		return cty.NilVal, fmt.Errorf("model: %w", err)
	}
	name, _ := splitAddress(req.Address)
	spec := serve.ProcessSpec{
		Name: name, Host: "0.0.0.0", Port: kubeServePort, Workers: 1, MaxBatchSize: a.maxBatchSize,
		Model: serve.ModelSource{Artifact: a.model, Digest: a.model, Store: kubeArtifacts},
	}
	sb, err := json.Marshal(spec)
	if err != nil {
		return cty.NilVal, err
	}
	bin, err := leptonBinary()
	if err != nil {
		return cty.NilVal, err
	}
	ref, err := kubernetes.PushRunImage(ctx, bin, kt.registry, leptonVersion(), []ociimage.File{
		{Path: kubeArtifacts + "/" + strings.Replace(a.model, ":", "-", 1) + ".lmodel", Data: model, Mode: 0o644},
		{Path: kubeServeSpec, Data: sb, Mode: 0o644},
	}, kr.Name+"-"+shortHex(a.model))
	if err != nil {
		return cty.NilVal, err
	}
	kr.Image = ref
	if req.Record != nil {
		if err := req.Record(ctx, p.bytes()); err != nil {
			return cty.NilVal, err
		}
	}
	m := kr.meta(req.Address, req.Env.Lineage)
	objs, err := kubernetes.EndpointDeployment(kubernetes.Endpoint{
		Meta: m,
		Container: kubernetes.Container{
			Image:   ref,
			Command: []string{kubernetes.LeptonBinary, "internal-kube-run", "serve", kubeServeSpec},
			GPUs:    kt.gpus, GPUProducts: kt.products, ServiceAccount: kubernetes.ServiceAccountName,
		},
		Replicas: a.replicas, Port: kubeServePort,
	})
	if err != nil {
		return cty.NilVal, err
	}
	tmpl := &objs.Deployment.Spec.Template
	tmpl.Annotations[annotModel] = a.model
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		// A new token rolls the pods, which read it at start.
		tmpl.Annotations[annotTokenHash] = hex.EncodeToString(sum[:8])
		secret := &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: kr.Name + "-token", Namespace: kr.Namespace, Labels: m.Labels()},
			StringData: map[string]string{"token": token},
			Type:       corev1.SecretTypeOpaque,
		}
		if _, err := c.Apply(ctx, secret); err != nil {
			return cty.NilVal, err
		}
		ctr := &tmpl.Spec.Containers[0]
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: "LEPTON_TOKEN", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret.Name}, Key: "token"},
		}})
	}
	if _, err := c.Apply(ctx, objs.Service); err != nil {
		return cty.NilVal, err
	}
	if _, err := c.Apply(ctx, objs.Deployment); err != nil {
		return cty.NilVal, err
	}
	logf("applied Deployment %s/%s: %d replica(s) of %s", kr.Namespace, kr.Name, a.replicas, shortDigest(a.model))
	if err := waitRollout(ctx, req.Env, c, kr); err != nil {
		return cty.NilVal, fmt.Errorf("endpoint on %s: %w", tg.address, err)
	}
	u := fmt.Sprintf("http://%s.%s.svc:%d", kr.Name, kr.Namespace, kubeServePort)
	v := e.remoteValue(req.Planned, u, token, a.model, "pods "+kr.Selector+" in namespace "+kr.Namespace)
	return v, nil
}

func shortHex(digest string) string {
	_, h, _ := strings.Cut(digest, ":")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

// waitRollout waits until every replica runs the current template and is
// ready.
func waitRollout(ctx context.Context, env providers.Env, c *kubernetes.Client, k kubeRun) error {
	last := ""
	deadline := time.Now().Add(10 * time.Minute)
	for {
		d, err := kubernetes.Get[appsv1.Deployment](ctx, c, "Deployment", k.Namespace, k.Name)
		if err != nil {
			return err
		}
		st := kubernetes.DeploymentState(d)
		switch st.State {
		case kubernetes.StateServing:
			logger(env)("%s", st.Message)
			return nil
		case kubernetes.StateFailed:
			return fmt.Errorf("Deployment %s/%s: %s", k.Namespace, k.Name, st.Message)
		}
		msg := st.Message
		if pods, err := c.Pods(ctx, k.Namespace, k.Selector); err == nil {
			if w := waitingFor(pods); w != "" {
				msg += "; " + w
			}
		}
		if msg != last {
			logger(env)("%s", msg)
			last = msg
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Deployment %s/%s not rolled out after 10 minutes: %s", k.Namespace, k.Name, msg)
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return err
		}
	}
}

// readKube: the endpoint is gone (drift; the next apply creates it again)
// when its Deployment or Service is; an edited replica count is read back,
// so the plan sets it again in place.
func (e *Endpoint) readKube(ctx context.Context, req providers.ReadRequest, k kubeRun) (cty.Value, error) {
	c, err := k.client()
	if err != nil {
		return cty.NilVal, err
	}
	d, err := kubernetes.Get[appsv1.Deployment](ctx, c, "Deployment", k.Namespace, k.Name)
	if apierrors.IsNotFound(err) {
		return cty.NullVal(req.Current.Type()), nil
	}
	if err != nil {
		return cty.NilVal, err
	}
	if d.DeletionTimestamp != nil {
		return cty.NullVal(req.Current.Type()), nil
	}
	if _, err := kubernetes.Get[corev1.Service](ctx, c, "Service", k.Namespace, k.Name); apierrors.IsNotFound(err) {
		return cty.NullVal(req.Current.Type()), nil
	}
	m := req.Current.AsValueMap()
	if d.Spec.Replicas != nil {
		m["replicas"] = numVal(float64(*d.Spec.Replicas))
	}
	if v := d.Spec.Template.Annotations[annotModel]; v != "" {
		m["model_version"] = cty.StringVal(v)
	}
	return cty.ObjectVal(m), nil
}

// kubeStatus: the Deployment's rollout and its pods with their restarts.
func kubeEndpointStatus(ctx context.Context, k kubeRun) providers.StatusReport {
	c, err := k.client()
	if err != nil {
		return providers.StatusReport{Status: "unknown", Detail: err.Error()}
	}
	d, err := kubernetes.Get[appsv1.Deployment](ctx, c, "Deployment", k.Namespace, k.Name)
	if err != nil {
		return providers.StatusReport{Status: "down", Detail: err.Error()}
	}
	st := kubernetes.DeploymentState(d)
	rep := providers.StatusReport{Detail: fmt.Sprintf("Deployment %s/%s: %s; %s", k.Namespace, k.Name, st.Message, kubePods(ctx, k, k.Selector))}
	switch {
	case st.State == kubernetes.StateServing:
		rep.Status = "healthy"
	case st.Ready > 0:
		rep.Status = "degraded"
	default:
		rep.Status = "down"
	}
	rep.Extra = map[string]string{"model_version": d.Spec.Template.Annotations[annotModel], "ready_replicas": strconv.Itoa(int(st.Ready))}
	return rep
}

// kubePredictURL forwards a local port to a ready pod of the endpoint (its
// Service needs no exposure) for as long as ctx lasts.
func kubePredictURL(ctx context.Context, k kubeRun) (string, error) {
	c, err := k.client()
	if err != nil {
		return "", err
	}
	pods, err := c.Pods(ctx, k.Namespace, k.Selector)
	if err != nil {
		return "", err
	}
	for i := range pods {
		if kubernetes.PodReady(&pods[i]) && pods[i].DeletionTimestamp == nil {
			port, err := c.PortForward(ctx, k.Namespace, pods[i].Name, kubeServePort)
			if err != nil {
				return "", err
			}
			return "http://127.0.0.1:" + strconv.Itoa(port), nil
		}
	}
	return "", fmt.Errorf("no ready pod of Deployment %s/%s", k.Namespace, k.Name)
}
