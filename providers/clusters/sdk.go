package clusters

import (
	"context"
	"fmt"
	"os"

	"github.com/leptonml/lepton/providers/aws"
	"github.com/leptonml/lepton/providers/azure"
	"github.com/leptonml/lepton/providers/cloud"
	"github.com/leptonml/lepton/providers/gcp"
)

// SDKProvisioner builds a cloud's provisioner from its provider block with the
// SDK's default credentials: AWS's default chain (environment, profile, SSO,
// instance role), GCP's Application Default Credentials, Azure's
// DefaultAzureCredential. `endpoint` overrides the API base URL; without it
// the environment may (cmd/lepton-sandbox sets these): AWS_ENDPOINT_URL_EC2
// (read by the AWS SDK itself), LEPTON_GCP_ENDPOINT, LEPTON_AZURE_ENDPOINT.
// The clouds' own GOOGLE_CLOUD_PROJECT and AZURE_SUBSCRIPTION_ID stand in
// for an unset project and subscription_id.
//
//	aws:   region, profile, endpoint
//	gcp:   project (required), region, endpoint
//	azure: subscription_id, resource_group (required), location, endpoint
func SDKProvisioner(ctx context.Context, cloudName string, b map[string]string) (cloud.Provisioner, error) {
	b = withEnv(cloudName, b)
	switch cloudName {
	case "aws":
		return aws.New(ctx, aws.Config{Region: b["region"], Profile: b["profile"], Endpoint: b["endpoint"]})
	case "gcp":
		if b["project"] == "" {
			return nil, fmt.Errorf("set project in the provider \"gcp\" block (or GOOGLE_CLOUD_PROJECT)")
		}
		return gcp.New(ctx, gcp.Config{Project: b["project"], Region: b["region"], Endpoint: b["endpoint"]})
	case "azure":
		if b["subscription_id"] == "" || b["resource_group"] == "" {
			return nil, fmt.Errorf("set subscription_id and resource_group in the provider \"azure\" block")
		}
		return azure.New(ctx, azure.Config{SubscriptionID: b["subscription_id"], ResourceGroup: b["resource_group"], Location: b["location"], Endpoint: b["endpoint"]})
	}
	return nil, fmt.Errorf("lepton cannot provision on %q", cloudName)
}

// Variables naming a compute API endpoint for clouds whose SDKs have none of
// their own (AWS has AWS_ENDPOINT_URL_EC2).
const (
	GCPEndpointEnv   = "LEPTON_GCP_ENDPOINT"
	AzureEndpointEnv = "LEPTON_AZURE_ENDPOINT"
)

// envDefaults are the variables that give a provider block argument the
// block leaves unset.
var envDefaults = map[string]map[string]string{
	"gcp":   {"endpoint": GCPEndpointEnv, "project": "GOOGLE_CLOUD_PROJECT"},
	"azure": {"endpoint": AzureEndpointEnv, "subscription_id": "AZURE_SUBSCRIPTION_ID"},
}

// withEnv returns b (a copy when it changes) with the arguments it leaves
// unset taken from the environment.
func withEnv(cloudName string, b map[string]string) map[string]string {
	out, copied := b, false
	for arg, env := range envDefaults[cloudName] {
		v := os.Getenv(env)
		if v == "" || b[arg] != "" {
			continue
		}
		if !copied {
			out, copied = make(map[string]string, len(b)+2), true
			for k, val := range b {
				out[k] = val
			}
		}
		out[arg] = v
	}
	return out
}
