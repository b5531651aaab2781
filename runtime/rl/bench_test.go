package rl

import (
	"context"
	"testing"

	"github.com/leptonml/lepton/runtime/rl/env"
)

// BenchmarkQLearning times training alone (a single evaluation episode) with
// each environment's default hyper-parameters over a fixed number of
// episodes, and reports episodes/s and environment steps/s.
//
// BenchmarkRandomRollout is the reference: the same environment stepped with
// uniformly random actions and no learning, i.e. the cost of the simulator.
// Training's steps/s over the reference's is the Q-learning overhead.
func BenchmarkQLearning(b *testing.B) {
	for _, bc := range []struct {
		name     string
		cfg      env.Config
		episodes int
	}{
		{"frozen_lake_4x4", env.Config{Name: env.FrozenLake}, 20000},
		{"frozen_lake_8x8", env.Config{Name: env.FrozenLake, Size: 8}, 20000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := Defaults(bc.cfg)
			s.Episodes, s.EvalEpisodes = bc.episodes, 1
			steps := int64(0)
			for b.Loop() {
				r, err := Run(context.Background(), s, Options{})
				if err != nil {
					b.Fatal(err)
				}
				n := r.Steps
				steps += n
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*bc.episodes)/sec, "episodes/s")
			b.ReportMetric(float64(steps)/sec, "steps/s")
		})
	}
}

func BenchmarkRandomRollout(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  env.Config
	}{
		{"frozen_lake_4x4", env.Config{Name: env.FrozenLake}},
		{"frozen_lake_8x8", env.Config{Name: env.FrozenLake, Size: 8}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e, err := env.New(bc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			rng := newStreamRNG()
			episodes, steps := 0, 0
			for b.Loop() {
				rng.seed(1, streamTrain, episodes)
				_, n, _ := rollout(e, func(int, int) int { return rng.IntN(4) }, rng.Rand)
				episodes++
				steps += n
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(episodes)/sec, "episodes/s")
			b.ReportMetric(float64(steps)/sec, "steps/s")
		})
	}
}
