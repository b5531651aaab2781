package examples

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// promTool finds a Prometheus binary (LEPTON_PROMETHEUS or LEPTON_PROMTOOL,
// printed by .ci/setup-prometheus.sh, else on PATH): the test fails under CI
// without it and skips elsewhere.
func promTool(t *testing.T, env, name string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p, _ = exec.LookPath(name)
	}
	if p == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: run .ci/setup-prometheus.sh (CI must run the monitoring tests)", name)
		}
		t.Skipf("%s is not installed: run .ci/setup-prometheus.sh, or set %s", name, env)
	}
	return p
}

func runTool(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	c := exec.Command(bin, args...)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestMonitoringFilesCheck runs promtool over the shipped files as they are.
func TestMonitoringFilesCheck(t *testing.T) {
	promtool := promTool(t, "LEPTON_PROMTOOL", "promtool")
	runTool(t, "monitoring", promtool, "check", "config", "prometheus.yml")
	runTool(t, "monitoring", promtool, "check", "rules", "alerts.yml")
	runTool(t, "monitoring", promtool, "test", "rules", "alerts_test.yml")
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, err := os.ReadFile("monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil || len(dash.Panels) == 0 {
		t.Fatalf("grafana-dashboard.json: %v (%d panels)", err, len(dash.Panels))
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// promQuery runs an instant query and returns the result vector.
func promQuery(t *testing.T, base, q string) ([]map[string]any, error) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []map[string]any `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, r.Error)
	}
	return r.Data.Result, nil
}

// TestMonitoringPrometheus runs the real Prometheus with examples/monitoring's
// configuration against a live endpoint and reads its request counter back,
// labelled from the targets file that apply wrote.
func TestMonitoringPrometheus(t *testing.T) {
	prom := promTool(t, "LEPTON_PROMETHEUS", "prometheus")
	dir := t.TempDir()
	cfg := `
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
    hidden = [8]
  }
  epochs = 3
  seed   = 1
}

endpoint "iris" {
  model = training.iris.model
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"prometheus.yml", "alerts.yml"} {
		b, err := os.ReadFile(filepath.Join("monitoring", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { exec.Command(bin, "-chdir="+dir, "destroy", "-auto-approve").Run() })
	lepton(t, dir, "apply", "-auto-approve")

	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	b, err := os.ReadFile(filepath.Join(dir, ".lepton", "prometheus", "targets.json"))
	if err != nil {
		t.Fatalf("apply wrote no targets file: %v", err)
	}
	if err := json.Unmarshal(b, &groups); err != nil || len(groups) != 1 || groups[0].Labels["address"] != "endpoint.iris" || groups[0].Labels["cluster"] != "local" || !strings.HasPrefix(groups[0].Labels["model_version"], "sha256:") {
		t.Fatalf("targets file:\n%s", b)
	}

	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var logs bytes.Buffer
	p := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+t.TempDir(),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	p.Stdout, p.Stderr = &logs, &logs
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			p.Process.Kill()
			<-done
		}
	}()

	for range 10 {
		lepton(t, dir, "predict", "endpoint.iris", "-input", "[[5.1, 3.5, 1.4, 0.2]]")
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		res, err := promQuery(t, base, `sum by (address, job, cluster, model_version) (lepton_http_requests_total{route=~"v1_predict|v2_infer", code="200"})`)
		if err == nil && len(res) == 1 {
			m := res[0]["metric"].(map[string]any)
			v := res[0]["value"].([]any)[1].(string)
			if m["address"] == "endpoint.iris" && m["job"] == "lepton-endpoints" && m["cluster"] == "local" && m["model_version"] == groups[0].Labels["model_version"] && v == "10" {
				t.Logf("Prometheus scraped %v", m)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never reported the endpoint's 10 predictions (last: %v %v)\n%s", res, err, logs.String())
		}
		time.Sleep(time.Second)
	}
	// The alerting rules load and evaluate against the live data.
	if res, err := promQuery(t, base, `ALERTS{alertname="LeptonEndpointDown"}`); err != nil || len(res) != 0 {
		t.Errorf("the endpoint is up, yet: %v %v", res, err)
	}
	resp, err := http.Get(base + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rules := string(rb)
	for _, name := range []string{"LeptonEndpointDown", "LeptonEndpointHighLatency", "LeptonEndpointErrors"} {
		if !strings.Contains(rules, name) {
			t.Errorf("Prometheus did not load the rule %s", name)
		}
	}
	// Every query of the Grafana dashboard is valid PromQL for this Prometheus.
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	db, _ := os.ReadFile("monitoring/grafana-dashboard.json")
	if err := json.Unmarshal(db, &dash); err != nil {
		t.Fatal(err)
	}
	for _, pn := range dash.Panels {
		for _, tg := range pn.Targets {
			if _, err := promQuery(t, base, strings.ReplaceAll(tg.Expr, "$address", ".*")); err != nil {
				t.Errorf("dashboard panel %q: %v", pn.Title, err)
			}
		}
	}
}
