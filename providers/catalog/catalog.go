// Package catalog is lepton's GPU offer catalog: instance types of AWS, GCP and
// Azure with their GPUs, sizes and hourly prices per region and zone, the gpu spec
// grammar of the cluster block, and the optimizer that picks the cheapest offer
// for a cluster with an ordered list of fallbacks.
//
// The catalog ships embedded in the binary (data/catalog.csv; every row names its
// public source and date, see data/README.md). A user can point lepton at a CSV file
// of the same shape to refresh prices: its rows replace the embedded rows with the
// same cloud, instance type, region and zone, and add new ones.
package catalog

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed data/catalog.csv
var embedded []byte

// knownCloud tells the clouds the catalog may name; a row with another cloud is an
// error, so a typo in a user catalog does not silently produce offers nobody can
// provision.
func knownCloud(c string) bool { return c == "aws" || c == "gcp" || c == "azure" }

// Offer is one instance type in one region and zone at one price. The JSON form has
// exactly the fields of `lepton offers -json`.
type Offer struct {
	Cloud        string  `json:"cloud"`
	InstanceType string  `json:"instance_type"`
	GPU          string  `json:"gpu"`
	GPUCount     int     `json:"gpu_count"`
	GPUMemoryGB  float64 `json:"gpu_memory_gb"` // per GPU, as marketed (A10G: 24)
	VCPUs        int     `json:"vcpus"`
	MemoryGB     float64 `json:"memory_gb"`
	Region       string  `json:"region"`
	Zone         string  `json:"zone"` // empty when the cloud prices per region (Azure)
	PricePerHour float64 `json:"price_per_hour"`
	// SpotPricePerHour is nil when the source has no spot price for the row.
	SpotPricePerHour *float64 `json:"spot_price_per_hour"`
	Source           string   `json:"source"`
	SourceDate       string   `json:"source_date"` // YYYY-MM-DD

	Notes string `json:"-"`
	Where string `json:"-"` // file:line the row came from, for error messages
	model string // upper-case GPU model without memory suffix, for matching
}

// HasSpot reports whether the offer can be rented as spot.
func (o *Offer) HasSpot() bool { return o.SpotPricePerHour != nil }

// Price is the per-node hourly price on the spot or on-demand market, and whether
// the offer is available on that market at all.
func (o *Offer) Price(spot bool) (float64, bool) {
	if !spot {
		return o.PricePerHour, true
	}
	if o.SpotPricePerHour == nil {
		return 0, false
	}
	return *o.SpotPricePerHour, true
}

// Key identifies an offer: one price per cloud, instance type, region and zone.
func (o *Offer) Key() string {
	return o.Cloud + "/" + o.InstanceType + "/" + o.Region + "/" + o.Zone
}

// Catalog is an immutable set of offers, kept sorted by on-demand and by spot price
// so that choosing an offer is a single filtered scan.
type Catalog struct {
	offers   []Offer
	onDemand []int // indexes into offers, cheapest on-demand first (tie-break: see less)
	spot     []int // indexes of offers with a spot price, cheapest spot first
	// byModel holds the same two orders restricted to one GPU model, so a request
	// naming a model scans only that model's offers.
	byModel map[string]*markets
}

type markets struct{ onDemand, spot []int }

// requiredColumns are the columns every catalog file must have (any order; other
// columns are allowed, and one named "notes" is kept).
func requiredColumns() []string {
	return []string{
		"cloud", "instance_type", "gpu", "gpu_count", "gpu_memory_gb", "vcpus", "memory_gb",
		"region", "zone", "price_per_hour", "spot_price_per_hour", "source", "source_date",
	}
}

// Default returns the catalog embedded in the binary. It parses the embedded CSV on
// each call (well under a millisecond) rather than caching it in a package variable.
// The embedded file is checked by the package tests, so a parse error here means a
// broken build and panics.
func Default() *Catalog {
	c, err := parse("embedded catalog data/catalog.csv", bytes.NewReader(embedded))
	if err != nil {
		panic(err)
	}
	return c
}

// Load reads a catalog in CSV form (see data/README.md for the columns).
func Load(r io.Reader) (*Catalog, error) { return parse("catalog", r) }

// LoadFile reads a catalog CSV file; errors name the file and line.
func LoadFile(path string) (*Catalog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("offer catalog: %w", err)
	}
	defer f.Close()
	return parse(path, f)
}

// Resolve returns the catalog lepton should use: the embedded one when userFile is
// empty, otherwise the embedded one refreshed with the rows of userFile (see Merge).
func Resolve(userFile string) (*Catalog, error) {
	base := Default()
	if userFile == "" {
		return base, nil
	}
	user, err := LoadFile(userFile)
	if err != nil {
		return nil, err
	}
	return Merge(base, user), nil
}

// Merge returns base with the offers of override added; an override row replaces
// the base row with the same cloud, instance type, region and zone, so a user file
// with fresh prices for a few instance types updates just those.
func Merge(base, override *Catalog) *Catalog {
	seen := make(map[string]int, len(base.offers)+len(override.offers))
	offers := make([]Offer, 0, len(base.offers)+len(override.offers))
	for _, set := range [][]Offer{base.offers, override.offers} {
		for _, o := range set {
			if i, ok := seen[o.Key()]; ok {
				offers[i] = o
				continue
			}
			seen[o.Key()] = len(offers)
			offers = append(offers, o)
		}
	}
	return newCatalog(offers)
}

// New builds a catalog from offers (for tests and generated catalogs). Offers are
// validated like CSV rows.
func New(offers []Offer) (*Catalog, error) {
	out := make([]Offer, len(offers))
	seen := make(map[string]string, len(offers))
	for i, o := range offers {
		if o.Where == "" {
			o.Where = fmt.Sprintf("offer %d", i+1)
		}
		if err := validate(&o); err != nil {
			return nil, err
		}
		if prev, dup := seen[o.Key()]; dup {
			return nil, fmt.Errorf("%s: duplicate offer %s (first at %s)", o.Where, o.Key(), prev)
		}
		seen[o.Key()] = o.Where
		o.model = baseModel(o.GPU)
		out[i] = o
	}
	return newCatalog(out), nil
}

// Offers returns a copy of every offer, in catalog order.
func (c *Catalog) Offers() []Offer { return append([]Offer(nil), c.offers...) }

// Len is the number of offers.
func (c *Catalog) Len() int { return len(c.offers) }

// SourceDates returns the oldest and newest source_date in the catalog.
func (c *Catalog) SourceDates() (oldest, newest string) {
	for i := range c.offers {
		d := c.offers[i].SourceDate
		if oldest == "" || d < oldest {
			oldest = d
		}
		if d > newest {
			newest = d
		}
	}
	return oldest, newest
}

func newCatalog(offers []Offer) *Catalog {
	c := &Catalog{offers: offers}
	c.onDemand = make([]int, len(offers))
	for i := range offers {
		c.onDemand[i] = i
		if offers[i].SpotPricePerHour != nil {
			c.spot = append(c.spot, i)
		}
	}
	sort.SliceStable(c.onDemand, func(a, b int) bool { return c.less(c.onDemand[a], c.onDemand[b], false) })
	sort.SliceStable(c.spot, func(a, b int) bool { return c.less(c.spot[a], c.spot[b], true) })
	c.byModel = map[string]*markets{}
	get := func(i int) *markets {
		m := c.byModel[offers[i].model]
		if m == nil {
			m = &markets{}
			c.byModel[offers[i].model] = m
		}
		return m
	}
	for _, i := range c.onDemand {
		m := get(i)
		m.onDemand = append(m.onDemand, i)
	}
	for _, i := range c.spot {
		m := get(i)
		m.spot = append(m.spot, i)
	}
	return c
}

// less orders offers cheapest first. Ties (equal price on the market asked for) are
// broken by cloud, region, zone and instance type, in that order, lexically; the key
// is unique, so the order is total and choices are deterministic.
func (c *Catalog) less(i, j int, spot bool) bool {
	a, b := &c.offers[i], &c.offers[j]
	pa, _ := a.Price(spot)
	pb, _ := b.Price(spot)
	if pa != pb {
		return pa < pb
	}
	if a.Cloud != b.Cloud {
		return a.Cloud < b.Cloud
	}
	if a.Region != b.Region {
		return a.Region < b.Region
	}
	if a.Zone != b.Zone {
		return a.Zone < b.Zone
	}
	return a.InstanceType < b.InstanceType
}

func parse(name string, r io.Reader) (*Catalog, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file; want a CSV header with %s", name, strings.Join(requiredColumns(), ","))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	var missing []string
	for _, c := range requiredColumns() {
		if _, ok := col[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s:1: header lacks column(s) %s", name, strings.Join(missing, ", "))
	}
	notesCol, hasNotes := col["notes"]

	var offers []Offer
	seen := map[string]string{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		where := fmt.Sprintf("%s:%d", name, line)
		get := func(c string) string { return strings.TrimSpace(rec[col[c]]) }
		o := Offer{
			Cloud:        strings.ToLower(get("cloud")),
			InstanceType: get("instance_type"),
			GPU:          get("gpu"),
			Region:       get("region"),
			Zone:         get("zone"),
			Source:       get("source"),
			SourceDate:   get("source_date"),
			Where:        where,
		}
		if hasNotes {
			o.Notes = strings.TrimSpace(rec[notesCol])
		}
		var errs []error
		num := func(c string, required bool) *float64 {
			s := get(c)
			if s == "" {
				if required {
					errs = append(errs, fmt.Errorf("column %s: empty", c))
				}
				return nil
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				errs = append(errs, fmt.Errorf("column %s: %q is not a number", c, s))
				return nil
			}
			return &v
		}
		whole := func(c string) int {
			p := num(c, true)
			if p == nil {
				return 0
			}
			if *p != float64(int(*p)) {
				errs = append(errs, fmt.Errorf("column %s: %v is not a whole number", c, *p))
			}
			return int(*p)
		}
		o.GPUCount = whole("gpu_count")
		o.VCPUs = whole("vcpus")
		if p := num("gpu_memory_gb", true); p != nil {
			o.GPUMemoryGB = *p
		}
		if p := num("memory_gb", true); p != nil {
			o.MemoryGB = *p
		}
		if p := num("price_per_hour", true); p != nil {
			o.PricePerHour = *p
		}
		o.SpotPricePerHour = num("spot_price_per_hour", false)
		if len(errs) > 0 {
			return nil, fmt.Errorf("%s: %w", where, errors.Join(errs...))
		}
		if err := validate(&o); err != nil {
			return nil, err
		}
		if prev, dup := seen[o.Key()]; dup {
			return nil, fmt.Errorf("%s: duplicate offer %s (first at %s); keep one price per cloud, instance type, region and zone", where, o.Key(), prev)
		}
		seen[o.Key()] = where
		o.model = baseModel(o.GPU)
		offers = append(offers, o)
	}
	if len(offers) == 0 {
		return nil, fmt.Errorf("%s: no offers after the header", name)
	}
	return newCatalog(offers), nil
}

func validate(o *Offer) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", o.Where, fmt.Sprintf(format, args...))
	}
	switch {
	case !knownCloud(o.Cloud):
		return bad("column cloud: %q is not one of aws, gcp, azure", o.Cloud)
	case o.InstanceType == "":
		return bad("column instance_type: empty")
	case o.GPU == "":
		return bad("column gpu: empty (the catalog lists GPU instance types only)")
	case o.GPUCount < 1:
		return bad("column gpu_count: %d, want at least 1", o.GPUCount)
	case !finite(o.GPUMemoryGB, o.MemoryGB, o.PricePerHour) || (o.SpotPricePerHour != nil && !finite(*o.SpotPricePerHour)):
		return bad("a number is NaN or infinite")
	case o.GPUMemoryGB <= 0:
		return bad("column gpu_memory_gb: %v, want the per-GPU memory in GB", o.GPUMemoryGB)
	case o.VCPUs < 1:
		return bad("column vcpus: %d, want at least 1", o.VCPUs)
	case o.MemoryGB <= 0:
		return bad("column memory_gb: %v, want more than 0", o.MemoryGB)
	case o.Region == "":
		return bad("column region: empty")
	case o.PricePerHour <= 0:
		return bad("column price_per_hour: %v, want a price above 0 USD", o.PricePerHour)
	case o.SpotPricePerHour != nil && *o.SpotPricePerHour <= 0:
		return bad("column spot_price_per_hour: %v, want a price above 0 USD or empty", *o.SpotPricePerHour)
	case o.Source == "":
		return bad("column source: empty; every price must name where it comes from")
	}
	if _, err := time.Parse("2006-01-02", o.SourceDate); err != nil {
		return bad("column source_date: %q is not a date like 2026-05-20", o.SourceDate)
	}
	return nil
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
