package serve

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/valyala/fastjson"
)

// inputName is the one input tensor's name in the model metadata
// (GET /v2/models/NAME): an Open Inference Protocol request must use it, with
// the metadata's shape [-1, features].
const inputName = "input"

// checkV2Input holds an input tensor to the model metadata: its name, and a
// shape of [n, features] with n > 0. A request for another tensor, or a
// shape the model does not declare ([features] alone, [1, 28, 28]), would
// otherwise be scored as if it were right.
func checkV2Input(name string, shape []int, inputSize int) *requestError {
	if name != inputName {
		return badRequest(`unknown input %q: the model's input is %q, datatype FP32, shape [-1, %d] (GET /v2/models/NAME)`, name, inputName, inputSize)
	}
	if len(shape) != 2 || shape[1] != inputSize || shape[0] < 1 {
		return badRequest(`input %q: shape %s does not match the model's input shape [-1, %d]: send [n, %d] for n rows`, name, shapeString(shape), inputSize, inputSize)
	}
	return nil
}

func shapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// errBinary refuses Triton's binary tensor data extension, which this
// server does not implement (and so does not list in GET /v2's extensions).
var errBinary = badRequest(`binary data is not supported: this server speaks the Open Inference Protocol's JSON form only; send tensors in "data" and ask for outputs without binary_data (tritonclient.http: set_data_from_numpy(x, binary_data=False) and InferRequestedOutput(name, binary_data=False))`)

// binaryHeader is the header Triton's binary extension sends with the
// length of the JSON part of the body.
const binaryHeader = "Inference-Header-Content-Length"

// refuseBinaryHeader: a request with binary tensors after its JSON.
func refuseBinaryHeader(r *http.Request) *requestError {
	if r.Header.Get(binaryHeader) != "" {
		return errBinary
	}
	return nil
}

// usesBinary reports whether a decoded request asks for binary tensors:
// an input's binary_data_size, an output's binary_data, or the request's
// binary_data_output.
func usesBinary(v *fastjson.Value) bool {
	if v.GetBool("parameters", "binary_data_output") {
		return true
	}
	for _, key := range []string{"inputs", "outputs"} {
		for _, t := range v.GetArray(key) {
			if t.Exists("parameters", "binary_data_size") || t.GetBool("parameters", "binary_data") {
				return true
			}
		}
	}
	return false
}

// unknownModel answers a route naming a model (or version) this endpoint
// does not serve: 404 on KServe's v1 routes, as KServe does; 400 on every
// Open Inference Protocol route (metadata, ready, infer), which is the
// status that protocol gives failed requests and what Triton answers.
func (s *Server) unknownModel(rt route, name, version string, st *modelState) (int, string) {
	code := http.StatusBadRequest
	if rt == routeV1Predict || rt == routeV1Model {
		code = http.StatusNotFound
	}
	if name != s.cfg.Name {
		return code, fmt.Sprintf("model %q not found; this endpoint serves %q", name, s.cfg.Name)
	}
	if version != "" && version != st.Version {
		return code, fmt.Sprintf("model %q has no version %q; serving %q", name, version, st.Version)
	}
	return 0, ""
}
