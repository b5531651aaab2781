package runspec

// The agent learns its node's address (to serve endpoints on, and for
// MASTER_ADDR) from its cloud's instance metadata service, at the default
// address or at the one these variables name (the sandbox runs one metadata
// server per node and sets them in the node's environment):
//
//	aws:   IMDSv2. PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds)
//	       then GET /latest/meta-data/local-ipv4 and /latest/meta-data/instance-id
//	       with X-aws-ec2-metadata-token. Default http://169.254.169.254.
//	gcp:   GET /computeMetadata/v1/instance/network-interfaces/0/ip and
//	       /computeMetadata/v1/instance/id with Metadata-Flavor: Google.
//	       GCE_METADATA_HOST is host:port. Default metadata.google.internal.
//	azure: GET /metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress?api-version=2021-02-01&format=text
//	       and /metadata/instance/compute/vmId?api-version=2021-02-01&format=text
//	       with Metadata: true. Default http://169.254.169.254.
const (
	AWSMetadataEnv   = "AWS_EC2_METADATA_SERVICE_ENDPOINT" // the AWS SDKs' own variable
	GCEMetadataEnv   = "GCE_METADATA_HOST"                 // Google's client libraries' own variable
	AzureMetadataEnv = "AZURE_IMDS_ENDPOINT"
)
