package env

import "strings"

// Gymnasium's FrozenLake-v1 maps (gymnasium/envs/toy_text/frozen_lake.py).
var (
	lake4x4 = []string{"SFFF", "FHFH", "FFFH", "HFFG"}
	lake8x8 = []string{
		"SFFFFFFF",
		"FFFFFFFF",
		"FFFHFFFF",
		"FFFFFHFF",
		"FFFHFFFF",
		"FHHFFFHF",
		"FHFFHFHF",
		"FFFHFFFG",
	}
)

// Moves as (row, col) deltas. FrozenLake (and lepton's gridworld) number
// actions left, down, right, up; CliffWalking numbers them up, right, down,
// left. Both orders go round the compass, so a-1 and a+1 (mod 4) are the two
// directions perpendicular to a.
var (
	lakeActions  = []string{"left", "down", "right", "up"}
	lakeDeltas   = [][2]int{{0, -1}, {1, 0}, {0, 1}, {-1, 0}}
	cliffActions = []string{"up", "right", "down", "left"}
	cliffDeltas  = [][2]int{{-1, 0}, {0, 1}, {1, 0}, {0, -1}}
)

// outcome is what entering a cell yields.
type outcome struct {
	reward  float64
	done    bool
	toStart bool // the agent is sent back to the start cell (the cliff)
}

type grid struct {
	info     Info
	deltas   [][2]int
	terminal func(cell byte) bool
	enter    func(cell byte) outcome
}

// build turns a grid description into a tabular Env. Moves off the edge or
// into a wall leave the agent where it is; a slippery move goes in the
// intended direction or either perpendicular one, each with probability 1/3,
// listed in Gymnasium's order (a-1, a, a+1).
func (g grid) build() *tabular {
	rows, cols := len(g.info.Map), len(g.info.Map[0])
	cell := func(r, c int) byte { return g.info.Map[r][c] }
	n := rows * cols
	start := -1
	m := &Model{Initial: make([]float64, n), P: make([][][]Transition, n)}
	goal := make([]bool, n)
	for s := range n {
		r, c := s/cols, s%cols
		switch cell(r, c) {
		case 'S':
			start = s
		case 'G':
			goal[s] = true
		}
	}
	m.Initial[start] = 1
	nA := len(g.deltas)
	for s := range n {
		r, c := s/cols, s%cols
		m.P[s] = make([][]Transition, nA)
		for a := range nA {
			if g.terminal(cell(r, c)) {
				m.P[s][a] = []Transition{{Prob: 1, Next: s, Reward: 0, Done: true}}
				continue
			}
			dirs := []int{a}
			if g.info.Slippery {
				dirs = []int{(a + nA - 1) % nA, a, (a + 1) % nA}
			}
			p := 1 / float64(len(dirs))
			for _, d := range dirs {
				nr := min(max(r+g.deltas[d][0], 0), rows-1)
				nc := min(max(c+g.deltas[d][1], 0), cols-1)
				if cell(nr, nc) == 'W' {
					nr, nc = r, c
				}
				o := g.enter(cell(nr, nc))
				next := nr*cols + nc
				if o.toStart {
					next = start
				}
				m.P[s][a] = append(m.P[s][a], Transition{Prob: p, Next: next, Reward: o.reward, Done: o.done})
			}
		}
	}
	info := g.info
	info.Rows, info.Cols = rows, cols
	info.NumStates, info.NumActions = n, nA
	info.Start = start
	return &tabular{model: m, goal: goal, info: info}
}

// newFrozenLake is Gymnasium's FrozenLake-v1: reward 1 on reaching G, an
// episode ends in G or a hole, and is capped at 100 steps (4x4) or 200 (8x8)
// as gymnasium.make applies for FrozenLake-v1 and FrozenLake8x8-v1.
func newFrozenLake(size int, slippery bool) *tabular {
	m, steps := lake4x4, 100
	if size == 8 {
		m, steps = lake8x8, 200
	}
	return grid{
		info: Info{
			Name: FrozenLake, Size: size, Slippery: slippery, MaxSteps: steps,
			Actions: lakeActions, Map: m,
		},
		deltas:   lakeDeltas,
		terminal: func(c byte) bool { return c == 'H' || c == 'G' },
		enter: func(c byte) outcome {
			switch c {
			case 'G':
				return outcome{reward: 1, done: true}
			case 'H':
				return outcome{done: true}
			}
			return outcome{}
		},
	}.build()
}

// cliffMaxSteps caps cliff_walking episodes. Gymnasium registers
// CliffWalking-v0 without a cap; lepton needs one so that a greedy policy that
// walks in circles still ends. 200 is far above the optimal 13 steps.
const cliffMaxSteps = 200

// newCliffWalking is Gymnasium's CliffWalking-v0: a 4x12 grid, start at the
// bottom left, goal at the bottom right, the cells between them a cliff; -1
// per step, and stepping onto the cliff costs -100 and returns the agent to
// the start without ending the episode.
func newCliffWalking() *tabular {
	m := []string{
		"............",
		"............",
		"............",
		"SCCCCCCCCCCG",
	}
	return grid{
		info: Info{
			Name: CliffWalking, Size: 12, MaxSteps: cliffMaxSteps,
			Actions: cliffActions, Map: m,
		},
		deltas:   cliffDeltas,
		terminal: func(c byte) bool { return c == 'G' },
		enter: func(c byte) outcome {
			switch c {
			case 'C':
				return outcome{reward: -100, toStart: true}
			case 'G':
				return outcome{reward: -1, done: true}
			}
			return outcome{reward: -1}
		},
	}.build()
}

// newGridWorld is lepton's own gridworld: an n x n grid, start at the top
// left, goal at the bottom right, and two walls that force a snaking path:
// column n/3 is walled from the top down to the second-to-last row (the gap is
// at the bottom) and column 2n/3 from the second row to the bottom (the gap is
// at the top). Every step costs -1, including the one onto the goal, so the
// return is minus the episode length; bumping into a wall or the edge stays
// put. Episodes are capped at 4*n*n steps. For n = 5 the map is
//
//	SW...
//	.W.W.
//	.W.W.
//	.W.W.
//	...WG
//
// and the shortest path (down, right, up, right, down) takes 16 steps.
func newGridWorld(n int, slippery bool) *tabular {
	return grid{
		info: Info{
			Name: GridWorld, Size: n, Slippery: slippery, MaxSteps: 4 * n * n,
			Actions: lakeActions, Map: gridMap(n),
		},
		deltas:   lakeDeltas,
		terminal: func(c byte) bool { return c == 'G' },
		enter: func(c byte) outcome {
			return outcome{reward: -1, done: c == 'G'}
		},
	}.build()
}

func gridMap(n int) []string {
	w1, w2 := n/3, 2*n/3
	rows := make([]string, n)
	for r := range n {
		var b strings.Builder
		for c := range n {
			switch {
			case r == 0 && c == 0:
				b.WriteByte('S')
			case r == n-1 && c == n-1:
				b.WriteByte('G')
			case c == w1 && r <= n-2, c == w2 && r >= 1:
				b.WriteByte('W')
			default:
				b.WriteByte('.')
			}
		}
		rows[r] = b.String()
	}
	return rows
}
