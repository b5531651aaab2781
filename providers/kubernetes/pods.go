package kubernetes

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// Pods lists the pods matching sel in ns, by name.
func (c *Client) Pods(ctx context.Context, ns, sel string) ([]corev1.Pod, error) {
	pods, err := List[corev1.Pod](ctx, c, "Pod", ns, sel)
	if err != nil {
		return nil, err
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods, nil
}

// PodReady reports whether p's Ready condition is true.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Restarts is the sum of p's containers' restart counts.
func Restarts(p *corev1.Pod) int32 {
	var n int32
	for _, s := range p.Status.ContainerStatuses {
		n += s.RestartCount
	}
	return n
}

// PodSummary is one pod as `lepton status` shows it: name, phase (or the
// reason its container waits, such as ImagePullBackOff), readiness and
// restarts.
func PodSummary(p *corev1.Pod) string {
	phase := string(p.Status.Phase)
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Waiting != nil && s.State.Waiting.Reason != "" {
			phase = s.State.Waiting.Reason
		}
		if s.State.Terminated != nil && s.State.Terminated.Reason != "" {
			phase = s.State.Terminated.Reason
		}
	}
	ready := ""
	if p.Status.Phase == corev1.PodRunning {
		if PodReady(p) {
			ready = " ready"
		} else {
			ready = " not ready"
		}
	}
	return fmt.Sprintf("%s %s%s, %d restarts", p.Name, phase, ready, Restarts(p))
}

// Logs opens the logs of pod's main container; follow keeps the stream
// open while the container runs.
func (c *Client) Logs(ctx context.Context, ns, pod string, follow bool) (io.ReadCloser, error) {
	u := c.podURL(ns, pod, "log")
	u.RawQuery = url.Values{"container": {"main"}, "follow": {strconv.FormatBool(follow)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: logs of pod %s/%s: %w", ns, pod, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("kubernetes: logs of pod %s/%s: %s: %s", ns, pod, resp.Status, strings.TrimSpace(string(b)))
	}
	return resp.Body, nil
}

// PortForward forwards a free port on 127.0.0.1 to port of pod (through
// the API server, as `kubectl port-forward` does) until ctx ends, and
// returns the local port.
func (c *Client) PortForward(ctx context.Context, ns, pod string, port int) (int, error) {
	transport, upgrader, err := spdy.RoundTripperFor(c.REST)
	if err != nil {
		return 0, fmt.Errorf("kubernetes: port-forward: %w", err)
	}
	u := c.podURL(ns, pod, "portforward")
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	stop := make(chan struct{})
	ready := make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return 0, fmt.Errorf("kubernetes: port-forward to %s/%s: %w", ns, pod, err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	go func() {
		<-ctx.Done()
		close(stop)
	}()
	select {
	case <-ready:
	case err := <-done:
		if err == nil {
			err = fmt.Errorf("stopped")
		}
		return 0, fmt.Errorf("kubernetes: port-forward to %s/%s: %w", ns, pod, err)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		return 0, fmt.Errorf("kubernetes: port-forward to %s/%s: no local port: %v", ns, pod, err)
	}
	return int(ports[0].Local), nil
}

// podURL is the API server's URL of a pod's subresource.
func (c *Client) podURL(ns, pod, sub string) *url.URL {
	u, err := url.Parse(c.REST.Host)
	if err != nil || u.Host == "" {
		u = &url.URL{Scheme: "https", Host: c.REST.Host}
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1/namespaces/" + url.PathEscape(ns) + "/pods/" + url.PathEscape(pod) + "/" + sub
	return u
}
