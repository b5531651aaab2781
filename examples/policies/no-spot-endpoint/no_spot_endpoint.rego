# No spot instances behind an endpoint: a spot node can be taken back by the
# cloud at any time, and an endpoint on it goes down with it. Training may
# use spot (it resumes from checkpoints); serving may not.
package main

import rego.v1

# The clusters the plan leaves running on spot instances, by id (a cluster's
# id is its address, and an endpoint's cluster argument holds that id).
spot_clusters[c.values.id] := c.address if {
	some c in input.planned_values.root_module.resources
	c.type == "cluster"
	c.values.spot == true
}

deny_spot_endpoint contains msg if {
	some rc in input.resource_changes
	rc.type == "endpoint"
	rc.change.after != null
	cluster := spot_clusters[rc.change.after.cluster]
	msg := sprintf("%s would serve from %s, which runs on spot instances: serve from an on-demand cluster (spot = false)", [rc.address, cluster])
}
