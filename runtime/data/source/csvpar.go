package source

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// Block is a run of CSV rows whose every cell is a number or missing,
// row-major with NaN for missing; row r is at line First.N + r.
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
					r.block = parseBlock(j.data, len(c.header), c.delim, dst)
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
			select {
			case p.jobs <- parJob{seq: seq, data: data, firstLine: line}:
			case <-p.done:
				return
			}
			line += int64(bytes.Count(data, []byte{'\n'}))
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
// is read row by row (which reports any error with its line).
func parseBlock(data []byte, ncols int, delim byte, dst []float32) *Block {
	if bytes.IndexByte(data, '"') >= 0 {
		return nil
	}
	rows := bytes.Count(data, []byte{'\n'})
	if len(data) > 0 && data[len(data)-1] != '\n' {
		rows++
	}
	vals := dst[:0]
	if cap(vals) < rows*ncols {
		vals = make([]float32, 0, rows*ncols)
	}
	nan := float32(math.NaN())
	n := 0
	for len(data) > 0 {
		k := bytes.IndexByte(data, '\n')
		line := data
		if k >= 0 {
			line, data = data[:k], data[k+1:]
		} else {
			data = nil
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			return nil // keeps row r at line First+r
		}
		fields := 0
		for {
			i := bytes.IndexByte(line, delim)
			field := line
			if i >= 0 {
				field = line[:i]
			}
			fields++
			if fields > ncols {
				return nil
			}
			if IsMissingText(field) {
				vals = append(vals, nan)
			} else if f, ok := ParseNumber(field); ok && !math.IsInf(float64(float32(f)), 0) {
				vals = append(vals, float32(f))
			} else {
				return nil
			}
			if i < 0 {
				break
			}
			line = line[i+1:]
		}
		if fields != ncols {
			return nil
		}
		n++
	}
	return &Block{Vals: vals, Rows: n}
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
