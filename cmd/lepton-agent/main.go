// Command lepton-agent is the node agent a cluster node's user data fetches
// and starts (runtime/agent). It links no cloud SDK: it reaches the run
// storage through signed URLs with the standard library's HTTP client, so
// it stays small and holds no credential.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/leptonml/lepton/runtime/agent"
)

func main() {
	if err := agent.Main(context.Background(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "lepton-agent: %v\n", err)
		os.Exit(1)
	}
}
