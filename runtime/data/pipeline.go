package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"

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
	name  string
	src   *column
	kind  outKind
	code  int32
	rank  []float32 // ordinal: dictionary code -> rank among sorted categories
	flag  []float32
	scale float32 // normalisation, applied when building the matrices
	shift float32
}

func (o *outCol) normalised() bool { return o.kind == okNumber || o.kind == okOrdinal }

// value is the encoded, not yet normalised value of row i.
func (o *outCol) value(i int) float32 {
	switch o.kind {
	case okOneHot:
		if o.src.code.at(i) == o.code {
			return 1
		}
		return 0
	case okOrdinal:
		c := o.src.code.at(i)
		if c < 0 {
			return 0
		}
		return o.rank[c]
	case okFlag:
		return o.flag[i]
	}
	return o.src.num.at(i)
}

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
		c.setType(c.typ, c.typedAt) // flush trailing pending nulls of an all-null column
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
		p.ds.Stats[c.name] = columnStats(c)
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
	p.normalize(train)
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
		for ci, chunk := range c.code.chunks {
			_ = ci
			for _, v := range chunk {
				if v < 0 {
					s.Missing++
				} else {
					s.Count++
				}
			}
		}
		s.Distinct = len(c.cats)
		return s
	}
	var m prep.Moments
	for _, chunk := range c.num.chunks {
		for _, v := range chunk {
			if v != v {
				s.Missing++
				continue
			}
			m.Add(float64(v))
		}
	}
	s.Count = m.N
	if m.N > 0 {
		s.Mean, s.Std, s.Min, s.Max = m.Mean(), m.Std(), m.Min, m.Max
	}
	return s
}

// missing drops rows without a label, then drops or imputes missing features.
func (p *pipeline) missing() {
	in := p.nAlive
	by := map[string]int{}
	mode := p.spec.Preprocess.missing()
	if p.label != nil {
		for i := 0; i < p.f.n; i++ {
			if p.label.missingAt(i) {
				p.kill(i, "no label", by)
			}
		}
	}
	imputed := map[string]int{}
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
			fill := fillValue(c, p.alive, mode)
			for i := 0; i < p.f.n; i++ {
				if p.alive[i] && c.missingAt(i) {
					c.num.set(i, fill)
					n++
				}
			}
		}
		if n > 0 {
			imputed[c.name] = n
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
	var m prep.Moments
	for i := 0; i < c.num.n; i++ {
		if v := c.num.at(i); alive[i] && v == v {
			m.Add(float64(v))
		}
	}
	return float32(m.Mean())
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
		distinct := map[float32]bool{}
		integral := true
		for i := 0; i < p.f.n && integral && len(distinct) <= MaxClasses; i++ {
			if p.alive[i] {
				v := c.num.at(i)
				integral = v == float32(math.Trunc(float64(v)))
				distinct[v] = true
			}
		}
		if integral && len(distinct) <= MaxClasses {
			vals := make([]float32, 0, len(distinct))
			for v := range distinct {
				vals = append(vals, v)
			}
			slices.Sort(vals)
			index := map[float32]float32{}
			for i, v := range vals {
				index[v] = float32(i)
				p.ds.Classes = append(p.ds.Classes, strconv.FormatFloat(float64(v), 'f', -1, 32))
			}
			p.yIndex = func(i int) float32 { return index[c.num.at(i)] }
		} else {
			p.yIndex = func(i int) float32 { return c.num.at(i) }
		}
	}
	return nil
}

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
	var idx []int32
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
	parts := make([][]int32, len(fracs))
	for _, g := range groups {
		g = slices.Clone(g)
		rng.Shuffle(len(g), func(a, b int) { g[a], g[b] = g[b], g[a] })
		start := 0
		acc := 0.0
		for k, f := range fracs {
			acc += f
			end := int(math.Round(acc * float64(len(g))))
			if k == len(fracs)-1 {
				end = len(g)
			}
			end = min(max(end, start), len(g))
			parts[k] = append(parts[k], g[start:end]...)
			start = end
		}
	}
	if stratify { // interleave the classes again
		for _, part := range parts {
			rng.Shuffle(len(part), func(a, b int) { part[a], part[b] = part[b], part[a] })
		}
	}
	return parts
}

func (p *pipeline) normalize(train []int32) {
	method := p.spec.Preprocess.normalize()
	t := &prep.Transform{Method: method, Encode: p.spec.Preprocess.encode(), Categories: p.catsForTransform}
	var pooled *prep.Moments
	if len(p.ds.ImageShape) > 0 && method != "none" {
		pooled = &prep.Moments{}
		for _, o := range p.outs {
			if o.normalised() {
				for _, i := range train {
					pooled.Add(float64(o.value(int(i))))
				}
			}
		}
	}
	for _, o := range p.outs {
		t.Features = append(t.Features, o.name)
		o.scale, o.shift = 1, 0
		var m prep.Moments
		switch {
		case pooled != nil:
			m = *pooled
		case method != "none" && o.normalised():
			for _, i := range train {
				m.Add(float64(o.value(int(i))))
			}
		}
		switch method {
		case "zscore":
			mean, sd := 0.0, 1.0
			if o.normalised() {
				mean, sd = m.Mean(), m.Std()
				if sd == 0 {
					sd = 1
				}
			}
			t.Mean, t.Std = append(t.Mean, mean), append(t.Std, sd)
			o.scale, o.shift = float32(1/sd), float32(-mean/sd)
		case "minmax":
			lo, hi := 0.0, 1.0
			if o.normalised() {
				lo, hi = m.Min, m.Max
				if hi == lo {
					hi = lo + 1
				}
			}
			t.Min, t.Max = append(t.Min, lo), append(t.Max, hi)
			o.scale, o.shift = float32(1/(hi-lo)), float32(-lo/(hi-lo))
		}
	}
	p.ds.Columns = t.Features
	p.ds.Transform = t.JSON()
	if method != "none" {
		detail := fmt.Sprintf("statistics from the %d training rows", len(train))
		if pooled != nil {
			detail += ", pooled over every pixel (an image dataset)"
		}
		p.step("normalize ("+method+")", p.nAlive, nil, detail)
	}
}

// build fills the matrices column by column, releasing each raw column once
// every output column derived from it is written, so the raw and the
// processed copies of the data overlap as little as possible.
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
	lastUse := map[*column]int{}
	for j, o := range p.outs {
		if o.src != nil {
			lastUse[o.src] = j
		}
	}
	for j, o := range p.outs {
		for _, part := range parts {
			x := part.m.X
			for r, i := range part.idx {
				x[r*d+j] = o.value(int(i))*o.scale + o.shift
			}
		}
		if o.src != nil && lastUse[o.src] == j && o.src != p.label {
			o.src.num, o.src.code = f32s{}, i32s{}
		}
	}
	if p.label != nil {
		for _, part := range parts {
			for r, i := range part.idx {
				part.m.Y[r] = p.yIndex(int(i))
				if p.numeric {
					part.m.Target[r] = p.label.num.at(int(i))
				}
			}
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
