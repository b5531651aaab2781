package serve_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/leptonml/lepton/runtime/serve"
	"github.com/leptonml/lepton/runtime/serve/testmodel"
)

// A server is an http.Handler; Run or Serve add a listener and a graceful
// drain. Here it is mounted on a test server and called with Client.
func Example() {
	s, err := serve.New(serve.Config{Name: "digits", Token: "secret", MaxBatchSize: 64},
		serve.Loaded{Version: "sha256:example", Model: testmodel.MNIST(1)})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	hs := httptest.NewServer(s)
	defer hs.Close()

	var c serve.Client
	res, err := c.Predict(context.Background(), hs.URL, "digits", "secret", [][]float32{make([]float32, 784)})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(res.Predictions), len(res.Probabilities[0]))

	_, err = c.Predict(context.Background(), hs.URL, "digits", "wrong", [][]float32{make([]float32, 784)})
	fmt.Println(err)
	// Output:
	// 1 10
	// endpoint answered 401 Unauthorized: missing or invalid bearer token
}
