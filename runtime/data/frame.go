package data

import (
	"fmt"
	"math"
	"strconv"

	"github.com/leptonml/lepton/runtime/data/prep"
	"github.com/leptonml/lepton/runtime/data/source"
)

// Columns are stored in fixed-size chunks so that growing them never copies
// what was already read (a doubling slice would briefly need twice the
// memory of the column).
const (
	chunkBits = 16
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1
)

// firstChunkCap starts a column's first chunk small (append grows it to
// chunkSize), so the many columns of small datasets do not each hold 256 KB.
func firstChunkCap(chunks int) int {
	if chunks == 0 {
		return 64
	}
	return chunkSize
}

type f32s struct {
	chunks [][]float32
	n      int
	// dirty: a number was added other than by appendSlice (which is how
	// numeric blocks arrive); see column.sums.
	dirty bool
}

func (c *f32s) add(v float32) {
	if v == v {
		c.dirty = true
	}
	c.push(v)
}

func (c *f32s) push(v float32) {
	if c.n&chunkMask == 0 {
		c.chunks = append(c.chunks, make([]float32, 0, firstChunkCap(len(c.chunks))))
	}
	last := len(c.chunks) - 1
	if ch := c.chunks[last]; len(ch) == cap(ch) {
		// The small first chunk is full: move to a whole one at once.
		grown := make([]float32, len(ch), chunkSize)
		copy(grown, ch)
		c.chunks[last] = grown
	}
	c.chunks[last] = append(c.chunks[last], v)
	c.n++
}

// appendSlice appends vs, a chunk at a time.
func (c *f32s) appendSlice(vs []float32) {
	for len(vs) > 0 {
		if c.n&chunkMask == 0 || len(c.chunks) == 0 {
			c.push(vs[0]) // a new chunk (or the first one's growth)
			vs = vs[1:]
			continue
		}
		last := len(c.chunks) - 1
		ch := c.chunks[last]
		if len(ch) == cap(ch) {
			c.push(vs[0])
			vs = vs[1:]
			continue
		}
		k := min(len(vs), chunkSize-len(ch), cap(ch)-len(ch))
		c.chunks[last] = append(ch, vs[:k]...)
		c.n += k
		vs = vs[k:]
	}
}

func (c *f32s) at(i int) float32     { return c.chunks[i>>chunkBits][i&chunkMask] }
func (c *f32s) set(i int, v float32) { c.chunks[i>>chunkBits][i&chunkMask] = v }

type i32s struct {
	chunks [][]int32
	n      int
}

func (c *i32s) add(v int32) {
	if c.n&chunkMask == 0 {
		c.chunks = append(c.chunks, make([]int32, 0, firstChunkCap(len(c.chunks))))
	}
	last := len(c.chunks) - 1
	if ch := c.chunks[last]; len(ch) == cap(ch) {
		// The small first chunk is full: move to a whole one at once.
		grown := make([]int32, len(ch), chunkSize)
		copy(grown, ch)
		c.chunks[last] = grown
	}
	c.chunks[last] = append(c.chunks[last], v)
	c.n++
}

func (c *i32s) at(i int) int32     { return c.chunks[i>>chunkBits][i&chunkMask] }
func (c *i32s) set(i int, v int32) { c.chunks[i>>chunkBits][i&chunkMask] = v }

type colType uint8

const (
	tUnknown colType = iota
	tNumber
	tString
	tBool
)

func (t colType) String() string {
	switch t {
	case tString:
		return "string"
	case tBool:
		return "bool"
	}
	return "number" // an all-null column is reported as number
}

// column is one raw column: numbers and bools as float32 (NaN = missing),
// strings dictionary-coded as int32 (-1 = missing). That is 4 bytes a cell,
// the same as the float32 output: memory follows the processed output, not
// the raw text.
type column struct {
	name    string
	typ     colType
	num     f32s
	code    i32s
	dict    map[string]int32
	cats    []string
	pending int // leading missing rows while the type is still unknown
	typedAt source.Position
	// sums is the first pass of the column statistics over the numeric
	// blocks, taken while they are copied in (the values are in cache
	// then). It covers every number of the column unless num.dirty.
	sums    prep.Sums
	hasSums bool
}

func (c *column) rows() int {
	switch c.typ {
	case tNumber, tBool:
		return c.num.n
	case tString:
		return c.code.n
	}
	return c.pending
}

func (c *column) missingAt(i int) bool {
	if c.typ == tString {
		return c.code.at(i) < 0
	}
	return math.IsNaN(float64(c.num.at(i)))
}

func (c *column) setType(t colType, pos *source.Position) {
	c.typ = t
	if pos != nil {
		c.typedAt = *pos
	}
	for ; c.pending > 0; c.pending-- {
		if t == tString {
			c.code.add(-1)
		} else {
			c.num.add(float32(math.NaN()))
		}
	}
}

func (c *column) addMissing() {
	switch c.typ {
	case tUnknown:
		c.pending++
	case tString:
		c.code.add(-1)
	default:
		c.num.add(float32(math.NaN()))
	}
}

func (c *column) addString(s string) {
	code, ok := c.dict[s]
	if !ok {
		if c.dict == nil {
			c.dict = map[string]int32{}
		}
		code = int32(len(c.cats))
		c.dict[s] = code
		c.cats = append(c.cats, s)
	}
	c.code.add(code)
}

// addStringBytes avoids allocating for categories already seen.
func (c *column) addStringBytes(b []byte) {
	if code, ok := c.dict[string(b)]; ok {
		c.code.add(code)
		return
	}
	c.addString(string(b))
}

// toString turns a bool column into a string column ("false"/"true") when a
// non-boolean text value shows it is categorical after all.
func (c *column) toString() {
	old := c.num
	c.num = f32s{}
	c.typ = tString
	for i := 0; i < old.n; i++ {
		v := old.at(i)
		switch {
		case math.IsNaN(float64(v)):
			c.code.add(-1)
		case v != 0:
			c.addString("true")
		default:
			c.addString("false")
		}
	}
}

func (c *column) add(v *source.Value, pos *source.Position) error {
	switch v.Kind {
	case source.Null:
		c.addMissing()
		return nil
	case source.Number:
		switch c.typ {
		case tUnknown:
			c.setType(tNumber, pos)
		case tBool:
			c.typ = tNumber
		case tString:
			c.addString(strconv.FormatFloat(v.Num, 'g', -1, 64))
			return nil
		}
		if math.IsInf(v.Num, 0) || math.IsNaN(v.Num) {
			return &source.Error{Pos: *pos, Column: c.name, Err: fmt.Errorf("value %v is not a finite number", v.Num)}
		}
		c.num.add(float32(v.Num))
		return nil
	case source.Bool:
		switch c.typ {
		case tUnknown:
			c.setType(tBool, pos)
		case tString:
			c.addString(map[bool]string{true: "true", false: "false"}[v.Num != 0])
			return nil
		}
		c.num.add(float32(v.Num))
		return nil
	case source.String:
		return c.addText([]byte(v.Str), v.Str, pos)
	case source.Text:
		return c.addText(v.Raw, "", pos)
	}
	return fmt.Errorf("column %q: unknown value kind %d", c.name, v.Kind)
}

// addText infers the type of untyped text: a number, then true/false, else a
// category. s is b as a string when the caller already has one.
func (c *column) addText(b []byte, s string, pos *source.Position) error {
	switch c.typ {
	case tNumber:
		f, ok := source.ParseNumber(b)
		if !ok {
			return &source.Error{Pos: *pos, Column: c.name, Err: fmt.Errorf("value %q is not a number (the column holds numbers since %s)", clip(b), c.typedAt)}
		}
		c.num.add(float32(f))
		return nil
	case tString:
		if s != "" {
			c.addString(s)
		} else {
			c.addStringBytes(b)
		}
		return nil
	case tBool:
		if v, ok := source.ParseBool(b); ok {
			c.num.add(b2f(v))
			return nil
		}
		c.toString()
		return c.addText(b, s, pos)
	}
	if f, ok := source.ParseNumber(b); ok {
		c.setType(tNumber, pos)
		c.num.add(float32(f))
		return nil
	}
	if v, ok := source.ParseBool(b); ok {
		c.setType(tBool, pos)
		c.num.add(b2f(v))
		return nil
	}
	c.setType(tString, pos)
	return c.addText(b, s, pos)
}

func b2f(v bool) float32 {
	if v {
		return 1
	}
	return 0
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// frame accumulates the kept columns of a source, row by row.
type frame struct {
	keep    func(name string) bool // nil keeps everything
	cols    []*column
	byName  map[string]int
	all     []string // every column the source has, kept or not
	mapping []int    // reader column -> frame column or -1
	n       int
}

func newFrame(keep func(string) bool) *frame {
	return &frame{keep: keep, byName: map[string]int{}}
}

// add appends one row; readerCols is the reader's column list after Next.
func (f *frame) add(readerCols []string, vals []source.Value, pos source.Position) error {
	f.mapColumns(readerCols)
	var null source.Value
	for i, ci := range f.mapping {
		if ci < 0 {
			continue
		}
		c := f.cols[ci]
		v := &null
		if i < len(vals) {
			v = &vals[i]
		}
		// The common case, a number in a numeric column, without the general path.
		if v.Kind == source.Text && c.typ == tNumber {
			if x, ok := source.ParseNumber(v.Raw); ok {
				c.num.add(float32(x))
				continue
			}
		}
		if err := c.add(v, &pos); err != nil {
			return err
		}
	}
	f.n++
	return nil
}

// mapColumns maps the reader's columns not seen yet to frame columns (or to
// -1 when not kept); a new column starts with the rows already read pending.
func (f *frame) mapColumns(readerCols []string) {
	for len(f.mapping) < len(readerCols) {
		name := readerCols[len(f.mapping)]
		f.all = append(f.all, name)
		if f.keep != nil && !f.keep(name) {
			f.mapping = append(f.mapping, -1)
			continue
		}
		f.byName[name] = len(f.cols)
		f.mapping = append(f.mapping, len(f.cols))
		f.cols = append(f.cols, &column{name: name, pending: f.n})
	}
}

func (f *frame) col(name string) *column {
	if i, ok := f.byName[name]; ok {
		return f.cols[i]
	}
	return nil
}

// addBlock appends a block of numeric rows. It returns false, changing
// nothing, when a kept column already holds strings or bools: the caller then
// reads the block's rows one by one so their text is kept as written.
func (f *frame) addBlock(readerCols []string, b *source.Block) bool {
	f.mapColumns(readerCols)
	for _, ci := range f.mapping {
		if ci >= 0 && f.cols[ci].typ != tNumber && f.cols[ci].typ != tUnknown {
			return false
		}
	}
	for i, ci := range f.mapping {
		if ci < 0 {
			continue
		}
		c := f.cols[ci]
		col := b.Vals[i*b.Rows : (i+1)*b.Rows]
		r := 0
		if c.typ == tUnknown {
			for ; r < b.Rows; r++ {
				if v := col[r]; v == v {
					pos := b.First
					pos.N += int64(r)
					c.setType(tNumber, &pos)
					break
				}
				c.pending++
			}
		}
		c.num.appendSlice(col[r:])
		if !c.hasSums {
			c.sums, c.hasSums = prep.NewSums(), true
		}
		c.sums.Add(col[r:])
	}
	f.n += b.Rows
	return true
}
