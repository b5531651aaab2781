package serve

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// job is one decoded request waiting to be scored as part of a batch.
type job struct {
	st   *modelState // the model the request was validated against
	x    []float32
	n    int
	out  []float32 // n*dim outputs, set by the worker
	dim  int
	err  error
	done chan struct{}
}

// submit queues n rows and waits for their outputs. It returns the status
// code to report when it fails.
//
// There are no worker goroutines: a request that finds a free slot (of
// Workers) becomes the executor and scores whatever is queued, its own rows
// included, in batches of up to MaxBatchSize rows, until its own rows are
// done. Under low load a request is scored on its own goroutine without a
// hand-off; under high load requests queue while the slots are busy and the
// next executor scores them together.
func (s *Server) submit(ctx context.Context, st *modelState, x []float32, n int) ([]float32, int, int, error) {
	j := &job{st: st, x: x, n: n, done: make(chan struct{})}
	select {
	case s.jobs <- j:
		s.decoding.Add(-1)
	case <-ctx.Done():
		s.decoding.Add(-1)
		return nil, 0, 499, ctx.Err()
	}
	select {
	case <-j.done:
	case s.slots <- struct{}{}:
		s.execute(j)
		<-s.slots
		// j is done, or another executor took it and will finish it.
		select {
		case <-j.done:
		case <-ctx.Done():
			return nil, 0, 499, ctx.Err()
		}
	case <-ctx.Done():
		return nil, 0, 499, ctx.Err()
	}
	switch {
	case j.err == errClosed:
		return nil, 0, http.StatusServiceUnavailable, j.err
	case j.err != nil:
		return nil, 0, http.StatusInternalServerError, j.err
	}
	return j.out, j.dim, http.StatusOK, nil
}

// execute scores queued batches until own is done or the queue is empty.
func (s *Server) execute(own *job) {
	var carry *job // dequeued but did not fit the batch: ours to score
	for {
		select {
		case <-own.done:
			if carry == nil {
				return
			}
		default:
		}
		batch, rows, next := s.collect(carry)
		carry = next
		if len(batch) == 0 {
			return
		}
		s.runBatch(batch, rows)
	}
}

// collect takes a batch from the queue, starting with first if not nil: jobs
// for the same model, at most MaxBatchSize rows. It never waits for an
// empty queue; only when other requests are still being decoded, and
// BatchWindow > 0, does it wait up to BatchWindow for them to join. It
// returns a dequeued job that did not fit.
func (s *Server) collect(first *job) (batch []*job, rows int, carry *job) {
	if first == nil {
		select {
		case first = <-s.jobs:
		default:
			return nil, 0, nil
		}
	}
	batch = append(batch, first)
	rows = first.n
	limit := s.MaxBatchSize()
	var deadline time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for rows < limit {
		var j *job
		select {
		case j = <-s.jobs:
		default:
			if s.cfg.BatchWindow <= 0 || s.decoding.Load() == 0 {
				return batch, rows, nil
			}
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(s.cfg.BatchWindow)
				timer = time.NewTimer(s.cfg.BatchWindow)
			}
			if !now.Before(deadline) {
				return batch, rows, nil
			}
			select {
			case j = <-s.jobs:
			case <-timer.C:
				return batch, rows, nil
			}
		}
		if j.st != first.st || rows+j.n > limit {
			return batch, rows, j
		}
		batch = append(batch, j)
		rows += j.n
	}
	return batch, rows, nil
}

// runBatch scores a batch and hands each job its slice of the outputs.
func (s *Server) runBatch(batch []*job, rows int) {
	st := batch[0].st
	x := batch[0].x
	if len(batch) > 1 {
		need := rows * st.inputSize
		bp, _ := s.batchBuf.Get().(*[]float32)
		if bp == nil || cap(*bp) < need {
			b := make([]float32, need)
			bp = &b
		}
		defer s.batchBuf.Put(bp)
		x = (*bp)[:need]
		off := 0
		for _, j := range batch {
			off += copy(x[off:], j.x)
		}
	}
	out, dim, err := s.predict(st, x, rows)
	off := 0
	for _, j := range batch {
		if err != nil {
			j.err = err
		} else {
			j.out, j.dim = out[off*dim:(off+j.n)*dim:(off+j.n)*dim], dim
		}
		off += j.n
		close(j.done)
	}
}

// predict calls the model, in MaxBatchSize chunks for a single oversized
// request, checks the output shape and turns a model panic into an error
// so one bad model call cannot take the server down.
func (s *Server) predict(st *modelState, x []float32, n int) (out []float32, dim int, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, dim, err = nil, 0, fmt.Errorf("model %s panicked: %v", st.Version, r)
		}
	}()
	limit := s.MaxBatchSize()
	for off := 0; off < n; off += limit {
		k := min(limit, n-off)
		o, err := st.Model.Predict(x[off*st.inputSize:(off+k)*st.inputSize], k)
		if err != nil {
			return nil, 0, fmt.Errorf("model %s: predict %d rows: %w", st.Version, k, err)
		}
		if len(o) == 0 || len(o)%k != 0 {
			return nil, 0, fmt.Errorf("model %s returned %d values for %d rows", st.Version, len(o), k)
		}
		d := len(o) / k
		if st.classes != nil && d != len(st.classes) {
			return nil, 0, fmt.Errorf("model %s returned %d values per row for %d classes", st.Version, d, len(st.classes))
		}
		if off == 0 {
			dim = d
			if k == n {
				out = o
			} else {
				out = make([]float32, 0, n*d)
			}
		}
		if d != dim {
			return nil, 0, fmt.Errorf("model %s returned %d then %d values per row", st.Version, dim, d)
		}
		if k != n {
			out = append(out, o...)
		}
		s.m.batchRows.Observe(float64(k))
		s.m.rows.Add(float64(k))
		s.counts.rows.Add(int64(k))
	}
	return out, dim, nil
}
