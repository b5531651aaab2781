package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/leptonml/lepton/runtime/runspec"
)

// metadataRequest is one request to a cloud's instance metadata service.
type metadataRequest struct {
	method, url string
	header      map[string]string
}

// nodeAddress asks the instance metadata service of cloud for the node's
// private address (runspec/metadata.go says where each cloud's is).
func nodeAddress(ctx context.Context, c *http.Client, cloud string, getenv func(string) string) (string, error) {
	base := func(env, def string) string {
		v := strings.TrimRight(getenv(env), "/")
		if v == "" {
			return def
		}
		if !strings.Contains(v, "://") {
			v = "http://" + v
		}
		return v
	}
	var req metadataRequest
	switch cloud {
	case "aws":
		b := base(runspec.AWSMetadataEnv, "http://169.254.169.254")
		tok, err := metadataGet(ctx, c, metadataRequest{method: http.MethodPut, url: b + "/latest/api/token",
			header: map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "21600"}})
		if err != nil {
			return "", fmt.Errorf("IMDSv2 token: %w", err)
		}
		req = metadataRequest{method: http.MethodGet, url: b + "/latest/meta-data/local-ipv4",
			header: map[string]string{"X-aws-ec2-metadata-token": tok}}
	case "gcp":
		b := base(runspec.GCEMetadataEnv, "http://metadata.google.internal")
		req = metadataRequest{method: http.MethodGet, url: b + "/computeMetadata/v1/instance/network-interfaces/0/ip",
			header: map[string]string{"Metadata-Flavor": "Google"}}
	case "azure":
		b := base(runspec.AzureMetadataEnv, "http://169.254.169.254")
		req = metadataRequest{method: http.MethodGet, url: b + "/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress?api-version=2021-02-01&format=text",
			header: map[string]string{"Metadata": "true"}}
	default:
		return "", fmt.Errorf("cloud %q: want aws, gcp or azure", cloud)
	}
	ip, err := metadataGet(ctx, c, req)
	if err != nil {
		return "", err
	}
	if net.ParseIP(ip) == nil {
		return "", fmt.Errorf("the %s metadata service gave %q as the node's address, not an IP address", cloud, ip)
	}
	return ip, nil
}

func metadataGet(ctx context.Context, c *http.Client, m metadataRequest) (string, error) {
	req, err := http.NewRequestWithContext(ctx, m.method, m.url, nil)
	if err != nil {
		return "", err
	}
	for k, v := range m.header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %s", m.method, m.url, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}
