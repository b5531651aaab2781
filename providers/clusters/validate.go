package clusters

import (
	"github.com/leptonml/lepton/providers"
)

// checkNames reports, at plan time and on every cloud (this machine
// included), a malformed gpu spec, a GPU the catalog does not know and an
// instance type it does not have, each at its argument.
func (c *Cluster) checkNames(a args) error {
	if a.GPU == "" && (a.InstanceType == "" || a.local()) {
		return nil
	}
	cat, err := c.catalog()
	if err != nil {
		return err
	}
	if a.GPU != "" {
		if _, err := cat.CheckGPU(a.GPU); err != nil {
			return providers.AtArg("gpu", err)
		}
	}
	if a.InstanceType != "" && !a.local() {
		if err := cat.CheckInstanceType(a.InstanceType, nil); err != nil {
			return providers.AtArg("instance_type", err)
		}
	}
	return nil
}
