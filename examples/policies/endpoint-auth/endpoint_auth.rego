# Every endpoint requires a token: no endpoint may serve without bearer-token
# authentication. Two views of the same rule, as policies for Terraform
# plans are written:
#   - the configuration: no endpoint block sets auth = false;
#   - the planned values: every endpoint that will run has auth true (auth
#     left unset shows its default, true, there).
package main

import rego.v1

deny contains msg if {
	some r in input.configuration.root_module.resources
	r.type == "endpoint"
	r.expressions.auth.constant_value == false
	msg := sprintf("%s sets auth = false: every endpoint requires a token", [r.address])
}

deny contains msg if {
	some r in input.planned_values.root_module.resources
	r.type == "endpoint"
	not r.values.auth == true
	not configured_off(r.address)
	msg := sprintf("%s would serve without a token (auth is %v): every endpoint requires one", [r.address, object.get(r.values, "auth", "unknown")])
}

# The configuration rule already names these.
configured_off(addr) if {
	some r in input.configuration.root_module.resources
	r.type == "endpoint"
	r.expressions.auth.constant_value == false
	instance_of(addr, r.address)
}

instance_of(addr, resource) if addr == resource

instance_of(addr, resource) if startswith(addr, concat("", [resource, "["]))
