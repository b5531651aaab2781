package ociimage

import (
	"debug/elf"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// caBundle is where Debian (and most distributions) keep the TLS roots; an
// image of a static binary needs them to reach object storage over HTTPS.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// BinaryImage is the image of one linux/amd64 binary (lepton's own, for
// built-in kernels) at /usr/local/bin/NAME as its entrypoint, with a
// writable /tmp and this machine's TLS roots, the way ko builds images: no
// base image, no Docker. A binary linked dynamically (a Go build with cgo,
// the default where a C compiler is installed) gets its program interpreter
// and the shared libraries it names, copied from this machine, so it starts
// in the image as it does here.
func BinaryImage(bin, name string, labels map[string]string) (Spec, error) {
	libs, err := sharedLibs(bin)
	if err != nil {
		return Spec{}, err
	}
	dst := path.Join("/usr/local/bin", name)
	spec := Spec{
		Files: []File{
			{Path: dst, Source: bin},
			{Path: "/tmp", Dir: true},
		},
		Entrypoint: []string{dst},
		Env:        []string{"HOME=/tmp", "SSL_CERT_FILE=" + caBundle},
		WorkingDir: "/tmp",
		Labels:     labels,
	}
	spec.Files = append(spec.Files, libs...)
	if _, err := os.Stat(caBundle); err == nil {
		spec.Files = append(spec.Files, File{Path: caBundle, Source: caBundle, Mode: 0o644})
	}
	return spec, nil
}

// libDirs are where the dynamic loader of Debian (and most distributions)
// finds the libraries a binary names.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// sharedLibs returns the program interpreter and shared libraries bin needs
// (none for a static binary), each at the path it has on this machine, the
// symlinks resolved to their files.
func sharedLibs(bin string) ([]File, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return nil, fmt.Errorf("image binary %s: %w", bin, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("image binary %s: built for %s, want linux/amd64", bin, f.Machine)
	}
	interp := ""
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return nil, fmt.Errorf("image binary %s: program interpreter: %w", bin, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if interp == "" {
		return nil, nil
	}
	var files []File
	add := func(p string) error {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return fmt.Errorf("image binary %s needs %s: %w", bin, p, err)
		}
		files = append(files, File{Path: p, Source: real})
		return nil
	}
	if err := add(interp); err != nil {
		return nil, err
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("image binary %s: %w", bin, err)
	}
	for _, lib := range needed {
		found := false
		for _, d := range libDirs {
			p := path.Join(d, lib)
			if _, err := os.Stat(p); err == nil {
				if err := add(p); err != nil {
					return nil, err
				}
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("image binary %s needs %s, which is in none of %s", bin, lib, strings.Join(libDirs, ", "))
		}
	}
	return files, nil
}
