package catalog

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
)

// zonePriceNote is what a row's notes must say for its price to differ from
// its region's other zones by more than maxZoneSpread (and then say why).
const zonePriceNote = "differs from other zones"

// maxZoneSpread bounds how far one zone's on-demand price may be from the
// median of the other zones of its region for the same instance type: clouds
// price a machine type per region, so a larger gap is a wrong figure (one made
// examples/multi-cloud pick a phantom A100-80GB offer at $23.57/hr against
// $40.22 in the next zone).
const maxZoneSpread = 0.25

func TestZonePricesAgree(t *testing.T) {
	if bad := zoneOutliers(Default()); len(bad) > 0 {
		t.Errorf("%d rows disagree with the other zones of their region by more than %.0f%% without a note saying why (%q):\n%s",
			len(bad), maxZoneSpread*100, zonePriceNote, strings.Join(bad, "\n"))
	}
}

// zoneOutliers lists the rows whose on-demand price is more than
// maxZoneSpread from the median of the other zones of their region, for the
// same cloud and instance type, and whose notes do not say why.
func zoneOutliers(c *Catalog) []string {
	groups := map[string][]*Offer{}
	for i := range c.offers {
		o := &c.offers[i]
		k := o.Cloud + "/" + o.InstanceType + "/" + o.Region
		groups[k] = append(groups[k], o)
	}
	var bad []string
	for k, os := range groups {
		for i, o := range os {
			var others []float64
			for j, p := range os {
				// A row whose note explains its price is no reference for the others.
				if j != i && !strings.Contains(p.Notes, zonePriceNote) {
					others = append(others, p.PricePerHour)
				}
			}
			if len(others) == 0 {
				continue
			}
			sort.Float64s(others)
			med := others[len(others)/2]
			if len(others)%2 == 0 {
				med = (others[len(others)/2-1] + others[len(others)/2]) / 2
			}
			if spread := math.Abs(o.PricePerHour-med) / med; spread > maxZoneSpread && !strings.Contains(o.Notes, zonePriceNote) {
				bad = append(bad, fmt.Sprintf("%s zone %s (%s): $%.4f/hr is %.0f%% from the other zones' $%.4f", k, o.Zone, o.Where, o.PricePerHour, spread*100, med))
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// TestZonePricesAgreeCatches: the check finds a wrong figure like the one it
// was written for, and accepts it with a note.
func TestZonePricesAgreeCatches(t *testing.T) {
	spot := 1.0
	mk := func(zone string, price float64, notes string) Offer {
		return Offer{Cloud: "gcp", InstanceType: "a2-ultragpu-8g", GPU: "A100-80GB", GPUCount: 8, GPUMemoryGB: 80, VCPUs: 96, MemoryGB: 1360,
			Region: "us-central1", Zone: zone, PricePerHour: price, SpotPricePerHour: &spot, Source: "test", SourceDate: "2026-11-27", Notes: notes}
	}
	for _, tc := range []struct {
		notes string
		want  bool
	}{{"", false}, {"promotional price; " + zonePriceNote + " until 2027", true}} {
		cat, err := New([]Offer{mk("us-central1-a", 23.57, tc.notes), mk("us-central1-c", 40.22, ""), mk("us-central1-b", 40.22, "")})
		if err != nil {
			t.Fatal(err)
		}
		ok := len(zoneOutliers(cat)) == 0
		if ok != tc.want {
			t.Errorf("notes %q: accepted = %v, want %v", tc.notes, ok, tc.want)
		}
	}
}
