package kubernetes

import (
	"context"
	"fmt"
	"strings"

	"github.com/leptonml/lepton/internal/ociimage"
)

// ImageRepository is the repository under the provider's registry that
// holds lepton's own image.
const ImageRepository = "lepton"

// PushLeptonImage builds lepton's own image from its static binary bin (the
// image built-in kernels run in) and pushes it to registry (the provider's
// `registry`, e.g. registry.example.com/ml) as REGISTRY/lepton:VERSION. It
// returns the digest reference (REGISTRY/lepton@sha256:...) that pods
// should use: a tag can move, a digest cannot. The same binary always gives
// the same digest, so a second push only re-tags.
func PushLeptonImage(ctx context.Context, bin, registry, version string) (string, error) {
	registry = strings.TrimSuffix(registry, "/")
	if registry == "" {
		return "", fmt.Errorf("lepton image: the kubernetes provider needs `registry` to push lepton's image for built-in kernels")
	}
	spec, err := ociimage.BinaryImage(bin, "lepton", map[string]string{
		"org.opencontainers.image.title":   "lepton",
		"org.opencontainers.image.version": version,
	})
	if err != nil {
		return "", fmt.Errorf("lepton image: %w", err)
	}
	img, err := ociimage.Build(spec)
	if err != nil {
		return "", fmt.Errorf("lepton image: %w", err)
	}
	var tags []string
	if t := imageTag(version); t != "" {
		tags = append(tags, t)
	}
	ref, err := ociimage.Push(ctx, img, registry+"/"+ImageRepository, tags...)
	if err != nil {
		return "", fmt.Errorf("lepton image: %w", err)
	}
	return ref, nil
}

// imageTag makes version a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}):
// v1.2.3+dirty becomes v1.2.3-dirty.
func imageTag(version string) string {
	var b strings.Builder
	for i := 0; i < len(version) && b.Len() < 128; i++ {
		c := version[i]
		if isAlnum(c) || c == '_' || (b.Len() > 0 && (c == '.' || c == '-')) {
			b.WriteByte(c)
		} else if b.Len() > 0 {
			b.WriteByte('-')
		}
	}
	return strings.TrimRight(b.String(), "-.")
}
