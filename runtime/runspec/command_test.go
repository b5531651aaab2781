package runspec

import (
	"strings"
	"testing"
)

func TestCommandEnv(t *testing.T) {
	base := []string{"PATH=/bin", "CUDA_VISIBLE_DEVICES=3", "NODE_RANK=9"}
	run := Run{ID: "r1", Node: 1, Nodes: 4, Attempt: 2}
	dirs := CommandDirs{Output: "/o", Checkpoint: "/c"}
	for _, tc := range []struct {
		name string
		c    Command
		want []string
	}{
		{"cluster node", Command{GPUsPerNode: 2},
			[]string{"CUDA_VISIBLE_DEVICES=0,1", "GPUS_PER_NODE=2", "LEPTON_ATTEMPT=2", "LEPTON_CHECKPOINT_DIR=/c", "LEPTON_OUTPUT_DIR=/o", "LEPTON_RUN_ID=r1",
				"MASTER_ADDR=10.0.0.1", "MASTER_PORT=29500", "NNODES=4", "NODE_RANK=1", "NUM_NODES=4", "PATH=/bin", "PYTHONUNBUFFERED=1"}},
		{"no GPUs", Command{MasterPort: 1234}, []string{"CUDA_VISIBLE_DEVICES=", "GPUS_PER_NODE=0", "MASTER_PORT=1234"}},
		{"GPUs unknown keep the machine's", Command{GPUsPerNode: -1}, []string{"CUDA_VISIBLE_DEVICES=3"}},
		{"the user's env wins", Command{GPUsPerNode: 1, Env: map[string]string{"MASTER_PORT": "7", "NODE_RANK": "x"}}, []string{"MASTER_PORT=7", "NODE_RANK=x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CommandEnv(base, run, &tc.c, dirs, "10.0.0.1")
			joined := "\n" + strings.Join(got, "\n") + "\n"
			for _, w := range tc.want {
				if !strings.Contains(joined, "\n"+w+"\n") {
					t.Errorf("lacks %s:%s", w, joined)
				}
			}
			if tc.c.GPUsPerNode < 0 && strings.Contains(joined, "GPUS_PER_NODE") {
				t.Errorf("GPUS_PER_NODE set with unknown GPUs:%s", joined)
			}
		})
	}
}
