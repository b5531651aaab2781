package catalog

import (
	"fmt"
	"strconv"
	"strings"
)

// GPUSpec is a parsed gpu argument: NAME[:COUNT].
//
//	A100        any A100, whatever its memory, 1 per node
//	A100-80GB   an A100 with 80 GB of memory
//	h100:8      8 H100 per node (names are case-insensitive)
//	24GB+       any GPU with at least 24 GB of memory
type GPUSpec struct {
	Model       string  // canonical upper-case model without a memory suffix ("A100"); empty for "NGB+"
	MemoryGB    float64 // exact per-GPU memory from a "-NGB" suffix; 0 = any
	MinMemoryGB float64 // lower bound from "NGB+"; 0 = none
	Count       int     // GPUs per node; at least 1
}

// maxGPUsPerNode bounds COUNT: no instance type has more than 16 GPUs, so a larger
// number is almost certainly a typo (for example a node count in the wrong place).
const maxGPUsPerNode = 64

// ParseGPU parses the gpu argument of a cluster. Errors quote the spec and say
// which part is wrong.
func ParseGPU(spec string) (GPUSpec, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return GPUSpec{}, fmt.Errorf("gpu %q: empty; want NAME[:COUNT], for example A100:8, A100-80GB, L4 or 24GB+", spec)
	}
	name, count := s, "1"
	if i := strings.IndexByte(s, ':'); i >= 0 {
		name, count = s[:i], s[i+1:]
		if strings.IndexByte(count, ':') >= 0 {
			return GPUSpec{}, fmt.Errorf("gpu %q: more than one ':'; want NAME[:COUNT]", spec)
		}
	}
	name = strings.TrimSpace(name)
	count = strings.TrimSpace(count)
	if name == "" {
		return GPUSpec{}, fmt.Errorf("gpu %q: missing GPU name before ':'; want NAME[:COUNT], for example A100:8", spec)
	}
	n, err := strconv.Atoi(count)
	if err != nil {
		return GPUSpec{}, fmt.Errorf("gpu %q: count %q is not a whole number", spec, count)
	}
	if n < 1 || n > maxGPUsPerNode {
		return GPUSpec{}, fmt.Errorf("gpu %q: count %d out of range 1..%d (GPUs per node)", spec, n, maxGPUsPerNode)
	}
	out := GPUSpec{Count: n}
	upper := strings.ToUpper(name)
	if strings.HasSuffix(upper, "GB+") {
		gb, err := parseGB(upper[:len(upper)-len("GB+")])
		if err != nil {
			return GPUSpec{}, fmt.Errorf("gpu %q: memory bound %q: %v; want for example 24GB+", spec, name, err)
		}
		out.MinMemoryGB = gb
		return out, nil
	}
	if strings.ContainsAny(upper, "+ \t") {
		return GPUSpec{}, fmt.Errorf("gpu %q: unexpected character in GPU name %q; want NAME[:COUNT] or NGB+", spec, name)
	}
	model, mem, hasMem, err := splitMemory(upper)
	if err != nil {
		return GPUSpec{}, fmt.Errorf("gpu %q: %v", spec, err)
	}
	if model == "" {
		return GPUSpec{}, fmt.Errorf("gpu %q: missing GPU model before the memory size; for any GPU with at least that memory write %sGB+", spec, formatGB(mem))
	}
	out.Model = model
	if hasMem {
		out.MemoryGB = mem
	}
	return out, nil
}

// String renders the spec canonically (upper case, explicit count).
func (g GPUSpec) String() string {
	var name string
	switch {
	case g.MinMemoryGB > 0:
		name = formatGB(g.MinMemoryGB) + "GB+"
	case g.MemoryGB > 0:
		name = g.Model + "-" + formatGB(g.MemoryGB) + "GB"
	default:
		name = g.Model
	}
	return fmt.Sprintf("%s:%d", name, g.Count)
}

// Matches reports whether one node of offer o satisfies the spec. The count must be
// equal, not at least: a request for A100:1 should not silently rent an 8-GPU host.
func (g GPUSpec) Matches(o *Offer) bool {
	if o.GPUCount != g.Count {
		return false
	}
	return g.matchesModel(o)
}

func (g GPUSpec) matchesModel(o *Offer) bool {
	if g.MinMemoryGB > 0 {
		return o.GPUMemoryGB >= g.MinMemoryGB
	}
	if o.model != g.Model {
		return false
	}
	return g.MemoryGB == 0 || o.GPUMemoryGB == g.MemoryGB
}

// splitMemory splits "A100-80GB" into ("A100", 80, true). A name without a
// "-NGB" suffix is returned unchanged. "80GB" alone gives model "".
func splitMemory(upper string) (model string, gb float64, ok bool, err error) {
	if !strings.HasSuffix(upper, "GB") {
		return upper, 0, false, nil
	}
	i := strings.LastIndexByte(upper, '-')
	num := upper[i+1 : len(upper)-2]
	if num == "" || !isNumber(num) {
		// Not a memory suffix (a model name could end in "GB" one day).
		return upper, 0, false, nil
	}
	gb, err = parseGB(num)
	if err != nil {
		return "", 0, false, fmt.Errorf("memory %qGB: %v", num, err)
	}
	if i < 0 {
		return "", gb, true, nil
	}
	return upper[:i], gb, true, nil
}

func isNumber(s string) bool {
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' {
			return false
		}
	}
	return true
}

func parseGB(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("missing number")
	}
	if !isNumber(s) {
		return 0, fmt.Errorf("%q is not a number of GB", s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a positive number of GB", s)
	}
	return v, nil
}

func formatGB(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// baseModel is the model of a catalog GPU name: "A100-80GB" -> "A100".
func baseModel(gpu string) string {
	model, _, ok, err := splitMemory(strings.ToUpper(strings.TrimSpace(gpu)))
	if err != nil || !ok || model == "" {
		return strings.ToUpper(strings.TrimSpace(gpu))
	}
	return model
}
