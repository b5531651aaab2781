package providers

import "encoding/json"

// What a kind can tell the read-only commands (show, status, logs,
// predict) about an instance it manages, beyond its attributes. The CLI
// declares the small interfaces it calls (cmd/lepton/extras.go); a
// resource implements those that apply to its kind, and the CLI never
// switches on kind names.

// InstanceView is one instance as the read-only commands hand it to its
// kind's resource.
type InstanceView struct {
	Address string
	// Attributes are the instance's attributes as state records them (cty
	// JSON of the kind's state type); nil when the instance is not in state
	// (`lepton logs` of a run that never finished applying).
	Attributes json.RawMessage
	// Sensitive: some attributes are sensitive, so what is derived from
	// them (a dataset's processing report) must not be shown.
	Sensitive bool
	// Status is the state's status of the instance: ready, tainted,
	// running (an apply in flight) or interrupted.
	Status string
	// Private is the provider's private data recorded with the instance (a
	// remote run's id and storage).
	Private []byte
	Env     Env
	// Node is the node whose log `lepton logs -node N` reads (a run on
	// several nodes of a cluster); 0 by default.
	Node int
}

// StatusReport is an instance's row in `lepton status`.
type StatusReport struct {
	// Status replaces the state's status when set (an endpoint's health, a
	// training's outcome).
	Status  string
	Detail  string
	Metrics map[string]any
	// Extra holds further values, shown after the detail in the text view
	// when the CLI knows them (requests, model_version) and in -json always.
	Extra map[string]string
}

// PredictTarget is where `lepton predict` sends its request.
type PredictTarget struct {
	URL   string // the server's base URL
	Model string // the model name its routes use
	Token string // the bearer token; empty when auth is off
}
