# Never destroy an endpoint: clients call it. A plan that deletes one, or
# replaces one (which deletes the serving process, even if only for a
# moment), fails; change it in place (model, replicas, auth) or remove it by
# hand after its clients moved.
package main

import rego.v1

deny_endpoint_destroy contains msg if {
	some rc in input.resource_changes
	rc.type == "endpoint"
	"delete" in rc.change.actions
	msg := sprintf("%s would be %s: endpoints are never destroyed by a plan", [rc.address, verb(rc.change.actions)])
}

verb(actions) := "replaced" if "create" in actions

verb(actions) := "destroyed" if not "create" in actions
