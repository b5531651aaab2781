package local

import (
	"context"
	"errors"
	"fmt"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/clusters"
	"github.com/leptonml/lepton/providers/kubernetes"
	"github.com/zclconf/go-cty/cty"
)

// A training with run { command, image, env } on a Kubernetes cluster is an
// Indexed Job of one pod per node of the cluster, in the user's image: the
// pods get NODE_RANK (their completion index), NUM_NODES, MASTER_ADDR (pod
// 0's name under the Job's headless Service), MASTER_PORT and the LEPTON_*
// variables, and meet through the cluster's DNS. The training succeeds
// when every pod exits 0; it has no model lepton stores (model is "").

// kubeRunSpec is a run block's arguments.
type kubeRunSpec struct {
	command []string
	image   string
	env     map[string]string
}

// onKubeRun reports whether v (a training's configuration or planned
// value) runs its own program on a Kubernetes cluster.
func onKubeRun(env providers.Env, v cty.Value) bool {
	if !v.IsKnown() || v.IsNull() || attr(v, "run").IsNull() {
		return false
	}
	cl := str(attr(v, "cluster"))
	if cl == "" || env.Lookup == nil {
		return false
	}
	cv, ok := env.Lookup(cl)
	return ok && !cv.IsNull() && str(attr(cv, "cloud")) == clusters.Kubernetes
}

func parseKubeRun(v cty.Value) (kubeRunSpec, error) {
	r := attr(v, "run")
	s := kubeRunSpec{command: strList(attr(r, "command")), image: str(attr(r, "image")), env: map[string]string{}}
	if e := attr(r, "env"); !e.IsNull() && e.IsWhollyKnown() {
		for k, val := range e.AsValueMap() {
			s.env[k] = str(val)
		}
	}
	if s.image == "" {
		return s, providers.AtArg("run", errors.New(`run on a Kubernetes cluster needs image = "REGISTRY/IMAGE:TAG": the pods run the program in it`))
	}
	return s, nil
}

// planKubeRun: any change of the arguments runs the program again.
func (t *Training) planKubeRun(req providers.PlanRequest) (providers.PlanResponse, error) {
	if !req.Prior.IsNull() && sameArgs(req.Prior, req.Config) {
		return providers.PlanResponse{Planned: req.Prior}, nil
	}
	resp := providers.PlanResponse{Planned: withComputed("training", req.Config, nil)}
	if !req.Prior.IsNull() {
		for _, name := range changedArgs(req.Prior, req.Config) {
			resp.RequiresReplace = append(resp.RequiresReplace, cty.GetAttrPath(name))
		}
	}
	if !req.Config.IsWhollyKnown() {
		return resp, nil
	}
	s, err := parseKubeRun(req.Config)
	if err != nil {
		return resp, err
	}
	resp.Detail = []string{fmt.Sprintf("runs %s in %s as an Indexed Job, one pod per node of %s", commandLine(s.command), s.image, str(attr(req.Config, "cluster")))}
	return resp, nil
}

func commandLine(cmd []string) string {
	if len(cmd) == 0 {
		return "the image's entrypoint"
	}
	return fmt.Sprintf("%q", cmd)
}

// applyKubeRun starts the Job (or waits again for the one an interrupted
// apply started) and waits until every pod succeeded.
func (t *Training) applyKubeRun(ctx context.Context, req providers.ApplyRequest) (cty.Value, error) {
	s, err := parseKubeRun(req.Planned)
	if err != nil {
		return cty.NilVal, err
	}
	tg, ok, err := targetOf(req.Env, str(attr(req.Planned, "cluster")))
	if err != nil {
		return cty.NilVal, err
	}
	if !ok || !isKube(tg) {
		return cty.NilVal, fmt.Errorf("%s is not a Kubernetes cluster", tg.address)
	}
	kt, c, p, resumed, err := kubeResume(ctx, req, tg)
	if err != nil {
		return cty.NilVal, err
	}
	logf := logger(req.Env)
	if !resumed {
		kr := kt.run
		kr.Image = s.image
		nodes := make([]int, kt.nodes)
		for i := range nodes {
			nodes[i] = i
		}
		p = runPrivate{Run: newRunID(req.Address), Cluster: tg.address, Cloud: clusters.Kubernetes, Nodes: nodes, Started: nowUTC(), Kube: &kr}
		if err := deleteKube(ctx, kr, req.Address, req.Env.Lineage); err != nil {
			return cty.NilVal, fmt.Errorf("removing the previous run's Job: %w", err)
		}
		if req.Record != nil {
			if err := req.Record(ctx, p.bytes()); err != nil {
				return cty.NilVal, err
			}
		}
		objs, err := kubernetes.TrainingJob(kubernetes.Training{
			Meta: kr.meta(req.Address, req.Env.Lineage),
			Container: kubernetes.Container{
				Image: s.image, Command: s.command, Env: s.env,
				GPUs: kt.gpus, GPUProducts: kt.products, ServiceAccount: kubernetes.ServiceAccountName,
			},
			RunID: p.Run, Nodes: kt.nodes,
		})
		if err != nil {
			return cty.NilVal, err
		}
		if err := applyTrainingObjects(ctx, c, objs); err != nil {
			return cty.NilVal, err
		}
		logf("started Job %s/%s: %d pod(s) of %s (run %s)", kr.Namespace, kr.Name, kt.nodes, s.image, p.Run)
	}
	if _, _, _, err := waitKubeJob(ctx, req.Env, c, *p.Kube, req.Address, false); err != nil {
		if ctx.Err() != nil {
			return cty.NilVal, err
		}
		return cty.NilVal, fmt.Errorf("training on %s: %w", tg.address, err)
	}
	logf("run %s succeeded on %d pod(s)", p.Run, len(p.Nodes))
	return withComputed("training", req.Planned, map[string]cty.Value{
		"model": cty.StringVal(""), "metrics": cty.MapValEmpty(cty.Number), "outputs": cty.NullVal(cty.String),
		"epochs_completed": numVal(0), "status": cty.StringVal("succeeded"),
	}), nil
}
