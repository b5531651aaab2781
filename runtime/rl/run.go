package rl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"time"

	"github.com/leptonml/lepton/runtime/rl/env"
	"github.com/leptonml/lepton/runtime/runstore"
)

// Options are the parts of a run that do not change its result.
type Options struct {
	// Run, when set, holds the checkpoint (the object CheckpointFile). A
	// checkpoint already there is resumed from; it must come from the same
	// spec.
	Run runstore.Store
	// RunDir, when Run is nil, is a local directory used as Run.
	RunDir string
	// CheckpointEvery is the checkpoint interval in episodes (default 1000).
	// A checkpoint is also written when ctx is cancelled and at the end.
	CheckpointEvery int
	// Progress receives one line every ProgressEvery episodes (default: a
	// twentieth of the run) and a last one at the end; nil for none.
	Progress      io.Writer
	ProgressEvery int
	// OnProgress, when set, is called at the same moments with the same
	// figures, e.g. to drive a progress bar or a status file.
	OnProgress func(Progress)
}

// Progress is a report on training so far.
type Progress struct {
	Episode  int `json:"episode"`  // episodes completed
	Episodes int `json:"episodes"` // episodes in the run
	// MeanReturn is the mean training return over the last Window episodes.
	MeanReturn float64 `json:"mean_return"`
	Window     int     `json:"window"`
	// Epsilon is the exploration rate of the last episode.
	Epsilon        float64 `json:"epsilon"`
	EpisodesPerSec float64 `json:"episodes_per_sec"`
}

// String is the plain progress line.
func (p Progress) String() string {
	return fmt.Sprintf("episode %d/%d  mean_return(last %d) %.4f  epsilon %.4f  %.0f episodes/s",
		p.Episode, p.Episodes, p.Window, p.MeanReturn, p.Epsilon, p.EpisodesPerSec)
}

// CheckpointFile is the checkpoint's key in Options.Run.
const CheckpointFile = "q_learning.checkpoint.json"

// Run trains a Q-table as spec says and evaluates its greedy policy. With the
// same spec it returns the same Result, whether or not it was interrupted and
// resumed on the way: episode i draws all its randomness from a generator
// seeded by (Seed, i) alone. When ctx is cancelled, Run writes a checkpoint
// (if opts.Run or opts.RunDir is set) and returns an error wrapping ctx.Err().
func Run(ctx context.Context, spec Spec, opts Options) (*Result, error) {
	if err := Check(spec); err != nil {
		return nil, fmt.Errorf("q_learning spec: %w", err)
	}
	spec = spec.normalize()
	e, err := env.New(spec.Environment)
	if err != nil {
		return nil, err // Check has already accepted the environment.
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = 1000
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = max(1, spec.Episodes/20)
	}

	st := &checkpoint{Version: checkpointVersion, Spec: spec, Q: newTable(e.NumStates(), e.NumActions())}
	if opts.Run == nil && opts.RunDir != "" {
		// The checkpoint is the user's data: private, as its own store's.
		opts.Run = runstore.NewDir(opts.RunDir, runstore.DirOptions{Private: []string{CheckpointFile}})
	}
	if opts.Run != nil {
		prev, err := loadCheckpoint(ctx, opts.Run, spec, e)
		switch {
		case err == nil:
			st = prev
			st.Spec = spec
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	if err := train(ctx, e, spec, st, opts); err != nil {
		return nil, err
	}

	policy := Greedy(st.Q)
	ev, err := Evaluate(ctx, e, policy, spec.EvalEpisodes, spec.Seed)
	if err != nil {
		return nil, err
	}
	return &Result{
		Environment: e.Info(),
		Spec:        spec,
		Steps:       st.Steps,
		QTable:      st.Q,
		Policy:      policy,
		Metrics: map[string]float64{
			"mean_return":  ev.MeanReturn,
			"success_rate": ev.SuccessRate,
		},
	}, nil
}

func newTable(states, actions int) [][]float64 {
	q := make([][]float64, states)
	cells := make([]float64, states*actions)
	for s := range q {
		q[s] = cells[s*actions : (s+1)*actions : (s+1)*actions]
	}
	return q
}

// train runs episodes st.Episodes..spec.Episodes-1, updating st in place.
func train(ctx context.Context, e env.Env, spec Spec, st *checkpoint, opts Options) error {
	save := func() error {
		if opts.Run == nil {
			return nil
		}
		return saveCheckpoint(ctx, opts.Run, st)
	}
	rng := newStreamRNG()
	q := st.Q
	gamma, alpha := spec.Discount, spec.LearningRate
	lastTime, lastEp := time.Now(), st.Episodes
	for ep := st.Episodes; ep < spec.Episodes; ep++ {
		if err := ctx.Err(); err != nil {
			if serr := save(); serr != nil {
				return errors.Join(err, serr)
			}
			return fmt.Errorf("q_learning stopped after %d of %d episodes: %w", ep, spec.Episodes, err)
		}
		rng.seed(spec.Seed, streamTrain, ep)
		eps := spec.Epsilon.At(ep)
		s := e.Reset(rng.Rand)
		ret := 0.0
		steps := 0
		for range e.MaxSteps() {
			steps++
			a := explore(q[s], eps, rng.Rand)
			next, r, done := e.Step(s, a, rng.Rand)
			target := r
			if !done {
				// Truncation at MaxSteps is not termination: bootstrap.
				target += gamma * maxOf(q[next])
			}
			q[s][a] += alpha * (target - q[s][a])
			ret += r
			s = next
			if done {
				break
			}
		}
		st.Episodes = ep + 1
		st.Steps += int64(steps)
		st.IntervalReturn += ret
		st.IntervalEpisodes++

		if st.Episodes%opts.ProgressEvery == 0 || st.Episodes == spec.Episodes {
			now := time.Now()
			p := Progress{
				Episode: st.Episodes, Episodes: spec.Episodes,
				MeanReturn: st.IntervalReturn / float64(st.IntervalEpisodes), Window: st.IntervalEpisodes,
				Epsilon:        eps,
				EpisodesPerSec: float64(st.Episodes-lastEp) / max(now.Sub(lastTime).Seconds(), 1e-9),
			}
			if opts.Progress != nil {
				fmt.Fprintln(opts.Progress, p)
			}
			if opts.OnProgress != nil {
				opts.OnProgress(p)
			}
			lastTime, lastEp = now, st.Episodes
			st.IntervalReturn, st.IntervalEpisodes = 0, 0
		}
		if st.Episodes%opts.CheckpointEvery == 0 || st.Episodes == spec.Episodes {
			if err := save(); err != nil {
				return err
			}
		}
	}
	return nil
}

// explore is epsilon-greedy with ties among the best actions broken at
// random, so that an all-zero row does not always pick action 0.
func explore(q []float64, eps float64, rng *rand.Rand) int {
	if rng.Float64() < eps {
		return rng.IntN(len(q))
	}
	best, n := 0, 1
	for a := 1; a < len(q); a++ {
		switch {
		case q[a] > q[best]:
			best, n = a, 1
		case q[a] == q[best]:
			n++
			if rng.IntN(n) == 0 {
				best = a
			}
		}
	}
	return best
}

func maxOf(row []float64) float64 {
	m := row[0]
	for _, v := range row[1:] {
		m = max(m, v)
	}
	return m
}

// Random streams: training episode i and evaluation episode i each get their
// own generator, derived from (seed, stream, i) alone, so any episode can be
// replayed without replaying the ones before it.
const (
	streamTrain uint64 = 1
	streamEval  uint64 = 2
)

type streamRNG struct {
	pcg *rand.PCG
	*rand.Rand
}

func newStreamRNG() streamRNG {
	p := rand.NewPCG(0, 0)
	return streamRNG{pcg: p, Rand: rand.New(p)}
}

func (r streamRNG) seed(seed int64, stream uint64, i int) {
	hi := splitmix(splitmix(uint64(seed)) + stream)
	r.pcg.Seed(hi, splitmix(hi+uint64(i)))
}

// splitmix is SplitMix64's finalizer: it spreads neighbouring seeds and
// episode numbers over unrelated PCG states.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
