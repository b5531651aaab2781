package main

import (
	"context"
	"fmt"

	"github.com/leptonml/lepton/runtime/agent"
)

// cmdAgent runs the node agent (`lepton agent -config agent.json`), as
// cmd/lepton-agent does, for a node given the full lepton binary.
func cmdAgent(m *meta, args []string) int {
	if err := agent.Main(context.Background(), args, m.stderr); err != nil {
		fmt.Fprintf(m.stderr, "lepton agent: %v\n", err)
		return 1
	}
	return 0
}
