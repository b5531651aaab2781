package promsd

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/leptonml/lepton/internal/state"
)

func res(addr, kind, status, attrs string) *state.Resource {
	return &state.Resource{Address: addr, Kind: kind, Status: status, Attributes: json.RawMessage(attrs)}
}

// endpoints is what the CLI's ServesMetrics answers with the local provider
// (its endpoint resource implements ServesMetrics).
func endpoints(kind, _ string) bool { return kind == "endpoint" }

func TestTargetsAndWrite(t *testing.T) {
	st := &state.State{Resources: []*state.Resource{
		res("endpoint.b", "endpoint", "ready", `{"url":"http://127.0.0.1:9001","model_version":"sha256:bb","token":"secret"}`),
		res("endpoint.a", "endpoint", "ready", `{"url":"https://10.0.0.5:8443","model_version":"sha256:aa","cluster":"cluster.gpu"}`),
		res("endpoint.down", "endpoint", "tainted", `{"url":"http://127.0.0.1:9002"}`),
		res("endpoint.starting", "endpoint", "running", `{"url":null}`),
		res("dataset.d", "dataset", "ready", `{"url":"http://127.0.0.1:1"}`),
	}}
	want := []Group{
		{Targets: []string{"10.0.0.5:8443"}, Labels: map[string]string{"address": "endpoint.a", "model_version": "sha256:aa", "cluster": "cluster.gpu", "__scheme__": "https"}},
		{Targets: []string{"127.0.0.1:9001"}, Labels: map[string]string{"address": "endpoint.b", "model_version": "sha256:bb", "cluster": "local"}},
	}
	if got := Targets(st, endpoints); !reflect.DeepEqual(got, want) {
		t.Fatalf("Targets = %+v\nwant %+v", got, want)
	}

	dir := t.TempDir()
	// No endpoint ever: no file.
	if err := Write(dir, &state.State{}, endpoints); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(Path(dir)); !os.IsNotExist(err) {
		t.Fatalf("a project without endpoints got a targets file: %v", err)
	}
	if err := Write(dir, st, endpoints); err != nil {
		t.Fatal(err)
	}
	var got []Group
	b, _ := os.ReadFile(Path(dir))
	if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("file holds %s (%v)", b, err)
	}
	if strings.Contains(string(b), "secret") {
		t.Fatal("the token leaked into the targets file")
	}
	// The endpoints are destroyed: the file empties (Prometheus stops scraping).
	if err := Write(dir, &state.State{}, endpoints); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(Path(dir))
	if string(b) != "[]\n" {
		t.Fatalf("after destroy the file holds %q", b)
	}
}
