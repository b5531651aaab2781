package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/leptonml/lepton/runtime/data/prep"
	"github.com/leptonml/lepton/runtime/data/source"
)

// outKind is how an encoded feature column is derived from a raw column.
type outKind uint8

const (
	okNumber  outKind = iota // the raw number (normalised)
	okBool                   // 0/1
	okOneHot                 // 1 when the raw code equals code
	okOrdinal                // rank of the category (normalised)
	okFlag                   // the anomaly flag
)

type outCol struct {
	name string
	src  *column
	kind outKind
	code int32
	rank []float32 // ordinal: dictionary code -> rank among sorted categories
	flag []float32
	// scale and shift normalise while the matrices are filled (x*scale+shift).
	scale, shift float32
}

func (o *outCol) normalised() bool { return o.kind == okNumber || o.kind == okOrdinal }

// standard is a builtin's standard split: rows before trainRows are the
// training pool, the rest the test set.
type standard struct {
	trainRows int
	// imageShape is set for image datasets: their rows are normalised with
	// statistics pooled over every pixel, as is customary, not per pixel
	// column (a border pixel that is almost always 0 would otherwise be
	// blown up into noise).
	imageShape []int
}

type pipeline struct {
	spec             Spec
	f                *frame
	ds               *Dataset
	alive            []bool
	nAlive           int
	label            *column
	feats            []*column
	outs             []*outCol
	yIndex           func(i int) float32 // class index (or value) of row i
	yClass           []int32             // class of row i for stratification
	numeric          bool                // label is numeric
	catsForTransform map[string][]string
}

func (p *pipeline) step(name string, in int, dropped map[string]int, detail string) {
	n := 0
	for _, c := range dropped {
		n += c
	}
	if len(dropped) == 0 {
		dropped = nil
	}
	p.ds.Steps = append(p.ds.Steps, StepReport{Step: name, RowsIn: in, RowsOut: in - n, Dropped: n, DroppedBy: dropped, Detail: detail})
}

func (p *pipeline) kill(i int, why string, by map[string]int) {
	if p.alive[i] {
		p.alive[i] = false
		p.nAlive--
		by[why]++
	}
}

// process runs every step after reading. src names the source for errors.
func process(f *frame, spec Spec, src string, std standard, readDetail string) (*Dataset, error) {
	p := &pipeline{spec: spec, f: f, ds: &Dataset{Source: src, Label: spec.Label, Schema: map[string]string{}, Stats: map[string]ColumnStats{}, ImageShape: std.imageShape}}
	if f.n == 0 {
		return nil, fmt.Errorf("%s: %w: the source returned no rows", src, source.ErrEmpty)
	}
	p.ds.Steps = append(p.ds.Steps, StepReport{Step: "read", RowsOut: f.n, Detail: readDetail})
	for _, c := range f.cols {
		c.setType(c.typ, nil) // flush trailing pending nulls of an all-null column
		if c.typ == tUnknown {
			c.typ = tNumber
			for c.num.n < f.n {
				c.num.add(float32(math.NaN()))
			}
		}
		for c.rows() < f.n { // a column absent from the last rows
			c.addMissing()
		}
		p.ds.Schema[c.name] = c.typ.String()
	}
	stats := make([]ColumnStats, len(f.cols))
	parallelFor(len(f.cols), func(i int) { stats[i] = columnStats(f.cols[i]) })
	for i, c := range f.cols {
		p.ds.Stats[c.name] = stats[i]
	}
	if spec.Label != "" {
		if p.label = f.col(spec.Label); p.label == nil {
			return nil, fmt.Errorf("%s: label column %q not found; the source has columns: %s", src, spec.Label, strings.Join(f.all, ", "))
		}
	}
	if len(spec.Features) > 0 {
		for _, name := range spec.Features {
			c := f.col(name)
			if c == nil {
				return nil, fmt.Errorf("%s: feature column %q not found; the source has columns: %s", src, name, strings.Join(f.all, ", "))
			}
			p.feats = append(p.feats, c)
		}
	} else {
		for _, c := range f.cols {
			if c != p.label {
				p.feats = append(p.feats, c)
			}
		}
	}
	if len(p.feats) == 0 {
		return nil, fmt.Errorf("%s: no feature columns (the only column is the label %q)", src, spec.Label)
	}
	p.alive = make([]bool, f.n)
	for i := range p.alive {
		p.alive[i] = true
	}
	p.nAlive = f.n

	p.missing()
	if err := p.encode(); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	p.anomalies()
	if p.nAlive == 0 {
		return nil, fmt.Errorf("%s: %w: every one of the %d rows was dropped (%s)", src, source.ErrEmpty, f.n, p.dropSummary())
	}
	if err := p.labels(); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	train, val, test, err := p.split(std)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	p.ds.Rows, p.ds.DroppedRows = p.nAlive, f.n-p.nAlive
	p.build(train, val, test)
	return p.ds, nil
}

func (p *pipeline) dropSummary() string {
	all := map[string]int{}
	for _, s := range p.ds.Steps {
		for k, v := range s.DroppedBy {
			all[s.Step+": "+k] += v
		}
	}
	return countList(all)
}

func columnStats(c *column) ColumnStats {
	s := ColumnStats{Type: c.typ.String()}
	if c.typ == tString {
		for _, chunk := range c.code.chunks {
			for _, v := range chunk {
				if v < 0 {
					s.Missing++
				}
			}
		}
		s.Count = c.code.n - s.Missing
		s.Distinct = len(c.cats)
		return s
	}
	var st prep.Stats
	if c.hasSums && !c.num.dirty {
		st = prep.ChunkStatsWith(c.num.chunks, c.sums) // read as numeric blocks only
	} else {
		st = prep.ChunkStats(c.num.chunks)
	}
	s.Count, s.Missing = st.N, c.num.n-st.N
	if st.N > 0 {
		s.Mean, s.Std, s.Min, s.Max = st.Mean, st.Std, st.Min, st.Max
	}
	return s
}

// missing drops rows without a label, then drops or imputes missing features.
func (p *pipeline) missing() {
	in := p.nAlive
	by := map[string]int{}
	mode := p.spec.Preprocess.missing()
	if p.label != nil && p.ds.Stats[p.label.name].Missing > 0 {
		for i := 0; i < p.f.n; i++ {
			if p.label.missingAt(i) {
				p.kill(i, "no label", by)
			}
		}
	}
	var fix []*column // columns to impute
	for _, c := range p.feats {
		if p.ds.Stats[c.name].Missing == 0 {
			continue
		}
		if mode == "drop" {
			for i := 0; i < p.f.n; i++ {
				if p.alive[i] && c.missingAt(i) {
					p.kill(i, "missing "+c.name, by)
				}
			}
			continue
		}
		fix = append(fix, c)
	}
	// Imputation reads alive and writes its own column only: the columns
	// are filled in parallel.
	counts := make([]int, len(fix))
	parallelFor(len(fix), func(j int) {
		c := fix[j]
		n := 0
		if c.typ == tString {
			fill := modeCode(c, p.alive)
			for i := 0; i < p.f.n; i++ {
				if p.alive[i] && c.code.at(i) < 0 {
					c.code.set(i, fill)
					n++
				}
			}
		} else {
			var fill float32
			if mode == "mean" && c.typ == tNumber && p.nAlive == p.f.n {
				fill = float32(p.ds.Stats[c.name].Mean) // every row is alive: the same mean, without a pass
			} else {
				fill = fillValue(c, p.alive, mode)
			}
			for ci, chunk := range c.num.chunks {
				alive := p.alive[ci<<chunkBits:]
				alive = alive[:len(chunk)]
				for k, v := range chunk {
					if v != v && alive[k] {
						chunk[k] = fill
						n++
					}
				}
			}
		}
		counts[j] = n
	})
	imputed := map[string]int{}
	for j, c := range fix {
		if counts[j] > 0 {
			imputed[c.name] = counts[j]
		}
	}
	detail := ""
	if len(imputed) > 0 {
		detail = "imputed (" + mode + "; categories and bools: the most frequent value): " + countList(imputed)
	}
	p.step("missing ("+mode+")", in, by, detail)
}

func fillValue(c *column, alive []bool, mode string) float32 {
	switch mode {
	case "zero":
		return 0
	case "median":
		var xs []float32
		for i := 0; i < c.num.n; i++ {
			if v := c.num.at(i); alive[i] && v == v {
				xs = append(xs, v)
			}
		}
		if len(xs) == 0 {
			return 0
		}
		return float32(prep.Quantile(xs, 0.5))
	}
	if c.typ == tBool { // the mean of a bool is not a bool: use the majority
		var ones, n int
		for i := 0; i < c.num.n; i++ {
			if v := c.num.at(i); alive[i] && v == v {
				n++
				if v != 0 {
					ones++
				}
			}
		}
		return b2f(2*ones > n)
	}
	var sum float64
	n := 0
	for i := 0; i < c.num.n; i++ {
		if v := c.num.at(i); alive[i] && v == v {
			sum += float64(v)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return float32(sum / float64(n))
}

func modeCode(c *column, alive []bool) int32 {
	counts := make([]int, len(c.cats))
	for i := 0; i < c.code.n; i++ {
		if v := c.code.at(i); alive[i] && v >= 0 {
			counts[v]++
		}
	}
	best := int32(-1)
	for code, n := range counts {
		if n > 0 && (best < 0 || n > counts[best] || (n == counts[best] && c.cats[code] < c.cats[best])) {
			best = int32(code)
		}
	}
	return best
}

// maxOneHot bounds the columns a single categorical feature may expand to.
const maxOneHot = 1000

func (p *pipeline) encode() error {
	enc := p.spec.Preprocess.encode()
	var expanded []string
	cats := map[string][]string{}
	for _, c := range p.feats {
		switch c.typ {
		case tNumber:
			p.outs = append(p.outs, &outCol{name: c.name, src: c, kind: okNumber})
		case tBool:
			p.outs = append(p.outs, &outCol{name: c.name, src: c, kind: okBool})
		case tString:
			sorted := slices.Clone(c.cats)
			sort.Strings(sorted)
			cats[c.name] = sorted
			if enc == "ordinal" {
				rank := make([]float32, len(c.cats))
				for r, s := range sorted {
					rank[c.dict[s]] = float32(r)
				}
				p.outs = append(p.outs, &outCol{name: c.name, src: c, kind: okOrdinal, rank: rank})
				expanded = append(expanded, fmt.Sprintf("%s -> ordinal 0..%d", c.name, len(sorted)-1))
				continue
			}
			if len(sorted) > maxOneHot {
				return fmt.Errorf("feature %q has %d distinct values; one-hot encoding would make that many columns (at most %d): use encode = \"ordinal\" or leave it out of features", c.name, len(sorted), maxOneHot)
			}
			for _, s := range sorted {
				p.outs = append(p.outs, &outCol{name: c.name + "=" + s, src: c, kind: okOneHot, code: c.dict[s]})
			}
			expanded = append(expanded, fmt.Sprintf("%s -> %d one-hot columns", c.name, len(sorted)))
		}
	}
	p.catsForTransform = cats
	detail := fmt.Sprintf("%d feature columns", len(p.outs))
	if len(expanded) > 0 {
		detail += " (" + strings.Join(expanded, "; ") + ")"
	}
	p.step("encode ("+enc+")", p.nAlive, nil, detail)
	return nil
}

func (p *pipeline) anomalies() {
	a := p.spec.Preprocess.Anomalies
	if a == nil {
		return
	}
	in := p.nAlive
	t := anomalyThreshold(a)
	action := def(a.Action, "drop")
	type bound struct {
		c      *column
		lo, hi float32
	}
	var bounds []bound
	for _, c := range p.feats {
		if c.typ != tNumber {
			continue
		}
		var lo, hi float64
		if a.Method == "iqr" {
			xs := make([]float32, 0, p.nAlive)
			for i := 0; i < p.f.n; i++ {
				if p.alive[i] {
					xs = append(xs, c.num.at(i))
				}
			}
			q := prep.Quantiles(xs, 0.25, 0.75)
			iqr := q[1] - q[0]
			lo, hi = q[0]-t*iqr, q[1]+t*iqr
		} else {
			var m prep.Moments
			for i := 0; i < p.f.n; i++ {
				if p.alive[i] {
					m.Add(float64(c.num.at(i)))
				}
			}
			if m.Std() == 0 {
				continue
			}
			lo, hi = m.Mean()-t*m.Std(), m.Mean()+t*m.Std()
		}
		bounds = append(bounds, bound{c, float32(lo), float32(hi)})
	}
	by := map[string]int{}
	var flag []float32
	if action == "keep" {
		flag = make([]float32, p.f.n)
	}
	affected := map[string]int{}
	for _, b := range bounds {
		for i := 0; i < p.f.n; i++ {
			if !p.alive[i] {
				continue
			}
			v := b.c.num.at(i)
			if v >= b.lo && v <= b.hi {
				continue
			}
			switch action {
			case "drop":
				p.kill(i, "outlier "+b.c.name, by)
			case "clip":
				b.c.num.set(i, min(max(v, b.lo), b.hi))
				affected[b.c.name]++
			case "keep":
				flag[i] = 1
				affected[b.c.name]++
			}
		}
	}
	rule := fmt.Sprintf("|z| > %g", t)
	if a.Method == "iqr" {
		rule = fmt.Sprintf("outside Q1-%g*IQR..Q3+%g*IQR", t, t)
	}
	detail := rule
	switch action {
	case "clip":
		detail += "; clipped: " + countListOr(affected)
	case "keep":
		p.outs = append(p.outs, &outCol{name: "anomaly", kind: okFlag, flag: flag})
		n := 0
		for _, v := range flag {
			if v != 0 {
				n++
			}
		}
		detail += fmt.Sprintf("; %d rows flagged in the \"anomaly\" column (%s)", n, countListOr(affected))
	}
	p.step("anomalies ("+a.Method+", "+action+")", in, by, detail)
}

func countListOr(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	return countList(m)
}

// labels sets the classes and the per-row label accessor.
func (p *pipeline) labels() error {
	c := p.label
	if c == nil {
		return nil
	}
	switch c.typ {
	case tString, tBool:
		present := map[string]bool{}
		name := func(i int) string {
			if c.typ == tBool {
				if c.num.at(i) != 0 {
					return "true"
				}
				return "false"
			}
			return c.cats[c.code.at(i)]
		}
		for i := 0; i < p.f.n; i++ {
			if p.alive[i] {
				present[name(i)] = true
			}
		}
		for s := range present {
			p.ds.Classes = append(p.ds.Classes, s)
		}
		sortClasses(p.ds.Classes)
		index := map[string]float32{}
		for i, s := range p.ds.Classes {
			index[s] = float32(i)
		}
		if c.typ == tBool {
			fi, ti := index["false"], index["true"]
			p.yIndex = func(i int) float32 {
				if c.num.at(i) != 0 {
					return ti
				}
				return fi
			}
		} else {
			byCode := make([]float32, len(c.cats))
			for code, s := range c.cats {
				byCode[code] = index[s] // absent classes map to 0 but belong to dropped rows only
			}
			p.yIndex = func(i int) float32 { return byCode[c.code.at(i)] }
		}
	case tNumber:
		p.numeric = true
		// The distinct values while they are integers and at most
		// MaxClasses: small non-negative integers (the usual class labels)
		// in a table, others in a map (which, like the table, takes -0 as 0).
		var small [smallClasses]bool
		distinct := map[float32]bool{}
		integral, count := true, 0
	scan:
		for ci, chunk := range c.num.chunks {
			alive := p.alive[ci<<chunkBits:]
			alive = alive[:len(chunk)]
			for k, v := range chunk {
				if !alive[k] {
					continue
				}
				if v >= 0 && v < smallClasses && v == float32(int(v)) {
					if !small[int(v)] {
						small[int(v)] = true
						count++
					}
				} else if !distinct[v] {
					if v != float32(math.Trunc(float64(v))) {
						integral = false
						break scan
					}
					distinct[v] = true
					count++
				}
				if count > MaxClasses {
					break scan
				}
			}
		}
		if integral && count <= MaxClasses {
			vals := make([]float32, 0, count)
			for v, ok := range small {
				if ok {
					vals = append(vals, float32(v))
				}
			}
			for v := range distinct {
				vals = append(vals, v)
			}
			slices.Sort(vals)
			index := map[float32]float32{}
			var table [smallClasses]float32
			for i, v := range vals {
				index[v] = float32(i)
				if v >= 0 && v < smallClasses {
					table[int(v)] = float32(i)
				}
				p.ds.Classes = append(p.ds.Classes, strconv.FormatFloat(float64(v), 'f', -1, 32))
			}
			p.yIndex = func(i int) float32 {
				v := c.num.at(i)
				if v >= 0 && v < smallClasses && v == float32(int(v)) {
					return table[int(v)]
				}
				return index[v]
			}
		} else {
			p.yIndex = func(i int) float32 { return c.num.at(i) }
		}
	}
	return nil
}

// smallClasses: numeric labels 0, 1, ... below it are looked up in a table.
const smallClasses = 256

// sortClasses sorts numerically when every class is a number ("2" < "10").
func sortClasses(cs []string) {
	sort.Slice(cs, func(i, j int) bool {
		a, ea := strconv.ParseFloat(cs[i], 64)
		b, eb := strconv.ParseFloat(cs[j], 64)
		if ea == nil && eb == nil && a != b {
			return a < b
		}
		return cs[i] < cs[j]
	})
}

func (p *pipeline) split(std standard) (train, val, test []int32, err error) {
	idx := make([]int32, 0, p.nAlive)
	for i, ok := range p.alive {
		if ok {
			idx = append(idx, int32(i))
		}
	}
	sp := p.spec.Split
	if sp != nil && sp.Stratify && len(p.ds.Classes) == 0 {
		return nil, nil, nil, fmt.Errorf("split: stratify needs a categorical label, but %q is continuous", p.spec.Label)
	}
	seed := int64(0)
	if sp != nil {
		seed = sp.Seed
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6c6570746f6e)) // "lepton"
	var detail string
	switch {
	case std.trainRows > 0:
		cut, _ := slices.BinarySearch(idx, int32(std.trainRows))
		pool, rest := idx[:cut], idx[cut:]
		test = rest
		if sp != nil && sp.Validation > 0 {
			frac := sp.Validation / (sp.Train + sp.Validation)
			parts := p.divide(pool, []float64{1 - frac, frac}, sp.Stratify, rng)
			train, val = parts[0], parts[1]
			detail = fmt.Sprintf("standard split (first %d rows train, rest test); validation is %.4g of the train rows, seed %d", std.trainRows, frac, seed)
		} else {
			train = pool
			detail = fmt.Sprintf("standard split: first %d rows train, rest test", std.trainRows)
		}
	case sp == nil:
		train = idx
		detail = "no split block: every row is train"
	default:
		parts := p.divide(idx, []float64{sp.Train, sp.Validation, sp.Test}, sp.Stratify, rng)
		train, val, test = parts[0], parts[1], parts[2]
		detail = fmt.Sprintf("%g/%g/%g, seed %d", sp.Train, sp.Validation, sp.Test, seed)
		if sp.Stratify {
			detail += ", stratified by " + p.spec.Label
		}
	}
	// Rows keep their source order within each split (divide collects them
	// in index order): the split is random, trainers shuffle per epoch, and
	// ordered indices let the matrix build read the columns sequentially.
	if len(train) == 0 {
		return nil, nil, nil, fmt.Errorf("split: the training split is empty (%d rows in all)", len(idx))
	}
	p.step("split", p.nAlive, nil, fmt.Sprintf("train %d, validation %d, test %d (%s)", len(train), len(val), len(test), detail))
	return train, val, test, nil
}

// divide shuffles idx and cuts it into parts with the given fractions,
// separately within each class when stratified so every part keeps the class
// proportions.
func (p *pipeline) divide(idx []int32, fracs []float64, stratify bool, rng *rand.Rand) [][]int32 {
	groups := [][]int32{idx}
	if stratify {
		byClass := map[float32][]int32{}
		var keys []float32
		for _, i := range idx {
			y := p.yIndex(int(i))
			if _, ok := byClass[y]; !ok {
				keys = append(keys, y)
			}
			byClass[y] = append(byClass[y], i)
		}
		slices.Sort(keys)
		groups = groups[:0]
		for _, k := range keys {
			groups = append(groups, byClass[k])
		}
	}
	// Each row gets a part number: within a group, a shuffled array holding
	// each part's share of labels. Collecting rows by part in index order
	// then needs no sort.
	var dense []uint8
	if len(idx) > 0 {
		dense = make([]uint8, int(idx[len(idx)-1])+1)
	}
	for _, g := range groups {
		labels := make([]uint8, len(g))
		start, acc := 0, 0.0
		for k, f := range fracs {
			acc += f
			end := int(math.Round(acc * float64(len(g))))
			if k == len(fracs)-1 {
				end = len(g)
			}
			end = min(max(end, start), len(g))
			for r := start; r < end; r++ {
				labels[r] = uint8(k)
			}
			start = end
		}
		// rng.Shuffle's Fisher-Yates, the same draws, without a call per swap.
		for a := len(labels) - 1; a > 0; a-- {
			b := rng.Uint64N(uint64(a + 1))
			labels[a], labels[b] = labels[b], labels[a]
		}
		for r, i := range g {
			dense[i] = labels[r]
		}
	}
	parts := make([][]int32, len(fracs))
	for k, f := range fracs {
		parts[k] = make([]int32, 0, int(f*float64(len(idx)))+len(groups)+1)
	}
	for _, i := range idx {
		k := dense[i]
		parts[k] = append(parts[k], i)
	}
	return parts
}

// fillTile is how many rows build fills column by column at a time: 2048
// rows of 20 float32 columns are 160 KB, within a core's L2 cache.
const fillTile = 2048

// fill writes output column j of the rows idx, all in source chunk c, into
// x (row-major, d wide), encoded and normalised. One loop per kind keeps the
// per-cell work to a load, a multiply-add and a store.
func (o *outCol) fill(c int, idx []int32, x []float32, d, j int) {
	x = x[:len(idx)*d]
	switch o.kind {
	case okNumber, okBool:
		ch := o.src.num.chunks[c]
		if o.scale == 1 && o.shift == 0 {
			for r, i := range idx {
				x[r*d+j] = ch[i&chunkMask]
			}
			return
		}
		scale, shift := o.scale, o.shift
		for r, i := range idx {
			x[r*d+j] = ch[i&chunkMask]*scale + shift
		}
	case okOneHot:
		ch, code := o.src.code.chunks[c], o.code
		for r, i := range idx {
			if ch[i&chunkMask] == code {
				x[r*d+j] = 1
			} else {
				x[r*d+j] = 0
			}
		}
	case okOrdinal:
		ch := o.src.code.chunks[c]
		for r, i := range idx {
			v := float32(0)
			if c := ch[i&chunkMask]; c >= 0 {
				v = o.rank[c]
			}
			x[r*d+j] = v*o.scale + o.shift
		}
	case okFlag:
		for r, i := range idx {
			x[r*d+j] = o.flag[i]
		}
	}
}

// trainStats summarises a normalised column over the training rows, read
// from the raw columns in index order: the mean and standard deviation when
// moments is set, the minimum and maximum when extent is (each is computed
// as if alone; the others are returned as 0).
func (o *outCol) trainStats(train []int32, moments, extent bool) (mean, std, lo, hi float64) {
	if len(train) == 0 {
		return 0, 0, 0, 0
	}
	vals := make([]float32, statsBatch)
	// Sums of deviations from the first value: one pass, and no cancellation
	// when the mean is large next to the spread. Values are gathered a batch
	// at a time so the summing loop is a plain loop over a slice.
	var k float64
	var s, ss float64
	l, h := float32(math.Inf(1)), float32(math.Inf(-1))
	for b := 0; b < len(train); b += statsBatch {
		idx := train[b:min(b+statsBatch, len(train))]
		if o.kind == okOrdinal {
			chunks := o.src.code.chunks
			vals = vals[:len(idx)]
			for r, i := range idx {
				v := float32(0)
				if c := chunks[i>>chunkBits][i&chunkMask]; c >= 0 {
					v = o.rank[c]
				}
				vals[r] = v
			}
		} else {
			vals = gather(o.src.num.chunks, idx, vals)
		}
		if b == 0 {
			k = float64(vals[0])
		}
		// Only what the method needs: a loop with both the sums and the
		// range takes several times as long as either.
		if moments {
			for _, v := range vals {
				dv := float64(v) - k
				s += dv
				ss += dv * dv
			}
		}
		if extent {
			for _, v := range vals {
				if v < l {
					l = v
				}
				if v > h {
					h = v
				}
			}
		}
	}
	if moments {
		n := float64(len(train))
		mean = k + s/n
		std = math.Sqrt(max((ss-s*s/n)/n, 0))
	}
	if extent {
		lo, hi = float64(l), float64(h)
	}
	return mean, std, lo, hi
}

// statsBatch is how many values trainStats gathers at a time.
const statsBatch = 4096

// gather returns the values of the rows idx (ascending) of chunked data in
// buf, which must have room for them.
func gather(chunks [][]float32, idx []int32, buf []float32) []float32 {
	buf = buf[:len(idx)]
	for o := 0; o < len(idx); {
		c := idx[o] >> chunkBits
		ch := chunks[c]
		for ; o < len(idx) && idx[o]>>chunkBits == c; o++ {
			buf[o] = ch[idx[o]&chunkMask]
		}
	}
	return buf
}

// normalize computes the transform from the training rows and sets each
// column's scale and shift, which fill applies.
func (p *pipeline) normalize(train []int32) {
	method := p.spec.Preprocess.normalize()
	t := &prep.Transform{Method: method, Encode: p.spec.Preprocess.encode(), Categories: p.catsForTransform}
	type st struct{ mean, sd, lo, hi float64 }
	stats := make([]st, len(p.outs))
	if method != "none" {
		parallelFor(len(p.outs), func(j int) {
			if o := p.outs[j]; o.normalised() {
				s := &stats[j]
				s.mean, s.sd, s.lo, s.hi = o.trainStats(train, method == "zscore", method != "zscore")
			}
		})
	}
	// Image datasets are normalised with statistics pooled over every pixel,
	// as is customary, not per pixel column: a border pixel that is almost
	// always 0 would otherwise be blown up into noise. Every column has the
	// same training rows, so the columns' moments combine exactly.
	pooled := false
	if method != "none" && len(p.ds.ImageShape) > 0 {
		var n, sum, sumSq float64
		all := st{lo: math.Inf(1), hi: math.Inf(-1)}
		for j, o := range p.outs {
			if !o.normalised() {
				continue
			}
			c := stats[j]
			n++
			sum += c.mean
			sumSq += c.sd*c.sd + c.mean*c.mean
			all.lo, all.hi = math.Min(all.lo, c.lo), math.Max(all.hi, c.hi)
		}
		if n > 0 {
			all.mean = sum / n
			all.sd = math.Sqrt(max(sumSq/n-all.mean*all.mean, 0))
			for j, o := range p.outs {
				if o.normalised() {
					stats[j] = all
				}
			}
			pooled = true
		}
	}
	for j, o := range p.outs {
		t.Features = append(t.Features, o.name)
		o.scale, o.shift = 1, 0
		if method == "none" {
			continue
		}
		var a, b float64 = 0, 1 // x' = (x-a)/b; identity for columns that are not normalised
		if o.normalised() {
			mean, sd, lo, hi := stats[j].mean, stats[j].sd, stats[j].lo, stats[j].hi
			if method == "zscore" {
				a, b = mean, sd
			} else {
				a, b = lo, hi-lo
			}
			if b == 0 {
				b = 1
			}
		}
		if method == "zscore" {
			t.Mean, t.Std = append(t.Mean, a), append(t.Std, b)
		} else {
			t.Min, t.Max = append(t.Min, a), append(t.Max, a+b)
		}
		o.scale, o.shift = float32(1/b), float32(-a/b)
	}
	p.ds.Columns = t.Features
	p.ds.Transform = t.JSON()
	if method != "none" {
		detail := fmt.Sprintf("statistics from the %d training rows", len(train))
		if pooled {
			detail += ", pooled over every pixel (an image dataset)"
		}
		p.step("normalize ("+method+")", p.nAlive, nil, detail)
	}
}

// build computes the normalisation, fills the matrices (normalising on the
// way) and releases the raw columns, then augments.
func (p *pipeline) build(train, val, test []int32) {
	d := len(p.outs)
	copies, noise := 0, 0.0
	if a := p.spec.Preprocess.Augment; a != nil && a.Copies > 0 {
		copies, noise = a.Copies, a.NoiseStddev
	}
	mk := func(idx []int32, extra int) Matrix {
		m := Matrix{N: len(idx), D: d, X: make([]float32, len(idx)*(1+extra)*d)}
		if p.label != nil {
			m.Y = make([]float32, len(idx)*(1+extra))
			if p.numeric {
				m.Target = make([]float32, len(idx)*(1+extra))
			}
		}
		return m
	}
	parts := []struct {
		idx []int32
		m   *Matrix
	}{{train, &p.ds.Train}, {val, &p.ds.Validation}, {test, &p.ds.Test}}
	*parts[0].m = mk(train, copies)
	if len(val) > 0 {
		*parts[1].m = mk(val, 0)
	} else {
		p.ds.Validation.D = d
	}
	if len(test) > 0 {
		*parts[2].m = mk(test, 0)
	} else {
		p.ds.Test.D = d
	}
	p.normalize(train)
	// Each part's rows are cut into ranges filled on separate goroutines:
	// rows, not columns, so no two goroutines write the same cache line.
	var wg sync.WaitGroup
	workers := min(max(runtime.GOMAXPROCS(0), 1), 4)
	for _, part := range parts {
		n := len(part.idx)
		step := max((n+workers-1)/workers, 1)
		for lo := 0; lo < n; lo += step {
			hi := min(lo+step, n)
			idx, x := part.idx[lo:hi], part.m.X[lo*d:hi*d]
			var y, target []float32
			if p.label != nil {
				y = part.m.Y[lo:hi]
				if p.numeric {
					target = part.m.Target[lo:hi]
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// In tiles of rows whose matrix rows stay in cache while
				// every column is written into them (a whole range would
				// be read back from memory once per column).
				// A tile also stays within one source chunk.
				for t := 0; t < len(idx); {
					c := idx[t] >> chunkBits
					e := min(t+fillTile, len(idx))
					if idx[e-1]>>chunkBits != c {
						e = t + sort.Search(e-t, func(k int) bool { return idx[t+k]>>chunkBits != c })
					}
					for j, o := range p.outs {
						o.fill(int(c), idx[t:e], x[t*d:e*d], d, j)
					}
					t = e
				}
				for r, i := range idx { // the labels of the same rows
					if y != nil {
						y[r] = p.yIndex(int(i))
					}
					if target != nil {
						target[r] = p.label.num.at(int(i))
					}
				}
			}()
		}
	}
	wg.Wait()
	for _, o := range p.outs { // the raw columns are no longer needed
		if o.src != nil && o.src != p.label {
			o.src.num, o.src.code = f32s{}, i32s{}
		}
	}
	if copies > 0 {
		p.augment(copies, noise)
	}
}

// augment appends noisy copies of the training rows; noise goes on the
// normalised numeric columns only (a noisy one-hot is no category at all).
func (p *pipeline) augment(copies int, stddev float64) {
	m := &p.ds.Train
	n, d := m.N, m.D
	seed := uint64(0)
	if p.spec.Split != nil {
		seed = uint64(p.spec.Split.Seed)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6175676d656e74)) // "augment"
	noisy := make([]bool, d)
	for j, o := range p.outs {
		noisy[j] = o.normalised()
	}
	for c := 1; c <= copies; c++ {
		dst := m.X[c*n*d : (c+1)*n*d]
		copy(dst, m.X[:n*d])
		for r := 0; r < n; r++ {
			row := dst[r*d : (r+1)*d]
			for j := range row {
				if noisy[j] {
					row[j] += float32(rng.NormFloat64() * stddev)
				}
			}
		}
		if m.Y != nil {
			copy(m.Y[c*n:(c+1)*n], m.Y[:n])
		}
		if m.Target != nil {
			copy(m.Target[c*n:(c+1)*n], m.Target[:n])
		}
	}
	m.N = n * (1 + copies)
	p.ds.Steps = append(p.ds.Steps, StepReport{Step: "augment", RowsIn: n, RowsOut: m.N,
		Detail: fmt.Sprintf("%d noisy %s of the training rows, noise stddev %g on numeric columns", copies, plural(copies, "copy", "copies"), stddev)})
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// parallelFor runs fn(0..n-1) on up to GOMAXPROCS goroutines.
func parallelFor(n int, fn func(i int)) {
	workers := min(max(runtime.GOMAXPROCS(0), 1), n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		}()
	}
	wg.Wait()
}
