package rl

import (
	"encoding/json"
	"fmt"

	"github.com/leptonml/lepton/runtime/artifact"
)

// Artifact is the model artifact of a run of spec that gave res: the
// result as its payload, its metrics, and the spec's environment, episodes
// and seed. The local provider and the node agent store the same one, so
// the same spec gives the same digest wherever it ran.
func Artifact(spec Spec, res *Result) (*artifact.Model, error) {
	payload, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	return &artifact.Model{Kind: artifact.KindQLearning, Payload: payload, Metrics: res.Metrics,
		Meta: map[string]string{"environment": spec.Environment.Name, "episodes": fmt.Sprint(spec.Episodes), "seed": fmt.Sprint(spec.Seed)}}, nil
}
