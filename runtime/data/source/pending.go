package source

import (
	"context"
	"errors"
)

func openSQL(ctx context.Context, s Source, o Options) (Reader, error) {
	return nil, errors.New("sql sources: not yet available")
}
func fingerprintSQL(ctx context.Context, s Source, o Options) (string, error) {
	return "", errors.New("sql sources: not yet available")
}
func openObject(ctx context.Context, s Source, o Options) (Reader, error) {
	return nil, errors.New("object sources: not yet available")
}
func fingerprintObject(ctx context.Context, s Source, o Options) (string, error) {
	return "", errors.New("object sources: not yet available")
}
