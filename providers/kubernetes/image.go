package kubernetes

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

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
	img, err := leptonImage(bin, version)
	if err != nil {
		return "", err
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

func leptonImage(bin, version string) (v1.Image, error) {
	spec, err := ociimage.BinaryImage(bin, "lepton", map[string]string{
		"org.opencontainers.image.title":   "lepton",
		"org.opencontainers.image.version": version,
	})
	if err != nil {
		return nil, fmt.Errorf("lepton image: %w", err)
	}
	img, err := ociimage.Build(spec)
	if err != nil {
		return nil, fmt.Errorf("lepton image: %w", err)
	}
	return img, nil
}

// LeptonBinary is where lepton's image takes lepton from in the pods.
const LeptonBinary = "/usr/local/bin/lepton"

// RunImageRepository holds the images of runs and endpoints: lepton's
// image plus a layer of inputs (a dataset snapshot, a model).
const RunImageRepository = "lepton-run"

// PushRunImage pushes lepton's image (from bin) with files added as one
// more layer to REGISTRY/lepton-run:TAG and returns its digest reference.
// lepton's own layers are the same for every run, so the registry receives
// them once.
func PushRunImage(ctx context.Context, bin, registry, version string, files []ociimage.File, tag string) (string, error) {
	registry = strings.TrimSuffix(registry, "/")
	if registry == "" {
		return "", fmt.Errorf("lepton image: set registry in the provider \"kubernetes\" block: lepton pushes the images its pods run there")
	}
	img, err := leptonImage(bin, version)
	if err != nil {
		return "", err
	}
	if img, err = ociimage.Append(img, files); err != nil {
		return "", fmt.Errorf("lepton image: %w", err)
	}
	var tags []string
	if t := imageTag(tag); t != "" {
		tags = append(tags, t)
	}
	ref, err := ociimage.Push(ctx, img, registry+"/"+RunImageRepository, tags...)
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
