package catalog

import (
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestDefaultCatalog(t *testing.T) {
	c := Default()
	if c.Len() < 500 {
		t.Fatalf("embedded catalog has %d offers, want at least 500", c.Len())
	}
	perCloud := map[string]int{}
	for _, o := range c.Offers() {
		perCloud[o.Cloud]++
		if o.Source == "" || o.SourceDate == "" {
			t.Errorf("%s: offer without source or date", o.Where)
		}
	}
	for _, cl := range []string{"aws", "gcp", "azure"} {
		if perCloud[cl] < 20 {
			t.Errorf("cloud %s has %d offers, want at least 20", cl, perCloud[cl])
		}
	}
	oldest, newest := c.SourceDates()
	if oldest == "" || newest < oldest {
		t.Errorf("SourceDates = %q, %q", oldest, newest)
	}
}

// Every fact of the seed file (data/seed_gpu_offers.csv, a verbatim copy of the
// project's shared gpu_offers.csv) must be in the embedded catalog unchanged.
func TestSeedRowsInCatalog(t *testing.T) {
	f, err := os.Open(filepath.Join("data", "seed_gpu_offers.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]Offer{}
	for _, o := range Default().Offers() {
		byKey[o.Key()] = o
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("seed value %q: %v", s, err)
		}
		return v
	}
	for _, r := range rows[1:] {
		key := r[col["cloud"]] + "/" + r[col["instance_type"]] + "/" + r[col["region"]] + "/" + r[col["zone"]]
		o, ok := byKey[key]
		if !ok {
			t.Errorf("seed offer %s missing from the catalog", key)
			continue
		}
		if o.PricePerHour != num(r[col["ondemand_usd_hr"]]) || o.SpotPricePerHour == nil || *o.SpotPricePerHour != num(r[col["spot_usd_hr"]]) {
			t.Errorf("%s: prices %v/%v differ from the seed %s/%s", key, o.PricePerHour, o.SpotPricePerHour, r[col["ondemand_usd_hr"]], r[col["spot_usd_hr"]])
		}
		if o.GPU != r[col["gpu_model"]] || strconv.Itoa(o.GPUCount) != r[col["gpu_count"]] || strconv.Itoa(o.VCPUs) != r[col["vcpus"]] {
			t.Errorf("%s: gpu %s:%d vcpus %d differ from the seed", key, o.GPU, o.GPUCount, o.VCPUs)
		}
		if o.Source != r[col["source"]] {
			t.Errorf("%s: source %q, seed says %q", key, o.Source, r[col["source"]])
		}
	}
}

const header = "cloud,instance_type,gpu,gpu_count,gpu_memory_gb,vcpus,memory_gb,region,zone,price_per_hour,spot_price_per_hour,source,source_date\n"

func TestLoadErrors(t *testing.T) {
	good := "aws,p4d.24xlarge,A100,8,40,96,1152,us-east-1,use1-az1,32.7726,6.7915,test,2026-05-20\n"
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "empty file"},
		{"missing column", "cloud,instance_type\n" + good, "header lacks column(s) gpu, gpu_count"},
		{"no rows", header, "no offers after the header"},
		{"bad number", header + good + "aws,p5,H100,8,80,192,2048,us-east-1,use1-az1,abc,,test,2026-05-20\n", "catalog:3: column price_per_hour: \"abc\" is not a number"},
		{"fractional count", header + "aws,p5,H100,1.5,80,192,2048,us-east-1,use1-az1,9,,test,2026-05-20\n", "catalog:2: column gpu_count: 1.5 is not a whole number"},
		{"unknown cloud", header + "oracle,x,H100,8,80,192,2048,r,z,9,,test,2026-05-20\n", "catalog:2: column cloud: \"oracle\""},
		{"no gpu", header + "aws,m5.large,,0,0,2,8,us-east-1,z,0.1,,test,2026-05-20\n", "column gpu: empty"},
		{"NaN price", header + "aws,p5,H100,8,80,192,2048,us-east-1,z,NaN,,test,2026-05-20\n", "column price_per_hour: \"NaN\" is not a number"},
		{"infinite spot", header + "aws,p5,H100,8,80,192,2048,us-east-1,z,9,+Inf,test,2026-05-20\n", "column spot_price_per_hour: \"+Inf\" is not a number"},
		{"zero price", header + "aws,p5,H100,8,80,192,2048,us-east-1,z,0,,test,2026-05-20\n", "column price_per_hour: 0"},
		{"negative spot", header + "aws,p5,H100,8,80,192,2048,us-east-1,z,9,-1,test,2026-05-20\n", "column spot_price_per_hour: -1"},
		{"no source", header + "aws,p5,H100,8,80,192,2048,us-east-1,z,9,,,2026-05-20\n", "column source: empty"},
		{"bad date", header + "aws,p5,H100,8,80,192,2048,us-east-1,z,9,,test,May 2026\n", "column source_date: \"May 2026\""},
		{"duplicate", header + good + good, "catalog:3: duplicate offer aws/p4d.24xlarge/us-east-1/use1-az1 (first at catalog:2)"},
		{"ragged", header + "aws,p5\n", "wrong number of fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadColumnsAnyOrderAndNotes(t *testing.T) {
	in := "source_date,source,notes,spot_price_per_hour,price_per_hour,zone,region,memory_gb,vcpus,gpu_memory_gb,gpu_count,gpu,instance_type,CLOUD\n" +
		"2026-05-20,my quote,negotiated,,1.25,,eastus,28,4,16,1,T4,Standard_NC4as_T4_v3,Azure\n"
	c, err := Load(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Offers()[0]
	if o.Cloud != "azure" || o.PricePerHour != 1.25 || o.HasSpot() || o.Notes != "negotiated" || o.Zone != "" {
		t.Fatalf("offer = %+v", o)
	}
}

func TestLoadFileNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.csv")
	if err := os.WriteFile(path, []byte(header+"aws,p5,H100,8,80,192,2048,us-east-1,z,x,,t,2026-05-20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), path+":2: column price_per_hour") {
		t.Fatalf("LoadFile error = %v", err)
	}
	_, err = LoadFile(filepath.Join(t.TempDir(), "missing.csv"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadFile(missing) = %v, want ErrNotExist", err)
	}
}

func TestResolveMergesUserFile(t *testing.T) {
	if c, err := Resolve(""); err != nil || c.Len() != Default().Len() {
		t.Fatalf("Resolve(\"\") = %v, %v", c, err)
	}
	// A refreshed price for an embedded offer, and a new offer.
	user := header +
		"aws,p4d.24xlarge,A100,8,40,96,1152,us-east-1,use1-az1,20.5,5.5,my refresh,2026-12-01\n" +
		"aws,p4d.24xlarge,A100,8,40,96,1152,us-east-1,use1-az9,21,,my refresh,2026-12-01\n"
	path := filepath.Join(t.TempDir(), "prices.csv")
	if err := os.WriteFile(path, []byte(user), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Resolve(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != Default().Len()+1 {
		t.Fatalf("merged catalog has %d offers, want %d", c.Len(), Default().Len()+1)
	}
	ch, err := Choose(c, Filter{GPU: "A100:8", Clouds: []string{"aws"}})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Best.Zone != "use1-az1" || ch.Best.PricePerHour != 20.5 || ch.Best.SourceDate != "2026-12-01" {
		t.Fatalf("best = %+v, want the refreshed use1-az1 row", ch.Best)
	}
	if ch.Fallbacks[0].Zone != "use1-az9" {
		t.Fatalf("first fallback = %+v, want the new use1-az9 row", ch.Fallbacks[0])
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(header + "aws,p4d.24xlarge,A100,8,40,96,1152,us-east-1,use1-az1,32.7726,6.7915,test,2026-05-20\n")
	f.Add(header + "gcp,a,\"x\"\"y\",1,1,1,1,r,,1,,s,2026-01-01\n")
	f.Add("\ufeff" + header)
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Load(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, o := range c.Offers() {
			if !(o.PricePerHour > 0) || math.IsInf(o.PricePerHour, 0) || o.GPUCount < 1 || o.Source == "" {
				t.Fatalf("invalid offer accepted: %+v", o)
			}
		}
		if _, err := List(c, Filter{}); err != nil {
			t.Fatal(err)
		}
	})
}
