package source

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Block is a run of CSV rows whose every cell is a number or missing,
// column-major with NaN for missing: column i is Vals[i*Rows:(i+1)*Rows], and
// row r is at line First.N + r.
type Block struct {
	Vals  []float32
	Rows  int
	First Position
}

// ErrBlockEnd ends the rows of an expanded block (see BlockReader).
var ErrBlockEnd = errors.New("end of block")

// BlockReader is a Reader that can also hand over whole numeric blocks,
// parsed in parallel. The caller loops on NextBlock: a non-nil block is either
// taken whole, or given back with Expand; after Expand, or when NextBlock
// returns (nil, nil) for a chunk that is not all numbers, Next yields that
// chunk's rows until ErrBlockEnd (or io.EOF, once the reader fell back to
// sequential parsing for quoted fields).
type BlockReader interface {
	Reader
	Blocks() bool
	NextBlock() (*Block, error)
	Expand()
}

const parChunk = 1 << 20

type parJob struct {
	seq       int
	data      []byte
	firstLine int64
	newlines  int // line feeds in data
}

type parResult struct {
	parJob
	block *Block
}

// parallel splits the stream into chunks at line ends and parses them on
// several goroutines; results come back in order.
type parallel struct {
	c           *csvReader
	jobs        chan parJob
	results     chan parResult
	done        chan struct{}
	wg          sync.WaitGroup
	pending     map[int]parResult
	next        int
	err         error // the producer's read error, seen after the last chunk
	errMu       sync.Mutex
	eof         bool
	passthrough atomic.Bool // quoted fields were met: stop parsing, just pass bytes on
	closeOnce   sync.Once
	// Chunk and block buffers are recycled once the consumer has moved on,
	// so reading allocates about as many buffers as are in flight, not as
	// many as the file has chunks. (Free lists, not sync.Pool: a pool is
	// emptied by every GC, and this workload triggers many.)
	bufs chan []byte
	vals chan []float32
}

func (p *parallel) getBuf() []byte {
	select {
	case b := <-p.bufs:
		return b[:0]
	default:
		return make([]byte, 0, parChunk+64<<10)
	}
}

// recycle returns a consumed chunk's buffers.
func (p *parallel) recycle(r parResult) {
	if p.passthrough.Load() {
		return // encoding/csv may still hold the bytes
	}
	if r.data != nil {
		select {
		case p.bufs <- r.data[:0]:
		default:
		}
	}
	if r.block != nil {
		select {
		case p.vals <- r.block.Vals[:0]:
		default:
		}
	}
}

// startParallel switches c to chunked parallel parsing of the rest of br.
func (c *csvReader) startParallel() {
	workers := min(max(runtime.GOMAXPROCS(0), 1), 4)
	p := &parallel{c: c, jobs: make(chan parJob, workers), results: make(chan parResult, 2*workers),
		done: make(chan struct{}), pending: map[int]parResult{},
		bufs: make(chan []byte, 4*workers+4), vals: make(chan []float32, 4*workers+4)}
	c.par = p
	src := c.br
	c.br = bufio.NewReader(bytes.NewReader(nil)) // the producer owns src now
	startLine := c.line + 1
	p.wg.Add(1)
	go p.produce(src, startLine)
	var wwg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wwg.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer wwg.Done()
			for j := range p.jobs {
				r := parResult{parJob: j}
				if !p.passthrough.Load() {
					var dst []float32
					select {
					case dst = <-p.vals:
					default:
					}
					r.block = parseLines(j.data, j.newlines, len(c.header), c.delim, dst)
					if r.block != nil {
						r.block.First = Position{c.name, "line", j.firstLine}
					}
				}
				select {
				case p.results <- r:
				case <-p.done:
					return
				}
			}
		}()
	}
	go func() { wwg.Wait(); close(p.results) }()
}

func (p *parallel) produce(r io.Reader, line int64) {
	defer p.wg.Done()
	defer close(p.jobs)
	var carry []byte
	for seq := 0; ; seq++ {
		buf := p.getBuf()
		if cap(buf) < len(carry)+parChunk {
			buf = make([]byte, 0, len(carry)+parChunk)
		}
		buf = append(buf, carry...)
		n, err := io.ReadFull(r, buf[len(buf):len(buf)+parChunk])
		buf = buf[:len(buf)+n]
		last := err != nil // io.EOF, io.ErrUnexpectedEOF or a real error
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			p.errMu.Lock()
			p.err = err
			p.errMu.Unlock()
		}
		data := buf
		carry = nil
		if !last {
			k := bytes.LastIndexByte(buf, '\n')
			if k < 0 { // a line longer than the chunk: keep reading
				carry = append([]byte(nil), buf...)
				seq--
				continue
			}
			// carry is copied into the next buffer before this one can be recycled
			data, carry = buf[:k+1], append([]byte(nil), buf[k+1:]...)
		}
		if len(data) > 0 {
			n := bytes.Count(data, []byte{'\n'})
			select {
			case p.jobs <- parJob{seq: seq, data: data, firstLine: line, newlines: n}:
			case <-p.done:
				return
			}
			line += int64(n)
		} else {
			seq--
		}
		if last {
			return
		}
	}
}

// nextResult returns the next chunk in order, or io.EOF.
func (p *parallel) nextResult() (parResult, error) {
	for {
		if r, ok := p.pending[p.next]; ok {
			delete(p.pending, p.next)
			p.next++
			return r, nil
		}
		r, ok := <-p.results
		if !ok {
			p.errMu.Lock()
			err := p.err
			p.errMu.Unlock()
			if err != nil {
				return parResult{}, err
			}
			return parResult{}, io.EOF
		}
		p.pending[r.seq] = r
	}
}

func (p *parallel) close() {
	p.closeOnce.Do(func() {
		close(p.done)
		for range p.results { // let blocked workers finish
		}
		p.wg.Wait()
	})
}

// orderedRest reads the remaining chunks' bytes in order (after a fall back
// to encoding/csv).
type orderedRest struct {
	p   *parallel
	cur []byte
}

func (o *orderedRest) Read(b []byte) (int, error) {
	for len(o.cur) == 0 {
		r, err := o.p.nextResult()
		if err != nil {
			return 0, err
		}
		o.cur = r.data
	}
	n := copy(b, o.cur)
	o.cur = o.cur[n:]
	return n, nil
}

// parseBlock parses a chunk if every line has the header's field count and
// every cell is a number or missing; otherwise it returns nil and the chunk
// is read row by row (which reports any error with its line). The block is
// column-major: column i is Vals[i*Rows : (i+1)*Rows].
//
// It works in two steps per 64 bytes, with no loop over the characters of a
// cell: a bit mask of the delimiters and line ends (eight bytes at a time,
// SWAR), then each cell between two of them. Cells do not depend on one
// another, so the processor overlaps them. The common spelling,
// [-]digits[.digits] of at most 8 characters after the sign, is read as one
// 8-byte word whose digits are combined with three multiplications, and
// converted exactly as ParseNumber does (an integer below 2^53 divided by an
// exact power of ten is correctly rounded), then to float32. Any other cell
// takes the general path: IsMissingText, then ParseNumber, as the row-by-row
// reader does, so the values are bit for bit those of the sequential path.
func parseBlock(data []byte, ncols int, delim byte, dst []float32) *Block {
	return parseLines(data, bytes.Count(data, []byte{'\n'}), ncols, delim, dst)
}

// parseLines is parseBlock when the caller has counted the line feeds.
func parseLines(data []byte, newlines, ncols int, delim byte, dst []float32) *Block {
	if ncols <= 0 || bytes.IndexByte(data, '"') >= 0 {
		return nil
	}
	rows := newlines
	last := len(data) > 0 && data[len(data)-1] != '\n' // a last line without a newline
	if last {
		rows++
	}
	vals := dst[:0]
	if cap(vals) < rows*ncols {
		vals = make([]float32, rows*ncols)
	}
	vals = vals[:rows*ncols]
	lastOff := (ncols - 1) * rows
	p := cells{data: data, vals: vals, rows: rows, lastOff: lastOff, lineEnd: lastOff, dm: uint64(delim) * ones, base: -64}
	for {
		e := p.fast()
		if e == errFields {
			return nil
		}
		if e == endWindows {
			break
		}
		if !p.general(e, data[e] == '\n') { // fast checked the field count
			return nil
		}
	}
	// The last windows (fast leaves the last 16 to 80 bytes), padded with
	// zeros, which are no separators: through the general path.
	for base := p.base + 64; base < len(data); base += 64 {
		var pad [64]byte
		copy(pad[:], data[base:])
		for mask := separators(pad[:], p.dm); mask != 0; mask &= mask - 1 {
			e := base + bits.TrailingZeros64(mask)
			eol := data[e] == '\n'
			if eol != (p.out == p.lineEnd) || !p.general(e, eol) {
				return nil
			}
		}
	}
	if last { // the last cell of a last line without a newline
		if p.out != p.lineEnd || !p.general(len(data), true) {
			return nil
		}
	}
	if p.lineEnd-lastOff != rows {
		return nil
	}
	return &Block{Vals: vals, Rows: rows}
}

// cells is parseBlock's position in a chunk.
type cells struct {
	data    []byte
	vals    []float32
	rows    int
	lastOff int    // offset in vals of a line's last cell from its first
	dm      uint64 // the delimiter in every byte
	base    int    // start of the 64-byte window of mask
	mask    uint64 // the window's separators not yet consumed
	s       int    // start of the current cell
	out     int    // its index in vals: column * rows + row
	lineEnd int    // the index in vals of its line's last cell
}

const (
	endWindows = -1 // fast: every window it may read is done
	errFields  = -2 // fast: a line with too few or too many fields
)

// general parses the cell that ends at e (a separator, or the end of the
// data) through the general path, and moves on.
func (p *cells) general(e int, eol bool) bool {
	n := e - p.s
	if eol && n > 0 && p.data[p.s+n-1] == '\r' {
		n--
	}
	v, ok := generalCell(p.data[p.s:p.s+n], eol && p.out == p.lineEnd-p.lastOff)
	if !ok {
		return false
	}
	p.vals[p.out] = v
	p.s = e + 1
	if eol {
		p.out = p.lineEnd - p.lastOff + 1
		p.lineEnd++
	} else {
		p.out += p.rows
	}
	return true
}

// fast parses cells of the common spelling until one needs the general path
// (it returns that cell's end, the cell not consumed), or it reaches the last
// 16 to 80 bytes (endWindows: every cell it reads has 16 bytes after its
// end, so no length check is needed per cell), or a line has the wrong
// number of fields (errFields). It makes no calls, and keeps little state,
// so that state stays in registers.
func (p *cells) fast() int {
	data, vals, rows := p.data, p.vals, p.rows
	base, mask, s, out, lineEnd := p.base, p.mask, p.s, p.out, p.lineEnd
	lim := len(data) - 64 - 16 // the last start of a window
	if lim < 0 {
		return endWindows
	}
	// Reads go through a pointer: the windows fast reads end 16 bytes
	// before the data does, and a cell ends within its window, so every
	// read below (at most 9 bytes from a cell's start) is inside data.
	// Writes to vals stay checked.
	dp := unsafe.Pointer(unsafe.SliceData(data))
	at := func(i int) byte { return *(*byte)(unsafe.Add(dp, i)) }
	word := func(i int) uint64 { return binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(dp, i))[:]) }
	dm := p.dm
	e := endWindows
loop:
	for {
		for mask == 0 {
			if base+64 > lim {
				break loop
			}
			base += 64
			for i := 0; i < 64; i += 8 {
				w := word(base + i)
				z := zeroBytes(w^dm) | zeroBytes(w^('\n'*ones))
				mask |= (z >> 7 * 0x0002040810204081 >> 49 & 0xFF) << i
			}
		}
		end := base + bits.TrailingZeros64(mask)
		mask &= mask - 1
		eol := at(end) == '\n'
		if eol != (out == lineEnd) {
			e = errFields
			break
		}
		n := end - s
		if eol && n > 0 && at(end-1) == '\r' {
			n--
		}
		// sh is 1 after a minus sign (computed without a branch: signs
		// are random, a branch would often be mispredicted).
		sh := int((uint64(at(s)^'-') - 1) >> 63)
		l := n - sh // characters after the sign
		if uint(l-1) >= 8 {
			e = end
			break
		}
		w := word(s + sh)
		y := w ^ '0'*ones // digits become 0-9
		// nd: the high bit of each of the l bytes that is not a digit.
		nd := (y&(0x7F*ones) + 0x76*ones | y) & (0x80 * ones) & (^uint64(0) >> ((64 - 8*uint(l)) & 63))
		frac := 0
		if nd != 0 { // one non-digit, a dot, and at least one digit
			t := bits.TrailingZeros64(nd) // the dot is byte t>>3
			if nd&(nd-1) != 0 || byte(w>>((t-7)&63)) != '.' || l == 1 {
				e = end
				break
			}
			l--
			frac = l - t>>3
		}
		// Drop the dot (without one, low is all ones), then right-align
		// the l digits so that the bytes below them are leading zeros.
		low := nd>>7 - 1
		y = y&low | (y>>8)&^low
		y <<= (64 - 8*uint(l)) & 63
		vals[out] = toFloat32(eightDigits(y), uint(frac+16*sh))
		s = end + 1
		if eol {
			out = lineEnd - p.lastOff + 1
			lineEnd++
		} else {
			out += rows
		}
	}
	p.base, p.mask, p.s, p.out, p.lineEnd = base, mask, s, out, lineEnd
	return e
}

// pow10s[i] is 10^i and pow10s[16+i] is -10^i; negPow10s likewise holds the
// float64 nearest to ±10^-i. A sign in the table costs nothing, and is exact:
// rounding is symmetric.
var pow10s, negPow10s [32]float64

func init() {
	for i := 0; i <= 8; i++ {
		pow10s[i], pow10s[16+i] = pow10[i], -pow10[i]
		negPow10s[i], negPow10s[16+i] = 1/pow10[i], -1/pow10[i]
	}
}

// toFloat32 is float32(±mant / 10^frac) with the quotient first rounded to
// float64, as float32(ParseNumber(...)) computes it, for mant < 10^8; i is
// frac, plus 16 for a minus sign. It needs no division (a division costs as
// much as the rest of a cell): the product mant * 10^-frac (10^-frac rounded
// to float64) is within a few float64 units of the correctly rounded
// quotient, so both round to the same float32 unless they lie within a few
// units of a float32 rounding midpoint (the bits below float32 precision are
// then close to 1000...0): in that rare case the exact division decides.
func toFloat32(mant uint64, i uint) float32 {
	f := float64(mant) * negPow10s[i&31]
	if d := math.Float64bits(f)&(1<<29-1) - 1<<28; d+64 <= 128 {
		f = float64(mant) / pow10s[i&31]
	}
	return float32(f)
}

// generalCell parses a cell as the row-by-row reader does: missing, or a
// finite float32. A line that is empty (first reports a line's only cell) is
// refused: the block's rows would no longer match the file's lines.
func generalCell(field []byte, first bool) (float32, bool) {
	if first && len(field) == 0 {
		return 0, false
	}
	if IsMissingText(field) {
		return float32(math.NaN()), true
	}
	if f, ok := ParseNumber(field); ok && !math.IsInf(float64(float32(f)), 0) {
		return float32(f), true
	}
	return 0, false
}

// separators returns a mask with bit i set when b[i] (of 64) is the
// delimiter (dm: the delimiter in every byte) or a line feed.
func separators(b []byte, dm uint64) uint64 {
	_ = b[63]
	var mask uint64
	for i := 0; i < 64; i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		z := zeroBytes(w^dm) | zeroBytes(w^('\n'*ones))
		mask |= ((z >> 7) * 0x0002040810204081 >> 49 & 0xFF) << i
	}
	return mask
}

// zeroBytes sets the high bit of each zero byte of w, and only those.
func zeroBytes(w uint64) uint64 {
	t := (w & (0x7F * ones)) + 0x7F*ones
	return ^(t | w | 0x7F*ones)
}

const ones = 0x0101010101010101

// eightDigits is the value of eight decimal digits, one a byte (0-9), the
// most significant in the lowest byte.
func eightDigits(x uint64) uint64 {
	x = (x * (10<<8 + 1)) >> 8
	x = ((x & 0x00FF00FF00FF00FF) * (100<<16 + 1)) >> 16
	return ((x & 0x0000FFFF0000FFFF) * (10000<<32 + 1)) >> 32
}

func (c *csvReader) Blocks() bool { return c.par != nil && c.slow == nil }

// NextBlock: see BlockReader.
func (c *csvReader) NextBlock() (*Block, error) {
	c.blockMode = true
	if c.slow != nil {
		return nil, nil // sequential from here on: rows through Next
	}
	r, err := c.par.nextResult()
	if err != nil {
		return nil, err
	}
	c.par.recycle(c.expanded)
	c.expanded = r
	if r.block == nil {
		c.Expand()
	}
	return r.block, nil
}

// Expand makes Next yield the rows of the last chunk NextBlock returned.
func (c *csvReader) Expand() {
	r := c.expanded
	c.br = bufio.NewReaderSize(bytes.NewReader(r.data), 64<<10)
	c.line = r.firstLine - 1
}
