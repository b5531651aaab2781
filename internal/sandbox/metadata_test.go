package sandbox

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMetadataServers(t *testing.T) {
	infos := map[string]instanceInfo{
		"aws": {Cloud: "aws", ID: "i-0123", IP: "127.0.0.5", Type: "g5.xlarge", Region: "us-east-1", Zone: "us-east-1a", UserData: "#!/bin/bash\necho aws\n"},
		"gcp": {Cloud: "gcp", ID: "lp-x-0", NumID: "1000000000007", IP: "127.0.0.6", Type: "g2-standard-4", Zone: "us-central1-a",
			Project: "lepton-sandbox", Items: map[string]string{"startup-script": "#!/bin/bash\necho gcp\n", "lepton-address": "cluster.x"}},
		"azure": {Cloud: "azure", ID: "lp-y-1", NumID: "00000000-0000-4000-8000-000000000003", IP: "127.0.0.7", Type: "Standard_NC4as_T4_v3",
			Region: "eastus", Group: "rg", UserData: "#!/bin/bash\necho azure\n"},
	}
	servers := map[string]*httptest.Server{}
	mds := map[string]*metadataServer{}
	for c, info := range infos {
		mds[c] = newMetadataServer(info)
		servers[c] = httptest.NewServer(mds[c])
		defer servers[c].Close()
	}
	// An IMDSv2 token for the AWS cases.
	req, _ := http.NewRequest(http.MethodPut, servers["aws"].URL+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	tokb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := string(tokb)
	if resp.StatusCode != 200 || tok == "" {
		t.Fatalf("token: %d %q", resp.StatusCode, tok)
	}
	aws := map[string]string{"X-aws-ec2-metadata-token": tok}
	google := map[string]string{"Metadata-Flavor": "Google"}
	azure := map[string]string{"Metadata": "true"}
	const v = "?api-version=2021-02-01"
	for _, c := range []struct {
		cloud, method, path string
		header              map[string]string
		status              int
		body                string // exact, or a substring when prefixed with ~
	}{
		{"aws", "GET", "/latest/meta-data/local-ipv4", aws, 200, "127.0.0.5"},
		{"aws", "GET", "/latest/meta-data/public-ipv4", aws, 200, "127.0.0.5"},
		{"aws", "GET", "/latest/meta-data/instance-id", aws, 200, "i-0123"},
		{"aws", "GET", "/latest/meta-data/placement/availability-zone", aws, 200, "us-east-1a"},
		{"aws", "GET", "/latest/user-data", aws, 200, "#!/bin/bash\necho aws\n"},
		{"aws", "GET", "/latest/meta-data/", aws, 200, "~placement/"},
		{"aws", "GET", "/latest/meta-data/spot/instance-action", aws, 404, ""},
		{"aws", "GET", "/latest/meta-data/local-ipv4", nil, 401, ""},
		{"aws", "GET", "/latest/meta-data/local-ipv4", map[string]string{"X-aws-ec2-metadata-token": "forged"}, 401, ""},
		{"aws", "GET", "/latest/api/token", nil, 405, ""},
		{"aws", "PUT", "/latest/api/token", nil, 400, ""}, // no TTL
		{"gcp", "GET", "/computeMetadata/v1/instance/network-interfaces/0/ip", google, 200, "127.0.0.6"},
		{"gcp", "GET", "/computeMetadata/v1/instance/network-interfaces/0/access-configs/0/external-ip", google, 200, "127.0.0.6"},
		{"gcp", "GET", "/computeMetadata/v1/instance/id", google, 200, "1000000000007"},
		{"gcp", "GET", "/computeMetadata/v1/instance/name", google, 200, "lp-x-0"},
		{"gcp", "GET", "/computeMetadata/v1/instance/attributes/startup-script", google, 200, "#!/bin/bash\necho gcp\n"},
		{"gcp", "GET", "/computeMetadata/v1/instance/attributes/lepton-address", google, 200, "cluster.x"},
		{"gcp", "GET", "/computeMetadata/v1/instance/preempted", google, 200, "FALSE"},
		{"gcp", "GET", "/computeMetadata/v1/project/project-id", google, 200, "lepton-sandbox"},
		{"gcp", "GET", "/computeMetadata/v1/instance/attributes/", google, 200, "lepton-address\nstartup-script\n"},
		{"gcp", "GET", "/computeMetadata/v1/instance/attributes", google, 301, ""},
		{"gcp", "GET", "/computeMetadata/v1/instance/id", nil, 403, "~Metadata-Flavor"},
		{"gcp", "GET", "/computeMetadata/v1/instance/nothing", google, 404, ""},
		{"azure", "GET", "/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress" + v + "&format=text", azure, 200, "127.0.0.7"},
		{"azure", "GET", "/metadata/instance/network/interface/0/ipv4/ipAddress/0/publicIpAddress" + v + "&format=text", azure, 200, "127.0.0.7"},
		{"azure", "GET", "/metadata/instance/compute/vmId" + v + "&format=text", azure, 200, "00000000-0000-4000-8000-000000000003"},
		{"azure", "GET", "/metadata/instance/compute/customData" + v + "&format=text", azure, 200, "IyEvYmluL2Jhc2gKZWNobyBhenVyZQo="},
		{"azure", "GET", "/metadata/instance/compute/name" + v, azure, 200, "\"lp-y-1\"\n"},
		{"azure", "GET", "/metadata/instance" + v, azure, 200, `~"resourceGroupName":"rg"`},
		{"azure", "GET", "/metadata/instance/compute" + v + "&format=text", azure, 400, "~non-leaf"},
		{"azure", "GET", "/metadata/instance/compute/vmId?format=text", azure, 400, "~api-version"},
		{"azure", "GET", "/metadata/instance/compute/vmId" + v + "&format=text", nil, 400, "~metadata header"},
		{"azure", "GET", "/metadata/scheduledevents" + v, azure, 200, `~"Events":[]`},
	} {
		req, _ := http.NewRequest(c.method, servers[c.cloud].URL+c.path, nil)
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := string(b)
		ok := resp.StatusCode == c.status
		if want, sub := strings.CutPrefix(c.body, "~"); sub {
			ok = ok && strings.Contains(got, want)
		} else if c.status == 200 {
			ok = ok && got == c.body
		}
		if ok && c.cloud == "gcp" && resp.Header.Get("Metadata-Flavor") != "Google" {
			t.Errorf("%s %s: no Metadata-Flavor: Google in the answer", c.method, c.path)
		}
		if !ok {
			t.Errorf("%s %s %s: %d %q, want %d %q", c.cloud, c.method, c.path, resp.StatusCode, got, c.status, c.body)
		}
	}

	// A preemption shows the way each cloud warns of it.
	for c := range mds {
		mds[c].markPreempted(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	}
	for _, c := range []struct {
		cloud, path string
		header      map[string]string
		want        string
	}{
		{"aws", "/latest/meta-data/spot/instance-action", aws, `{"action":"terminate","time":"2026-12-06T12:00:00Z"}`},
		{"gcp", "/computeMetadata/v1/instance/preempted", google, "TRUE"},
		{"azure", "/metadata/scheduledevents" + v, azure, `"EventType":"Preempt"`},
	} {
		req, _ := http.NewRequest(http.MethodGet, servers[c.cloud].URL+c.path, nil)
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), c.want) {
			t.Errorf("%s after preemption: %d %s", c.cloud, resp.StatusCode, b)
		}
	}
}

func TestWalk(t *testing.T) {
	tree := map[string]any{"a": map[string]any{"b": []any{"x", map[string]any{"c": "y"}}}}
	for _, c := range []struct {
		path string
		want any
		ok   bool
	}{
		{"/a/b/0", "x", true},
		{"/a/b/1/c/", "y", true},
		{"/a/b/2", nil, false},
		{"/a/b/-1", nil, false},
		{"/a/z", nil, false},
		{"/a/b/0/deeper", nil, false},
	} {
		got, ok := walk(tree, c.path)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("walk(%q) = %v, %v", c.path, got, ok)
		}
	}
}
