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

// worker coalesces queued requests into batches of at most MaxBatchSize
// rows and scores each batch with one Predict call. It takes whatever is
// already queued without waiting, so a lone request is scored at once;
// only when other requests are still being decoded, and BatchWindow > 0,
// does it wait up to BatchWindow for them to join.
func (s *Server) worker() {
	defer s.wg.Done()
	var (
		carry *job // a job that did not fit the previous batch
		batch []*job
		buf   []float32
		timer = time.NewTimer(time.Hour)
	)
	timer.Stop()
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case <-s.stop:
				return
			case first = <-s.jobs:
			}
		}
		batch = append(batch[:0], first)
		rows := first.n
		limit := s.MaxBatchSize()
		var deadline time.Time
		add := func(j *job) bool {
			if j.st != first.st || rows+j.n > limit {
				carry = j
				return false
			}
			batch = append(batch, j)
			rows += j.n
			return true
		}
	collect:
		for rows < limit {
			select {
			case j := <-s.jobs:
				if !add(j) {
					break collect
				}
				continue
			default:
			}
			if s.cfg.BatchWindow <= 0 || s.decoding.Load() == 0 {
				break
			}
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(s.cfg.BatchWindow)
			}
			if !now.Before(deadline) {
				break
			}
			timer.Reset(deadline.Sub(now))
			select {
			case j := <-s.jobs:
				timer.Stop()
				if !add(j) {
					break collect
				}
			case <-timer.C:
				break collect
			}
		}
		s.runBatch(batch, rows, &buf)
		clear(batch)
	}
}

// runBatch scores a batch and hands each job its slice of the outputs.
func (s *Server) runBatch(batch []*job, rows int, buf *[]float32) {
	st := batch[0].st
	x := batch[0].x
	if len(batch) > 1 {
		need := rows * st.inputSize
		if cap(*buf) < need {
			*buf = make([]float32, need)
		}
		x = (*buf)[:need]
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
	}
	return out, dim, nil
}
