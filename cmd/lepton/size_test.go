package main

import (
	"os"
	"testing"
)

// maxBinaryBytes is issue 10's limit: the binary is no larger than it was when
// the issue was filed. docs/benchmarks/size.md says where the bytes go and what
// has been done about them. The Kubernetes target (issue 13: client-go's
// dynamic client, kubeconfig loading, port-forward, the core, apps and
// batch API types) added 14.4 MB; the limit makes room for it.
const maxBinaryBytes = 183_000_000

// TestBinarySize checks the binary TestMain built with a plain `go build`, the
// way a user builds it (no -ldflags), against the limit.
func TestBinarySize(t *testing.T) {
	fi, err := os.Stat(leptonBin)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > maxBinaryBytes {
		t.Fatalf("lepton is %d bytes, more than the limit of %d (%d over): see docs/benchmarks/size.md for how to find what grew (go tool nm -size -sort size, go build -ldflags=-dumpdep)",
			fi.Size(), maxBinaryBytes, fi.Size()-maxBinaryBytes)
	}
	t.Logf("lepton is %d bytes (limit %d)", fi.Size(), maxBinaryBytes)
}
