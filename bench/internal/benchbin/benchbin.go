// Package benchbin prepares what every benchmark of the built binary starts
// from: a work directory and the lepton binary under test, staged so that
// each binary is measured as an installed one is read.
package benchbin

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// Prepare returns the work directory (work, or a new temporary one named
// after prefix that cleanup removes) and the absolute path of the staged
// binary: bin, or ./cmd/lepton built into the work directory when bin is
// empty (run from the repository's root).
func Prepare(bin, work, prefix string) (staged, dir string, cleanup func(), err error) {
	cleanup = func() {}
	if work == "" {
		d, err := os.MkdirTemp("", prefix)
		if err != nil {
			return "", "", cleanup, err
		}
		cleanup = func() { os.RemoveAll(d) }
		work = d
	}
	fail := func(err error) (string, string, func(), error) {
		cleanup()
		return "", "", func() {}, err
	}
	if bin == "" {
		bin = filepath.Join(work, "lepton")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/lepton")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fail(fmt.Errorf("building lepton: %w", err))
		}
	}
	staged, err = stageBinary(bin, work)
	if err != nil {
		return fail(err)
	}
	if staged, err = filepath.Abs(staged); err != nil {
		return fail(err)
	}
	return staged, work, cleanup, nil
}

// stageBinary copies the binary under test into the work directory and drops
// the copy from the page cache, so that every binary is measured from the
// same starting point.
//
// Peak RSS counts the binary's pages that the process maps, and how many that
// is depends on how the file came into the page cache: the Go linker writes
// its output through a shared mapping, which leaves the file in 2 MB page-cache
// folios, and Linux then maps a whole 2 MB folio at the first touch of any of
// its pages. The same no-op plan of 10,000 peaked at 310–322 MB from a freshly
// linked binary and at 275–278 MB from a copy read from disk (the heap, 221 MB,
// the same in both; see docs/benchmarks/core.md).
func stageBinary(bin, work string) (string, error) {
	src, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer src.Close()
	staged := filepath.Join(work, "lepton-under-test")
	dst, err := os.OpenFile(staged, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if err == nil {
		err = dropCached(dst)
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("copying %s into the work directory: %w", bin, err)
	}
	return staged, nil
}
