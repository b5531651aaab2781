package catalog

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/leptonml/lepton/internal/suggest"
)

// GPUModels lists the GPU models the catalog has offers of (A100, H100, L4...).
func (c *Catalog) GPUModels() []string {
	seen := map[string]bool{}
	var out []string
	for i := range c.offers {
		if m := c.offers[i].model; m != "" && !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// CheckGPU parses a gpu spec and checks that the GPU it names is one the
// catalog knows, so a typo is reported as such rather than as "no offer
// matches".
func (c *Catalog) CheckGPU(spec string) (GPUSpec, error) {
	g, err := ParseGPU(spec)
	if err != nil {
		return g, err
	}
	if g.Model == "" {
		return g, nil // NGB+: any model
	}
	models := c.GPUModels()
	if !slices.Contains(models, g.Model) {
		return g, fmt.Errorf("gpu %q: unknown GPU %q%s; the catalog has %s (or write NGB+ for any GPU with at least N GB)", spec, g.Model, suggest.Hint(g.Model, models), strings.Join(models, ", "))
	}
	return g, nil
}

// CheckInstanceType checks that an instance type is in the catalog, on one
// of the given clouds when any are given.
func (c *Catalog) CheckInstanceType(instanceType string, clouds []string) error {
	seen := map[string]bool{}
	var names []string
	for i := range c.offers {
		o := &c.offers[i]
		if len(clouds) > 0 && !slices.Contains(clouds, o.Cloud) {
			continue
		}
		if strings.EqualFold(o.InstanceType, instanceType) {
			return nil
		}
		if !seen[o.InstanceType] {
			seen[o.InstanceType] = true
			names = append(names, o.InstanceType)
		}
	}
	where := "the catalog"
	if len(clouds) > 0 {
		where = "the catalog's " + strings.Join(clouds, ", ") + " offers"
	}
	sort.Strings(names)
	shown := names
	if len(shown) > 12 {
		shown = shown[:12]
	}
	list := strings.Join(shown, ", ")
	if len(names) > len(shown) {
		list += fmt.Sprintf(", … %d more (lepton offers lists them)", len(names)-len(shown))
	}
	return fmt.Errorf("instance_type %q is not in %s%s; instance types there: %s", instanceType, where, suggest.Hint(instanceType, names), list)
}

// checkFilter checks the names a filter gives (gpu, instance_type).
func (c *Catalog) checkFilter(f Filter) error {
	if strings.TrimSpace(f.GPU) != "" {
		if _, err := c.CheckGPU(f.GPU); err != nil {
			return err
		}
	}
	if f.InstanceType != "" {
		return c.CheckInstanceType(f.InstanceType, nil)
	}
	return nil
}
