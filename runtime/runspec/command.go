package runspec

import (
	"sort"
	"strconv"
	"strings"
)

// CommandDirs are a command's folders on the machine it runs on.
type CommandDirs struct {
	Output, Checkpoint string
}

// Port is MASTER_PORT: MasterPort, or DefaultMasterPort.
func (c *Command) Port() int {
	if c.MasterPort > 0 {
		return c.MasterPort
	}
	return DefaultMasterPort
}

// CommandEnv is the environment of a run's command (see Command): base (the
// runner's own), the torchrun and LEPTON_ variables, then c.Env, which wins.
// A negative GPUsPerNode (the GPUs are not known, as on the user's own
// machine) leaves GPUS_PER_NODE and CUDA_VISIBLE_DEVICES as base has them.
func CommandEnv(base []string, run Run, c *Command, dirs CommandDirs, master string) []string {
	vars := map[string]string{}
	for _, kv := range base {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	set := map[string]string{
		"NODE_RANK":             strconv.Itoa(run.Node),
		"NUM_NODES":             strconv.Itoa(run.Nodes),
		"NNODES":                strconv.Itoa(run.Nodes),
		"MASTER_ADDR":           master,
		"MASTER_PORT":           strconv.Itoa(c.Port()),
		"LEPTON_RUN_ID":         run.ID,
		"LEPTON_ATTEMPT":        strconv.Itoa(run.Attempt),
		"LEPTON_OUTPUT_DIR":     dirs.Output,
		"LEPTON_CHECKPOINT_DIR": dirs.Checkpoint,
		"PYTHONUNBUFFERED":      "1", // lines reach the log as they are printed
	}
	if c.GPUsPerNode >= 0 {
		gpus := make([]string, c.GPUsPerNode)
		for i := range gpus {
			gpus[i] = strconv.Itoa(i)
		}
		set["GPUS_PER_NODE"] = strconv.Itoa(c.GPUsPerNode)
		set["CUDA_VISIBLE_DEVICES"] = strings.Join(gpus, ",")
	}
	for k, v := range set {
		vars[k] = v
	}
	for k, v := range c.Env {
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
