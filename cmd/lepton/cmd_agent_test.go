package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentHidden: `lepton agent` runs the node agent, and is not listed.
func TestAgentHidden(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-help"}, strings.NewReader(""), &out, &errb, nil); code != 0 || strings.Contains(out.String(), "agent") {
		t.Errorf("help (%d) lists the agent:\n%s", code, out.String())
	}
	out.Reset()
	missing := filepath.Join(t.TempDir(), "agent.json")
	code := run([]string{"agent", "-config", missing}, strings.NewReader(""), &out, &errb, nil)
	if code != 1 || !strings.Contains(errb.String(), "lepton agent: reading the node configuration") {
		t.Errorf("lepton agent -config MISSING: %d\n%s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"agent", "-help"}, strings.NewReader(""), &out, &errb, nil); code != 0 || !strings.Contains(errb.String(), "lepton-agent -config") {
		t.Errorf("lepton agent -help: %d\n%s", code, errb.String())
	}
}
