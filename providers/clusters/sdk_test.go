package clusters

import "testing"

func TestEndpointFromEnvironment(t *testing.T) {
	t.Setenv(GCPEndpointEnv, "http://127.0.0.1:9001")
	t.Setenv(AzureEndpointEnv, "")
	t.Setenv("GOOGLE_CLOUD_PROJECT", "")
	t.Setenv("AZURE_SUBSCRIPTION_ID", "sub-from-env")
	for _, c := range []struct {
		cloud string
		block map[string]string
		want  string
	}{
		{"gcp", map[string]string{"project": "p"}, "http://127.0.0.1:9001"},
		{"gcp", map[string]string{"project": "p", "endpoint": "http://127.0.0.1:7"}, "http://127.0.0.1:7"}, // the block wins
		{"azure", map[string]string{}, ""},                                                                 // variable empty
		{"aws", map[string]string{}, ""},                                                                   // AWS_ENDPOINT_URL_EC2 is the SDK's business
	} {
		_, had := c.block["endpoint"]
		b := withEnv(c.cloud, c.block)
		if b["endpoint"] != c.want {
			t.Errorf("%s %v: endpoint %q, want %q", c.cloud, c.block, b["endpoint"], c.want)
		}
		if _, has := c.block["endpoint"]; has != had {
			t.Errorf("%s: the caller's provider block was modified", c.cloud)
		}
	}
	if b := withEnv("azure", map[string]string{}); b["subscription_id"] != "sub-from-env" {
		t.Errorf("AZURE_SUBSCRIPTION_ID is not the default subscription_id: %v", b)
	}
	if b := withEnv("azure", map[string]string{"subscription_id": "mine"}); b["subscription_id"] != "mine" {
		t.Errorf("the block's subscription_id lost to the environment: %v", b)
	}
	if b := withEnv("gcp", map[string]string{}); b["project"] != "" {
		t.Errorf("an empty GOOGLE_CLOUD_PROJECT set project: %v", b)
	}
}
