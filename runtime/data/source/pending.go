package source

import (
	"context"
	"errors"
)

func openObject(ctx context.Context, s Source, o Options) (Reader, error) {
	return nil, errors.New("object sources: not yet available")
}
func fingerprintObject(ctx context.Context, s Source, o Options) (string, error) {
	return "", errors.New("object sources: not yet available")
}
