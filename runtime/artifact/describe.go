package artifact

import (
	"fmt"
	"sort"
	"strings"
)

// Describe renders the model for people (`lepton show training.NAME`):
// identity, architecture with parameter counts, classes and metrics.
func (m *Model) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "model:     %s\n", orDash(m.digest))
	fmt.Fprintf(&b, "kind:      %s\n", m.Kind)
	if a := m.Architecture; a != nil {
		fmt.Fprintf(&b, "objective: %s (%s)\n", a.Objective, a.ModelKind)
		fmt.Fprintf(&b, "input:     %v\n", a.InputShape)
		b.WriteString("layers:\n")
		total := 0
		for i, l := range m.Layers() {
			desc := l.Desc
			if l.Params > 0 {
				desc += fmt.Sprintf("  (%d parameters)", l.Params)
			}
			total += l.Params
			fmt.Fprintf(&b, "  %d. %s\n", i, desc)
		}
		if a.Objective == "classification" {
			b.WriteString("  output: softmax\n")
		}
		fmt.Fprintf(&b, "parameters: %d\n", total)
	}
	if len(m.ClassLabels) > 0 {
		fmt.Fprintf(&b, "classes:   %s\n", strings.Join(m.ClassLabels, ", "))
	}
	if len(m.Preprocessing) > 0 {
		if n, err := ParseNormalization(m.Preprocessing); err == nil && n.Method != "" && n.Method != "none" {
			fmt.Fprintf(&b, "normalize: %s\n", n.Method)
		}
	}
	writeMap(&b, "metrics:", m.Metrics, func(v float64) string { return fmt.Sprintf("%.4f", v) })
	meta := map[string]string{}
	for k, v := range m.Meta {
		meta[k] = v
	}
	writeMap(&b, "run:", meta, func(v string) string { return v })
	if len(m.Payload) > 0 {
		fmt.Fprintf(&b, "payload:   %d bytes\n", len(m.Payload))
	}
	if m.Summary != "" {
		b.WriteString(strings.TrimRight(m.Summary, "\n") + "\n")
	}
	return b.String()
}

// LayerInfo is one layer of a model, described for people.
type LayerInfo struct {
	Desc   string `json:"desc"`
	Params int    `json:"params"`
}

// Layers describes the model's layers with their parameter counts (weights
// and biases); nil for a model without an architecture.
func (m *Model) Layers() []LayerInfo {
	a := m.Architecture
	if a == nil {
		return nil
	}
	out := make([]LayerInfo, 0, len(a.Layers))
	wi := 0
	for _, l := range a.Layers {
		desc := ""
		switch l.Type {
		case LayerDense:
			desc = fmt.Sprintf("dense %d -> %d", l.In, l.Out)
		case LayerConv2D:
			desc = fmt.Sprintf("conv2d %d -> %d, %dx%d, pad %d", l.In, l.Out, l.Kernel, l.Kernel, l.Pad)
		case LayerMaxPool:
			desc = fmt.Sprintf("maxpool %dx%d", l.Size, l.Size)
		case LayerFlatten:
			desc = "flatten"
		}
		if l.Activation != "" {
			desc += ", " + l.Activation
		}
		if l.Dropout > 0 {
			desc += fmt.Sprintf(", dropout %g", l.Dropout)
		}
		params := 0
		if l.HasWeights() && wi+1 < len(m.Weights) {
			params = len(m.Weights[wi].Data) + len(m.Weights[wi+1].Data)
			wi += 2
		}
		out = append(out, LayerInfo{Desc: desc, Params: params})
	}
	return out
}

func writeMap[V any](b *strings.Builder, title string, m map[string]V, f func(V) string) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString(title + "\n")
	for _, k := range keys {
		fmt.Fprintf(b, "  %-16s %s\n", k, f(m[k]))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
