// Package ociimage builds small container images from files on this machine
// (a static binary, a few symlinks) and pushes them to a registry, the way ko
// does: no Docker daemon, no base image pulled, one reproducible layer.
package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// File is one entry of the image's single layer: a regular file read from
// Source (or holding Data), or a symlink when Link is set.
type File struct {
	Path   string // absolute path in the image, e.g. /bin/busybox
	Source string // file on this machine to copy
	Data   []byte // contents, when Source is empty
	Mode   int64  // permission bits; 0755 when zero (01777 for a Dir)
	Link   string // symlink target; the entry is a symlink when set
	Dir    bool   // an empty directory
}

// Spec describes an image.
type Spec struct {
	Files      []File
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	Labels     map[string]string
}

// epoch is the time stamped on every entry and on the config, so the same
// files always give the same digest.
var epoch = time.Unix(0, 0).UTC()

// Build returns a linux/amd64 image of one layer holding spec's files, with
// the parent directories they need.
func Build(spec Spec) (v1.Image, error) {
	layerTar, err := layerBytes(spec.Files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: epoch}, CreatedBy: "lepton",
	}})
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = spec.Entrypoint
	cf.Config.Cmd = spec.Cmd
	cf.Config.Env = append([]string{"PATH=/bin:/usr/bin:/usr/local/bin"}, spec.Env...)
	cf.Config.WorkingDir = spec.WorkingDir
	cf.Config.Labels = spec.Labels
	return mutate.ConfigFile(img, cf)
}

func layerBytes(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{"/": true}
	var dirList []string
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return nil, fmt.Errorf("image file %q: path must be absolute and clean", f.Path)
		}
		for d := path.Dir(f.Path); !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			dirList = append(dirList, d)
		}
	}
	sort.Strings(dirList) // parents before children
	for _, d := range dirList {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		name := strings.TrimPrefix(f.Path, "/")
		if f.Dir {
			if dirs[f.Path] {
				continue
			}
			mode := f.Mode
			if mode == 0 {
				mode = 0o1777
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: epoch}); err != nil {
				return nil, err
			}
			continue
		}
		if f.Link != "" {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: f.Link, Mode: 0o777, ModTime: epoch}); err != nil {
				return nil, err
			}
			continue
		}
		data := f.Data
		if f.Source != "" {
			b, err := os.ReadFile(f.Source)
			if err != nil {
				return nil, fmt.Errorf("image file %s: %w", f.Path, err)
			}
			data = b
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: mode, ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Push writes img to repo (registry/path) under each tag and returns the
// image's digest reference (repo@sha256:...). A registry on a loopback
// address is spoken to over plain HTTP, as local test registries are.
func Push(ctx context.Context, img v1.Image, repo string, tags ...string) (string, error) {
	var opts []name.Option
	if Loopback(repo) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(repo, opts...)
	if err != nil {
		return "", fmt.Errorf("image repository %q: %w", repo, err)
	}
	dg, err := img.Digest()
	if err != nil {
		return "", err
	}
	// The digest first: a tag then only adds a manifest the registry holds.
	if err := remote.Write(r.Digest(dg.String()), img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("push %s: %w", repo, err)
	}
	for _, t := range tags {
		if err := remote.Write(r.Tag(t), img, remote.WithContext(ctx)); err != nil {
			return "", fmt.Errorf("push %s:%s: %w", repo, t, err)
		}
	}
	return r.Digest(dg.String()).String(), nil
}

// Loopback reports whether repo's registry host is a loopback address or
// localhost.
func Loopback(repo string) bool {
	host, _, _ := strings.Cut(repo, "/")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Append returns img with one more layer holding files (a run's inputs on
// top of lepton's own image): the base layers keep their digests, so a
// registry that has them receives only the new layer.
func Append(img v1.Image, files []File) (v1.Image, error) {
	layerTar, err := layerBytes(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	out, err := mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: epoch}, CreatedBy: "lepton",
	}})
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	return out, nil
}
