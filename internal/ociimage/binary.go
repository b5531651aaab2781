package ociimage

import (
	"debug/elf"
	"fmt"
	"os"
	"path"
)

// caBundle is where Debian (and most distributions) keep the TLS roots; an
// image of a static binary needs them to reach object storage over HTTPS.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// BinaryImage is the image of one static linux/amd64 binary (lepton's own,
// for built-in kernels) at /usr/local/bin/NAME as its entrypoint, with a
// writable /tmp and this machine's TLS roots, the way ko builds images: no
// base image, no Docker. It refuses a binary that needs a dynamic loader,
// which would not start in the image.
func BinaryImage(bin, name string, labels map[string]string) (Spec, error) {
	if err := checkStatic(bin); err != nil {
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
	if _, err := os.Stat(caBundle); err == nil {
		spec.Files = append(spec.Files, File{Path: caBundle, Source: caBundle, Mode: 0o644})
	}
	return spec, nil
}

func checkStatic(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("image binary %s: %w", bin, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("image binary %s: built for %s, want linux/amd64", bin, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("image binary %s is linked dynamically; build it with CGO_ENABLED=0", bin)
		}
	}
	return nil
}
