package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Model is what the server needs from a trained artifact. Implementations
// must be safe for concurrent Predict calls; the server may run several
// batches at once (Config.Workers).
type Model interface {
	// InputSize is the number of features in one row.
	InputSize() int
	// Classes lists the class labels of a classifier, or nil for regression.
	Classes() []string
	// Predict scores n rows of x (row-major, n*InputSize values, any
	// preprocessing stored in the artifact applied inside) and returns n rows
	// of outputs. A classifier returns len(Classes()) probabilities per row.
	Predict(x []float32, n int) ([]float32, error)
}

// Loaded is a model together with the version the endpoint reports for it
// (normally the artifact digest).
type Loaded struct {
	Version string
	Model   Model
}

// ModelSource says where a detached server process loads its model from. The
// fields are opaque to this package; the Loader given to Main interprets them.
type ModelSource struct {
	Artifact string `json:"artifact"`        // artifact path or store key
	Digest   string `json:"digest"`          // expected digest; also the default version
	Store    string `json:"store,omitempty"` // artifact store directory
	Version  string `json:"version,omitempty"`
}

// version is the model version reported by the endpoint for this source.
func (s ModelSource) version() string {
	if s.Version != "" {
		return s.Version
	}
	return s.Digest
}

// Loader loads a model in a detached server process. The lead's CLI passes a
// Loader backed by runtime/artifact to Main.
type Loader func(ctx context.Context, src ModelSource) (Model, error)

// modelState is a Loaded model with everything derived from it once at Swap
// time, so request handling does no per-request metadata work.
type modelState struct {
	Loaded
	inputSize   int
	classes     []string
	labelJSON   [][]byte // classes, each already JSON-encoded
	metadata    []byte   // GET /v2/models/NAME body
	versionJSON []byte   // JSON-encoded version string
}

func newModelState(name string, l Loaded) (*modelState, error) {
	if l.Model == nil {
		return nil, errors.New("serve: no model given")
	}
	n := l.Model.InputSize()
	if n <= 0 {
		return nil, fmt.Errorf("serve: model input size %d, want > 0", n)
	}
	st := &modelState{Loaded: l, inputSize: n, classes: l.Model.Classes()}
	for _, c := range st.classes {
		b, _ := json.Marshal(c)
		st.labelJSON = append(st.labelJSON, b)
	}
	st.versionJSON, _ = json.Marshal(l.Version)
	type tensor struct {
		Name     string `json:"name"`
		Datatype string `json:"datatype"`
		Shape    []int  `json:"shape"`
	}
	md := struct {
		Name     string   `json:"name"`
		Versions []string `json:"versions"`
		Platform string   `json:"platform"`
		Inputs   []tensor `json:"inputs"`
		Outputs  []tensor `json:"outputs"`
		Classes  []string `json:"classes,omitempty"`
	}{Name: name, Versions: []string{l.Version}, Platform: "lepton",
		Inputs: []tensor{{Name: "input", Datatype: "FP32", Shape: []int{-1, n}}}, Classes: st.classes}
	if st.classes != nil {
		md.Outputs = []tensor{
			{Name: outPredictions, Datatype: "BYTES", Shape: []int{-1}},
			{Name: outProbabilities, Datatype: "FP32", Shape: []int{-1, len(st.classes)}},
		}
	} else {
		md.Outputs = []tensor{{Name: outPredictions, Datatype: "FP32", Shape: []int{-1, -1}}}
	}
	st.metadata, _ = json.Marshal(md)
	return st, nil
}

// Names of the v2 output tensors.
const (
	outPredictions   = "predictions"
	outProbabilities = "probabilities"
)
