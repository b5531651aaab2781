package main

import (
	"strings"

	"github.com/leptonml/lepton/providers/catalog"
)

const offersHelp = `
Usage: lepton offers [options]

  Lists the GPU offer catalog bundled with lepton (AWS, GCP and Azure
  instance types with their GPUs, on-demand and spot prices per hour, regions
  and zones, each row with its source and date), cheapest first.

  Point -catalog (or LEPTON_CATALOG) at a CSV file of your own, with the same
  columns, to refresh prices: its rows replace the bundled ones for the same
  cloud, instance type, region and zone.

Examples:
  lepton offers -gpu A100:8
  lepton offers -gpu 24GB+ -cloud gcp,azure -spot
  lepton offers -gpu H100 -region us-east-1 -json
`

func cmdOffers(m *meta, args []string) int {
	fs := m.flags("offers", offersHelp)
	gpu := fs.String("gpu", "", "GPU spec NAME[:COUNT]: A100, A100-80GB:8, H100, L4, T4, or 24GB+ (any GPU with at least that memory).")
	clouds := fs.String("cloud", "", "Comma-separated clouds: aws, gcp, azure.")
	regions := fs.String("region", "", "Comma-separated regions.")
	spot := fs.Bool("spot", false, "Price on the spot market (offers without a spot price are left out).")
	maxPrice := fs.Float64("max-price", 0, "Only offers at most this many USD per hour per node.")
	asJSON := fs.Bool("json", false, "Print a JSON array of offers.")
	file := fs.String("catalog", "", "A catalog CSV of your own whose rows refresh the bundled prices.")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return m.errorf("offers takes no arguments; use -gpu, -cloud, -region, -spot")
	}
	if *file == "" {
		*file = m.getenv("LEPTON_CATALOG")
	}
	cat, err := catalog.Resolve(*file)
	if err != nil {
		return m.errorf("%v", err)
	}
	offers, err := catalog.List(cat, catalog.Filter{GPU: *gpu, Clouds: splitList(*clouds), Regions: splitList(*regions), Spot: *spot, MaxPricePerHour: *maxPrice})
	if err != nil {
		return m.errorf("%v", err)
	}
	if *asJSON {
		err = catalog.RenderJSON(m.stdout, offers)
	} else {
		err = catalog.Render(m.stdout, offers)
	}
	if err != nil {
		return m.errorf("%v", err)
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
