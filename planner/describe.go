package planner

import (
	"fmt"
	"strings"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
)

// DescribeInstance renders a state instance as `state show` prints it: its
// attributes in HCL syntax, sensitive values hidden.
func DescribeInstance(r *state.Resource) (string, error) {
	schema := lang.Schemas()[r.Kind]
	if schema == nil {
		return "", fmt.Errorf("%s has unknown kind %q", r.Address, r.Kind)
	}
	v, err := decodeInstance(r, schema.StateType())
	if err != nil {
		return "", err
	}
	v = markSensitive(v, schema.Sensitive)
	var b strings.Builder
	fmt.Fprintf(&b, "# %s:", r.Address)
	if r.Status != "" && r.Status != state.StatusReady {
		fmt.Fprintf(&b, " (%s)", r.Status)
	}
	fmt.Fprintf(&b, "\n%s %q {\n", r.Kind, r.Name)
	renderBody(&b, v, v, Create, 2, Colors{}, nil, nil)
	b.WriteString("}\n")
	// renderBody marks every line as created; state show prints plain lines.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.Replace(l, "+ ", "  ", 1)
	}
	return strings.Join(lines, "\n"), nil
}
