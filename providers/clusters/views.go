package clusters

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/leptonml/lepton/providers"
)

// Status is the cloud, instance type and region, the node count and the
// price per hour, for `lepton status`.
func (c *Cluster) Status(ctx context.Context, in providers.InstanceView) providers.StatusReport {
	var a map[string]any
	json.Unmarshal(in.Attributes, &a)
	nodes, _ := a["node_ids"].([]any)
	return providers.StatusReport{Detail: fmt.Sprintf("%v %v in %v, %v nodes, $%v/hr", a["cloud"], a["instance_type"], a["region"], len(nodes), a["price_per_hour"])}
}
