package rl

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leptonml/lepton/runtime/rl/env"
)

func TestCheck(t *testing.T) {
	valid := Defaults(env.Config{Name: env.FrozenLake})
	yes := true
	for _, tc := range []struct {
		name string
		edit func(*Spec)
		want []string // substrings; nil means valid
	}{
		{"defaults", func(*Spec) {}, nil},
		{"discount one", func(s *Spec) { s.Discount = 1 }, nil},
		{"no decay", func(s *Spec) { s.Epsilon.DecayEpisodes = 0 }, nil},
		{"eval default", func(s *Spec) { s.EvalEpisodes = 0 }, nil},
		{"unknown env", func(s *Spec) { s.Environment.Name = "mountain_car" }, []string{`unknown environment "mountain_car"`}},
		{"missing env", func(s *Spec) { s.Environment.Name = "" }, []string{"environment name is missing"}},
		{"lake size", func(s *Spec) { s.Environment.Size = 6 }, []string{"size must be 4 or 8 (Gymnasium's maps), got 6"}},
		{"grid size", func(s *Spec) { s.Environment = env.Config{Name: env.GridWorld, Size: 2} }, []string{"between 5 and 32, got 2"}},
		{"slippery cliff", func(s *Spec) { s.Environment = env.Config{Name: env.CliffWalking, Slippery: &yes} }, []string{"cannot be slippery"}},
		{"zero episodes", func(s *Spec) { s.Episodes = 0 }, []string{"episodes must be at least 1, got 0"}},
		{"negative episodes", func(s *Spec) { s.Episodes = -5 }, []string{"got -5"}},
		{"zero discount", func(s *Spec) { s.Discount = 0 }, []string{"discount must be in (0, 1], got 0"}},
		{"big discount", func(s *Spec) { s.Discount = 1.01 }, []string{"got 1.01"}},
		{"zero learning rate", func(s *Spec) { s.LearningRate = 0 }, []string{"learning_rate must be in (0, 1], got 0"}},
		{"big learning rate", func(s *Spec) { s.LearningRate = 2 }, []string{"learning_rate", "got 2"}},
		{"epsilon start", func(s *Spec) { s.Epsilon.Start = 1.5 }, []string{"epsilon.start must be in [0, 1], got 1.5"}},
		{"epsilon end", func(s *Spec) { s.Epsilon.End = -0.1 }, []string{"epsilon.end must be in [0, 1], got -0.1"}},
		{"decay", func(s *Spec) { s.Epsilon.DecayEpisodes = -1 }, []string{"epsilon.decay_episodes must not be negative"}},
		{"eval", func(s *Spec) { s.EvalEpisodes = -1 }, []string{"eval_episodes must not be negative"}},
		{"all reported", func(s *Spec) { s.Episodes, s.Discount, s.Environment.Name = 0, 0, "x" },
			[]string{"unknown environment", "episodes must be", "discount must be"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := valid
			tc.edit(&s)
			err := Check(s)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Check accepted the spec")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestRunRejectsBeforeWork checks that a bad spec fails before a checkpoint is
// written.
func TestRunRejectsBeforeWork(t *testing.T) {
	dir := t.TempDir()
	s := Defaults(env.Config{Name: "frozen_pond"})
	_, err := Run(context.Background(), s, Options{RunDir: dir})
	if err == nil || !strings.Contains(err.Error(), `q_learning spec: unknown environment "frozen_pond"`) {
		t.Fatalf("Run = %v, want the unknown environment error", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CheckpointFile)); !os.IsNotExist(err) {
		t.Errorf("a rejected run left a checkpoint: %v", err)
	}
}

func TestEpsilonSchedule(t *testing.T) {
	e := Epsilon{Start: 1, End: 0.1, DecayEpisodes: 10}
	for _, tc := range []struct {
		ep   int
		want float64
	}{{0, 1}, {5, 0.55}, {9, 0.19}, {10, 0.1}, {1000, 0.1}} {
		if got := e.At(tc.ep); abs(got-tc.want) > 1e-12 {
			t.Errorf("At(%d) = %v, want %v", tc.ep, got, tc.want)
		}
	}
	if got := (Epsilon{Start: 1, End: 0.2}).At(0); got != 0.2 {
		t.Errorf("no decay: At(0) = %v, want the end value", got)
	}
}

func abs(x float64) float64 { return max(x, -x) }
