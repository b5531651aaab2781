package main

import (
	"context"
	"fmt"

	"github.com/leptonml/lepton/runtime/artifact"
	"github.com/leptonml/lepton/runtime/serve"
)

// cmdInternalServe is the detached server process an endpoint runs
// (`lepton internal-serve -spec FILE`); lepton starts it, users do not.
func cmdInternalServe(m *meta, args []string) int {
	load := func(ctx context.Context, src serve.ModelSource) (serve.Model, error) {
		model, err := (&artifact.Store{Dir: src.Store}).Get(ctx, src.Digest)
		if err != nil {
			return nil, err
		}
		if model.Kind != artifact.KindSupervised {
			return nil, fmt.Errorf("model %s is a %s artifact: endpoints serve supervised models", src.Digest, model.Kind)
		}
		return model, nil
	}
	if err := serve.Main(context.Background(), args, load); err != nil {
		fmt.Fprintf(m.stderr, "lepton internal-serve: %v\n", err)
		return 1
	}
	return 0
}
