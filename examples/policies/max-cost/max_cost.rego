# At most $X per hour: the plan's clusters, once applied, may cost at most
# max_per_hour dollars an hour in all. lepton's JSON plan carries its cost
# figures under "lepton" (Terraform's format has no place for them):
# lepton.cost.total_per_hour is what runs after apply, add_per_hour what the
# plan starts.
package main

import rego.v1

# Edit to your budget (US dollars per hour, all clusters together).
max_per_hour := 50

# Warn from this share of the budget on.
budget_warn_share := 0.8

violation contains {"msg": msg, "total_per_hour": total} if {
	total := input.lepton.cost.total_per_hour
	total > max_per_hour
	msg := sprintf("the plan costs %s once applied, over the budget of %s (it adds %s)", [dollars(total), dollars(max_per_hour), dollars(input.lepton.cost.add_per_hour)])
}

warn_cost contains msg if {
	total := input.lepton.cost.total_per_hour
	total <= max_per_hour
	total > budget_warn_share * max_per_hour
	msg := sprintf("the plan costs %s once applied, %v%% of the budget of %s", [dollars(total), round((100 * total) / max_per_hour), dollars(max_per_hour)])
}

# Dollars to the cent (sprintf's %f takes no integers in Rego).
dollars(x) := sprintf("$%v/hr", [round(x * 100) / 100])
