package main

import (
	"os"
	"testing"
)

// maxBinaryBytes is issue 10's limit: the binary is no larger than it was when
// the issue was filed (174 MB). docs/benchmarks/size.md says where the bytes
// go and what has been done about them; with the Kubernetes target on the
// dynamic client and GCS on the REST client it is 156.3 MB.
const maxBinaryBytes = 174_000_000

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
