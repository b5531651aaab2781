package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoCloudSDK: the agent reaches the run storage through signed URLs; a
// cloud SDK linked in would make every node download it for nothing.
func TestNoCloudSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave %d packages: %s", len(deps), out)
	}
	for _, d := range deps {
		for _, sdk := range []string{"github.com/aws/aws-sdk-go", "cloud.google.com/go", "github.com/Azure/azure-sdk-for-go", "google.golang.org/api"} {
			if strings.HasPrefix(d, sdk) {
				t.Errorf("lepton-agent links %s (a cloud SDK)", d)
			}
		}
	}
}
