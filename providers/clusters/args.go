package clusters

import (
	"fmt"
	"github.com/leptonml/lepton/providers/ctyval"
	"math"
	"math/big"
	"sort"

	"github.com/leptonml/lepton/lang"
	"github.com/zclconf/go-cty/cty"
)

// Clouds a cluster can be placed on; "local" is this machine.
const (
	Local = "local"
)

// cloudNames are the provider names of the clouds lepton provisions on.
func cloudNames() []string { return []string{"aws", "azure", "gcp"} }

// args are a cluster's arguments, decoded with defaults applied.
type args struct {
	Clouds       []string // explicit, or every configured cloud
	CloudsSet    bool     // clouds was written in the configuration
	Regions      []string
	GPU          string
	Nodes        int
	Spot         bool
	MaxPrice     float64
	InstanceType string
	DiskGB       int
	Image        string
}

// parseArgs decodes the arguments of v (a config value or a state value; both
// carry the arguments under the same names). providers are the configured
// provider blocks, used for the default clouds.
func parseArgs(v cty.Value, configured map[string]map[string]string) (args, error) {
	var a args
	a.Clouds = strList(attr(v, "clouds"))
	a.CloudsSet = !attr(v, "clouds").IsNull()
	a.Regions = strList(attr(v, "regions"))
	a.GPU = str(attr(v, "gpu"))
	a.Nodes = 1
	if n, ok := num(attr(v, "nodes")); ok {
		if n != math.Trunc(n) || n < 1 || n > 1000 {
			return a, fmt.Errorf("nodes = %v: want a whole number from 1 to 1000", n)
		}
		a.Nodes = int(n)
	}
	if b := attr(v, "spot"); !b.IsNull() && b.IsKnown() && b.Type() == cty.Bool {
		a.Spot = b.True()
	}
	if p, ok := num(attr(v, "max_price_per_hour")); ok {
		if p <= 0 {
			return a, fmt.Errorf("max_price_per_hour = %v: want a positive price per node in USD", p)
		}
		a.MaxPrice = p
	}
	a.InstanceType = str(attr(v, "instance_type"))
	if d, ok := num(attr(v, "disk_gb")); ok {
		if d != math.Trunc(d) || d < 1 || d > 65536 {
			return a, fmt.Errorf("disk_gb = %v: want a whole number of GB from 1 to 65536", d)
		}
		a.DiskGB = int(d)
	}
	a.Image = str(attr(v, "image"))

	if !a.CloudsSet {
		for _, c := range cloudNames() {
			if _, ok := configured[c]; ok {
				a.Clouds = append(a.Clouds, c)
			}
		}
		if len(a.Clouds) == 0 {
			// No cloud provider configured: the cluster is this machine.
			a.Clouds = []string{Local}
		}
		return a, nil
	}
	if len(a.Clouds) == 0 {
		return a, fmt.Errorf("clouds is empty: name at least one of aws, gcp, azure, or [\"local\"] for this machine")
	}
	seen := map[string]bool{}
	for _, c := range a.Clouds {
		if seen[c] {
			return a, fmt.Errorf("clouds lists %q twice", c)
		}
		seen[c] = true
		switch c {
		case Local:
			if len(a.Clouds) > 1 {
				return a, fmt.Errorf("clouds mixes \"local\" (this machine) with clouds: a cluster is either this machine or cloud instances")
			}
		case Kubernetes:
			if len(a.Clouds) > 1 {
				return a, fmt.Errorf("clouds mixes \"kubernetes\" with other clouds: a cluster is either a Kubernetes namespace or cloud instances")
			}
		case "aws", "gcp", "azure":
			if _, ok := configured[c]; !ok {
				return a, fmt.Errorf("clouds includes %q but the configuration has no provider %q block; add one (an empty block uses the SDK's defaults for AWS)", c, c)
			}
		default:
			return a, fmt.Errorf("clouds: unknown cloud %q (want aws, gcp, azure, kubernetes or local)", c)
		}
	}
	sort.Strings(a.Clouds)
	return a, nil
}

func (a args) local() bool { return len(a.Clouds) == 1 && a.Clouds[0] == Local }

// seed is the part of the idempotency token seed that comes from the
// arguments: EC2 refuses a reused ClientToken whose parameters differ, and the
// disk size and image are parameters the offer does not carry.
func (a args) seed() string { return fmt.Sprintf("disk=%d/image=%s", a.DiskGB, a.Image) }

// state builds the cluster's state value: the arguments of cfg as written, and
// the computed attributes from comp (unknown when missing).
func stateValue(cfg cty.Value, comp map[string]cty.Value) cty.Value {
	schema := lang.Schemas()["cluster"]
	ty := schema.StateType()
	m := map[string]cty.Value{}
	for name, aty := range ty.AttributeTypes() {
		if v, ok := comp[name]; ok {
			m[name] = v
			continue
		}
		if v := attr(cfg, name); !v.IsNull() && v.Type().Equals(aty) {
			m[name] = v
			continue
		}
		if _, computed := schema.Computed[name]; computed {
			m[name] = cty.UnknownVal(aty)
			continue
		}
		m[name] = cty.NullVal(aty)
	}
	return cty.ObjectVal(m)
}

// argNames are the cluster's arguments, in the order changes are listed.
func argNames() []string {
	return []string{"clouds", "disk_gb", "gpu", "image", "instance_type", "max_price_per_hour", "nodes", "regions", "spot"}
}

// changedArgs lists the arguments that differ between prior and cfg. A null
// instance_type argument is not a change: the prior holds the computed one.
func changedArgs(prior, cfg cty.Value) []string {
	return ctyval.ChangedArgs(prior, cfg, argNames(), func(name string) bool { return name == "instance_type" })
}

func numVal(f float64) cty.Value { return cty.NumberVal(new(big.Float).SetFloat64(roundCents(f))) }

// roundCents keeps prices to 1/10000 of a dollar so that sums of float prices
// compare equal between plan and apply.
func roundCents(f float64) float64 { return math.Round(f*1e4) / 1e4 }

func strListVal(ss []string) cty.Value {
	if len(ss) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	vs := make([]cty.Value, len(ss))
	for i, s := range ss {
		vs[i] = cty.StringVal(s)
	}
	return cty.ListVal(vs)
}

// Argument readers shared with the other providers.
var (
	str     = ctyval.Str
	num     = ctyval.Num
	attr    = ctyval.Attr
	strList = ctyval.StrList
)
