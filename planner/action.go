// Package planner turns a configuration and the prior state into a Plan (a value
// that can be saved, rendered and reviewed), and applies a Plan to produce new
// state. One dependency graph and one parallel walk serve plan, apply and destroy.
package planner

// Action is what a plan does to one resource instance.
type Action uint8

// The actions, as in Terraform.
const (
	NoOp Action = iota
	Create
	Update
	Delete
	DeleteThenCreate
	CreateThenDelete
	Read
)

// IsReplace reports whether the action replaces the instance.
func (a Action) IsReplace() bool { return a == DeleteThenCreate || a == CreateThenDelete }

// Symbol is the plan's symbol for the action.
func (a Action) Symbol() string {
	switch a {
	case Create:
		return "+"
	case Update:
		return "~"
	case Delete:
		return "-"
	case DeleteThenCreate:
		return "-/+"
	case CreateThenDelete:
		return "+/-"
	case Read:
		return "<="
	}
	return " "
}

// Verb is the header phrase ("will be created").
func (a Action) Verb() string {
	switch a {
	case Create:
		return "will be created"
	case Update:
		return "will be updated in-place"
	case Delete:
		return "will be destroyed"
	case DeleteThenCreate, CreateThenDelete:
		return "must be replaced"
	case Read:
		return "will be read during apply"
	}
	return "has no changes"
}

// JSONActions is the action in the JSON plan's `actions` list form.
func (a Action) JSONActions() []string {
	switch a {
	case Create:
		return []string{"create"}
	case Update:
		return []string{"update"}
	case Delete:
		return []string{"delete"}
	case DeleteThenCreate:
		return []string{"delete", "create"}
	case CreateThenDelete:
		return []string{"create", "delete"}
	case Read:
		return []string{"read"}
	}
	return []string{"no-op"}
}

func (a Action) String() string {
	switch a {
	case Create:
		return "create"
	case Update:
		return "update"
	case Delete:
		return "delete"
	case DeleteThenCreate:
		return "replace"
	case CreateThenDelete:
		return "replace (create before destroy)"
	case Read:
		return "read"
	}
	return "no-op"
}

// ParseAction reverses String (used by saved plan files).
func ParseAction(s string) (Action, bool) {
	for a := NoOp; a <= Read; a++ {
		if a.String() == s {
			return a, true
		}
	}
	return NoOp, false
}

// Action reasons, as Terraform's JSON plan names them.
const (
	ReasonTainted          = "replace_because_tainted"
	ReasonRequested        = "replace_by_request"
	ReasonCannotUpdate     = "replace_because_cannot_update"
	ReasonNoResourceConfig = "delete_because_no_resource_config"
	ReasonCountIndex       = "delete_because_count_index"
	ReasonEachKey          = "delete_because_each_key"
	ReasonWrongRepetition  = "delete_because_wrong_repetition"
)

// Mode is the kind of plan.
type Mode uint8

// Plan modes.
const (
	NormalMode Mode = iota
	DestroyMode
	RefreshOnlyMode
)

func (m Mode) String() string {
	switch m {
	case DestroyMode:
		return "destroy"
	case RefreshOnlyMode:
		return "refresh-only"
	}
	return "normal"
}
