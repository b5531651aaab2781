package runspec

import (
	"encoding/json"
	"fmt"
	"strings"
)

// NodeDirEnv names the variable that moves the agent's working directory
// from /var/lib/lepton (the sandbox gives each node its own directory).
const NodeDirEnv = "LEPTON_NODE_DIR"

// Bootstrap is the user data (AWS), startup script (GCP) or custom data
// (Azure) of a node: a bash script that fetches the agent from agent (a
// signed GET, checked against agent.Digest), writes cfg next to it (0600)
// and runs it. It holds signed URLs only, never a credential.
func Bootstrap(cfg NodeConfig, agent Object) (string, error) {
	if agent.Digest == "" {
		return "", fmt.Errorf("the agent object has no digest")
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	var s strings.Builder
	fmt.Fprintf(&s, "#!/bin/bash\n# lepton node agent: %s node %d\nset -eu\n", cfg.Address, cfg.Node)
	fmt.Fprintf(&s, "dir=\"${%s:-/var/lib/lepton}\"\nmkdir -p \"$dir\"\ncd \"$dir\"\numask 077\n", NodeDirEnv)
	s.WriteString("fetch() {\n  if command -v curl >/dev/null; then curl -fsS --retry 20 --retry-delay 1 --retry-connrefused -o \"$2\" \"$1\"\n  else wget -q -t 20 -O \"$2\" \"$1\"; fi\n}\n")
	fmt.Fprintf(&s, "fetch %s lepton-agent.part\n", shellQuote(agent.URL))
	fmt.Fprintf(&s, "echo %s | sha256sum -c --quiet -\n", shellQuote(strings.TrimPrefix(agent.Digest, "sha256:")+"  lepton-agent.part"))
	s.WriteString("chmod 0700 lepton-agent.part\nmv lepton-agent.part lepton-agent\n")
	fmt.Fprintf(&s, "cat >agent.json <<'LEPTON_EOF'\n%s\nLEPTON_EOF\n", b)
	s.WriteString("exec ./lepton-agent -config agent.json >>agent.log 2>&1\n")
	return s.String(), nil
}

// shellQuote quotes s for bash with single quotes.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
