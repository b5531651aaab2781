package catalog

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// Render writes offers as the table of `lepton offers`: one row per offer in the
// given order, with both prices and the date of each price's source, then a line
// with the number of offers and the range of source dates.
func Render(w io.Writer, offers []Offer) error {
	if len(offers) == 0 {
		_, err := fmt.Fprintln(w, "No GPU offers match.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLOUD\tINSTANCE TYPE\tGPU\tGPU MEM\tVCPUS\tMEMORY\tREGION\tZONE\tUSD/HR\tSPOT USD/HR\tPRICE DATE")
	oldest, newest := "", ""
	for i := range offers {
		o := &offers[i]
		spot := "-"
		if o.SpotPricePerHour != nil {
			spot = money(*o.SpotPricePerHour)
		}
		zone := o.Zone
		if zone == "" {
			zone = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s:%d\t%sGB\t%d\t%sGB\t%s\t%s\t%s\t%s\t%s\n",
			o.Cloud, o.InstanceType, o.GPU, o.GPUCount, num(o.GPUMemoryGB), o.VCPUs, num(o.MemoryGB),
			o.Region, zone, money(o.PricePerHour), spot, o.SourceDate)
		if oldest == "" || o.SourceDate < oldest {
			oldest = o.SourceDate
		}
		if o.SourceDate > newest {
			newest = o.SourceDate
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	dates := oldest
	if newest != oldest {
		dates = oldest + " to " + newest
	}
	noun := "offers"
	if len(offers) == 1 {
		noun = "offer"
	}
	_, err := fmt.Fprintf(w, "\n%d %s; prices per node and hour in USD, from public price lists dated %s (sources: lepton offers -json).\n", len(offers), noun, dates)
	return err
}

// RenderJSON writes offers as the JSON array of `lepton offers -json`: objects with
// exactly cloud, instance_type, gpu, gpu_count, gpu_memory_gb, vcpus, memory_gb,
// region, zone, price_per_hour, spot_price_per_hour (null without a spot price),
// source and source_date.
func RenderJSON(w io.Writer, offers []Offer) error {
	if offers == nil {
		offers = []Offer{} // an empty list is [], not null
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(offers)
}

func money(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
