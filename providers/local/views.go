package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/runtime/runstore"
	"github.com/leptonml/lepton/runtime/serve"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// What the local kinds tell `lepton show`, `status`, `logs` and `predict`
// (the interfaces are the CLI's, in cmd/lepton/extras.go).

// followEvery is how often `lepton logs -f` looks for new lines.
const followEvery = 500 * time.Millisecond

// attrMap is the instance's attributes as plain JSON values: status
// details print them with %v, as they always have.
func attrMap(in providers.InstanceView) map[string]any {
	var a map[string]any
	json.Unmarshal(in.Attributes, &a)
	return a
}

// openLog opens a log object, following it when asked.
func openLog(ctx context.Context, s runstore.Store, key string, follow bool) (io.ReadCloser, error) {
	rc, err := s.Get(ctx, key)
	if err != nil || !follow {
		return rc, err
	}
	return struct {
		io.Reader
		io.Closer
	}{runstore.Follow(ctx, rc, followEvery), rc}, nil
}

// lastLine is the last line of an object, empty when there is none.
func lastLine(ctx context.Context, s runstore.Store, key string) string {
	b, err := runstore.ReadAll(ctx, s, key)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// Logs is the run's train.log.
func (t *Training) Logs(ctx context.Context, in providers.InstanceView, follow bool) (io.ReadCloser, error) {
	if p, ok := parsePrivate(in.Private); ok && p.Kube != nil {
		if rc, found, err := kubePodLog(ctx, *p.Kube, p.Kube.Selector, follow); found || err != nil {
			return rc, err
		}
	} else if ok {
		return remoteLog(ctx, t.runs, in, p, follow)
	}
	if err := localLogOnly(in); err != nil {
		return nil, err
	}
	return openLog(ctx, storeOf(in.Env.DataDir), runPrefix(in.Address)+trainLogKey, follow)
}

// Status: the outcome and metrics of a finished run; the last log line of
// one in flight.
func (t *Training) Status(ctx context.Context, in providers.InstanceView) providers.StatusReport {
	a := attrMap(in)
	var rep providers.StatusReport
	if s, _ := a["status"].(string); s != "" && in.Status == state.StatusReady {
		rep.Status = s
	}
	if mt, ok := a["metrics"].(map[string]any); ok {
		rep.Metrics = mt
	}
	if p, ok := parsePrivate(in.Private); ok && p.Kube != nil {
		rep.Detail = fmt.Sprintf("epochs %v; Job %s/%s: %s", a["epochs_completed"], p.Kube.Namespace, p.Kube.Name, kubePods(ctx, *p.Kube, p.Kube.Selector))
	} else if ok && in.Status == state.StatusRunning {
		rep.Detail = remoteDetail(ctx, t.runs, in, p)
	} else if in.Status == state.StatusRunning {
		rep.Detail = lastLine(ctx, storeOf(in.Env.DataDir), runPrefix(in.Address)+trainLogKey)
	} else if o, _ := a["outputs"].(string); o != "" {
		rep.Detail = "outputs " + o // a run block's program
	} else if ok && a["epochs_completed"] == nil {
		// A run that did not succeed (apply said why): which one it
		// was, for its logs.
		rep.Detail = fmt.Sprintf("run %s on %s, started %s, did not succeed (lepton logs %s)", p.Run, p.Cluster, p.Started.UTC().Format(time.RFC3339), in.Address)
	} else {
		rep.Detail = fmt.Sprintf("epochs %v", a["epochs_completed"])
	}
	withRestarts(&rep, in.Private)
	return rep
}

// withRestarts adds a run's restarts (preemptions, lost nodes) to its
// status: always for a run on nodes of its own, once it restarted for a
// run on a named cluster.
func withRestarts(rep *providers.StatusReport, private []byte) {
	p, ok := parsePrivate(private)
	if !ok || p.Compute == nil && len(p.Restarts) == 0 {
		return
	}
	if rep.Extra == nil {
		rep.Extra = map[string]string{}
	}
	rep.Extra["restarts"] = fmt.Sprint(len(p.Restarts))
	if d := restartsDetail(p); d != "" {
		rep.Detail += "; " + d
	}
}

// Describe is the trained model's description.
func (t *Training) Describe(ctx context.Context, in providers.InstanceView) (string, error) {
	var attrs struct {
		Model string `json:"model"`
	}
	json.Unmarshal(in.Attributes, &attrs)
	if attrs.Model == "" {
		return "", nil
	}
	model, err := artifactStore(in.Env.DataDir).Get(ctx, attrs.Model)
	if err != nil {
		return "", fmt.Errorf("loading the model artifact: %w", err)
	}
	return fmt.Sprintf("\nModel %s:\n\n%s", attrs.Model, model.Describe()), nil
}

// Status is the row count and what was dropped.
func (d *Dataset) Status(ctx context.Context, in providers.InstanceView) providers.StatusReport {
	a := attrMap(in)
	return providers.StatusReport{Detail: fmt.Sprintf("%v rows, %v dropped", a["rows"], a["dropped_rows"])}
}

// Describe is the processing report, unless the dataset is built from
// sensitive values: the report lists column names and statistics of the
// data, which would show them.
func (d *Dataset) Describe(ctx context.Context, in providers.InstanceView) (string, error) {
	if in.Sensitive {
		return "\nProcessing report: hidden, because the dataset is built from sensitive values.\n", nil
	}
	attrs, err := ctyjson.Unmarshal(in.Attributes, d.kindSchema().StateType())
	if err != nil {
		return "", fmt.Errorf("reading %s from the state: %w", in.Address, err)
	}
	report, ok, err := Report(ctx, in.Env.Dir, in.Env.DataDir, attrs)
	if err != nil {
		return "", fmt.Errorf("rebuilding the processing report of %s: %w", in.Address, err)
	}
	if !ok {
		return "", nil
	}
	return "\nProcessing report:\n\n" + report, nil
}

// Status is the row count and where the predictions went; for a run going
// on a cloud cluster, where and how it is going.
func (b *BatchInference) Status(ctx context.Context, in providers.InstanceView) providers.StatusReport {
	var rep providers.StatusReport
	if p, ok := parsePrivate(in.Private); ok && in.Status == state.StatusRunning {
		rep.Detail = remoteDetail(ctx, b.runs, in, p)
	} else {
		a := attrMap(in)
		rep.Detail = fmt.Sprintf("%v rows -> %v", a["rows"], a["output"])
	}
	withRestarts(&rep, in.Private)
	return rep
}

// Logs is the server's log.
func (e *Endpoint) Logs(ctx context.Context, in providers.InstanceView, follow bool) (io.ReadCloser, error) {
	if p, ok := parsePrivate(in.Private); ok && p.Kube != nil {
		rc, found, err := kubePodLog(ctx, *p.Kube, p.Kube.Selector, follow)
		if !found && err == nil {
			err = fmt.Errorf("no pod of %s is running", in.Address)
		}
		return rc, err
	} else if ok {
		return remoteLog(ctx, e.runs, in, p, follow)
	}
	if err := localLogOnly(in); err != nil {
		return nil, err
	}
	return openLog(ctx, storeOf(in.Env.DataDir), endpointPrefix(in.Address)+serverLogKey, follow)
}

// Status health-checks the server and, when it answers, reads its request
// count and model version.
func (e *Endpoint) Status(ctx context.Context, in providers.InstanceView) providers.StatusReport {
	a := attrMap(in)
	if p, ok := parsePrivate(in.Private); ok && p.Kube != nil {
		return kubeEndpointStatus(ctx, *p.Kube)
	} else if ok {
		return remoteEndpointStatus(ctx, e.runs, in, p, a)
	}
	url, _ := a["url"].(string)
	pid, _ := a["pid"].(float64)
	p := processFiles(in.Env.DataDir, in.Address)
	p.Pid, p.URL = int(pid), url
	cs := serve.Check(ctx, p)
	var rep providers.StatusReport
	switch {
	case cs.Ready:
		rep.Status = "healthy"
	case cs.Running:
		rep.Status = "unhealthy"
	default:
		rep.Status = "down"
	}
	rep.Detail = url
	if cs.Detail != "" {
		rep.Detail += " (" + cs.Detail + ")"
	}
	if cs.Ready {
		// A server that does not answer its metrics in time shows 0.
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		tr, _ := serve.ReadTraffic(sctx, url)
		cancel()
		rep.Extra = map[string]string{
			"requests":      strconv.FormatFloat(tr.HTTPRequests, 'f', 0, 64),
			"model_version": cs.Version,
		}
	}
	return rep
}

// PredictTarget is the server's URL, the model name its routes use and
// the token from state.
func (e *Endpoint) PredictTarget(ctx context.Context, in providers.InstanceView) (providers.PredictTarget, error) {
	var attrs struct {
		URL   string `json:"url"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(in.Attributes, &attrs); err != nil {
		return providers.PredictTarget{}, fmt.Errorf("reading %s from the state: %w", in.Address, err)
	}
	name, _ := splitAddress(in.Address)
	if p, ok := parsePrivate(in.Private); ok && p.Kube != nil {
		u, err := kubePredictURL(ctx, *p.Kube)
		if err != nil {
			return providers.PredictTarget{}, err
		}
		attrs.URL = u
	}
	return providers.PredictTarget{URL: attrs.URL, Model: name, Token: attrs.Token}, nil
}

// What the local kinds tell the dashboard (internal/ui), the Prometheus
// targets file (internal/promsd) and the charts of `lepton show -png`
// (cmd/lepton/cmd_charts.go); each declares the interface it calls.

// LogFile is where the run writes train.log on this machine (the dashboard
// tails it).
func (t *Training) LogFile(in providers.InstanceView) string {
	return LogPath(in.Env.DataDir, in.Address)
}

// LogFile is where the endpoint's server writes its log on this machine.
func (e *Endpoint) LogFile(in providers.InstanceView) string {
	return EndpointLogPath(in.Env.DataDir, in.Address)
}

// RunMetrics is the run's recorded metric history (curves, confusion
// matrix); found is false before the run has recorded any.
func (t *Training) RunMetrics(in providers.InstanceView) (m *RunMetrics, found bool, err error) {
	return ReadRunMetrics(in.Env.DataDir, in.Address)
}

// ServesMetrics: an endpoint's server answers /metrics, so Prometheus and
// the dashboard scrape it.
func (e *Endpoint) ServesMetrics() bool { return true }

// ReadyFile is the file the endpoint's server writes once it is ready.
func (e *Endpoint) ReadyFile(in providers.InstanceView) string {
	return filepath.Join(filepath.Dir(EndpointLogPath(in.Env.DataDir, in.Address)), "ready.json")
}

// Profile computes the dataset's profile from its state attributes.
func (d *Dataset) Profile(ctx context.Context, in providers.InstanceView) (*DatasetProfile, error) {
	attrs, err := ctyjson.Unmarshal(in.Attributes, d.kindSchema().StateType())
	if err != nil {
		return nil, err
	}
	p, _, err := Profile(ctx, in.Env.Dir, in.Env.DataDir, attrs)
	return p, err
}
