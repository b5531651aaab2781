package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client calls a lepton endpoint (or any KServe v1 / Open Inference
// Protocol v2 server). The zero value uses a client with a 60s timeout.
type Client struct {
	HTTP *http.Client
}

// HTTPError is a non-200 answer, with the server's {"error": ...} message.
type HTTPError struct {
	Status  int
	Message string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("endpoint answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// PredictResult is a KServe v1 answer: class labels (strings) or numbers,
// and class probabilities for a classifier.
type PredictResult struct {
	Predictions   []any       `json:"predictions"`
	Probabilities [][]float64 `json:"probabilities,omitempty"`
}

func (c *Client) http() *http.Client {
	if c != nil && c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 60 * time.Second}
}

// Predict scores instances with POST {url}/v1/models/{name}:predict.
func (c *Client) Predict(ctx context.Context, url, name, token string, instances [][]float32) (*PredictResult, error) {
	body, err := json.Marshal(map[string]any{"instances": instances})
	if err != nil {
		return nil, err
	}
	raw, err := c.PredictRaw(ctx, url, name, token, body)
	if err != nil {
		return nil, err
	}
	var res PredictResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("predict %s: decode answer: %w", url, err)
	}
	return &res, nil
}

// PredictRaw posts a request body and returns the answer's body, for
// `lepton predict -input JSON`: a bare JSON array is sent as
// {"instances": body} to the v1 route, an object with "inputs" goes to the
// v2 infer route, anything else to the v1 route as is.
func (c *Client) PredictRaw(ctx context.Context, url, name, token string, body []byte) ([]byte, error) {
	t := bytes.TrimSpace(body)
	if len(t) > 0 && t[0] == '[' {
		body = append(append([]byte(`{"instances":`), t...), '}')
	}
	var top map[string]json.RawMessage
	if len(t) > 0 && t[0] == '{' && json.Unmarshal(t, &top) == nil {
		if _, ok := top["inputs"]; ok {
			return c.Infer(ctx, url, name, token, body)
		}
	}
	return c.post(ctx, strings.TrimRight(url, "/")+"/v1/models/"+name+":predict", token, body)
}

// Infer posts an Open Inference Protocol request body to
// {url}/v2/models/{name}/infer and returns the answer's body.
func (c *Client) Infer(ctx context.Context, url, name, token string, body []byte) ([]byte, error) {
	return c.post(ctx, strings.TrimRight(url, "/")+"/v2/models/"+name+"/infer", token, body)
}

func (c *Client) post(ctx context.Context, url, token string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("predict %s: read answer: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return nil, &HTTPError{Status: resp.StatusCode, Message: e.Error}
	}
	return b, nil
}
