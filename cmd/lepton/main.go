// Command lepton is a Terraform-style tool for machine-learning infrastructure:
// datasets, GPU clusters, training runs, batch inference and endpoints declared
// in HCL, planned as a reviewable diff and applied on this machine or in a cloud.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
)

func main() {
	tuneGC(os.Getenv, headroomFor(os.Args[1:]))
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == "lepton-agent" {
		// A node fetched this binary as its agent (no lepton-agent was
		// beside lepton to upload): run as `lepton agent`.
		args = append([]string{"agent"}, args...)
	}
	os.Exit(profiled(func() int { return run(args, os.Stdin, os.Stdout, os.Stderr, os.Environ()) }))
}

// profiled runs f with a CPU profile written to $LEPTON_CPU_PROFILE and a heap
// profile to $LEPTON_MEM_PROFILE when they are set: how the figures in
// docs/benchmarks are explained on the real binary path.
func profiled(f func() int) int {
	if p := os.Getenv("LEPTON_CPU_PROFILE"); p != "" {
		if out, err := os.Create(p); err == nil {
			if err := pprof.StartCPUProfile(out); err == nil {
				defer func() { pprof.StopCPUProfile(); out.Close() }()
			}
		}
	}
	code := f()
	if p := os.Getenv("LEPTON_MEM_PROFILE"); p != "" {
		if out, err := os.Create(p); err == nil {
			runtime.GC() // the in-use figures are those of the last collection
			pprof.Lookup("allocs").WriteTo(out, 0)
			out.Close()
		}
	}
	return code
}

// command is one subcommand.
type command struct {
	synopsis string
	run      func(m *meta, args []string) int
}

func commands() map[string]command {
	return map[string]command{
		"init":         {"Prepare the working directory, optionally writing a starter project", cmdInit},
		"validate":     {"Check that the configuration is valid", cmdValidate},
		"fmt":          {"Rewrite configuration files to the canonical format", cmdFmt},
		"plan":         {"Show the changes that apply would make", cmdPlan},
		"apply":        {"Create or update infrastructure", cmdApply},
		"destroy":      {"Destroy everything lepton manages here", cmdDestroy},
		"show":         {"Show a saved plan, the state, or one resource", cmdShow},
		"output":       {"Show output values", cmdOutput},
		"state":        {"Inspect and edit the state (list, show, rm, pull, push)", cmdState},
		"force-unlock": {"Release a stale state lock", cmdForceUnlock},
		"graph":        {"Print the dependency graph in Graphviz DOT", cmdGraph},
		"version":      {"Print the version", cmdVersion},
		"logs":         {"Print the log of a training run or an endpoint", cmdLogs},
		"offers":       {"List GPU offers from the catalog, cheapest first", cmdOffers},
		"predict":      {"Call an endpoint with the token from state", cmdPredict},
		"status":       {"Live view of trainings, endpoints and clusters", cmdStatus},
		"ui":           {"Serve a read-only web dashboard of this project on 127.0.0.1", cmdUI},
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	m := newMeta(stdin, stdout, stderr, env)
	// Global options come before the subcommand.
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := strings.TrimPrefix(strings.TrimPrefix(args[0], "-"), "-")
		switch {
		case strings.HasPrefix(a, "chdir="):
			m.dir = strings.TrimPrefix(a, "chdir=")
			if fi, err := os.Stat(m.dir); err != nil || !fi.IsDir() {
				fmt.Fprintf(stderr, "Error: -chdir=%s is not a directory\n", m.dir)
				return 1
			}
		case a == "help" || a == "h":
			usage(stdout)
			return 0
		case a == "version" || a == "v":
			return cmdVersion(m, nil)
		case a == "no-color":
			m.color = false
		default:
			fmt.Fprintf(stderr, "Error: unknown global option %s\n\n", args[0])
			usage(stderr)
			return 1
		}
		args = args[1:]
	}
	if len(args) == 0 {
		usage(stdout)
		return 0
	}
	if args[0] == "internal-serve" {
		return cmdInternalServe(m, args[1:])
	}
	if args[0] == "internal-kube-run" { // what lepton's image runs in a Kubernetes pod; not listed
		return cmdInternalKubeRun(m, args[1:])
	}
	if args[0] == "agent" { // a cluster node's agent, when lepton-agent is not beside lepton; not listed
		return cmdAgent(m, args[1:])
	}
	c, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "Error: unknown command %q\n\n", args[0])
		usage(stderr)
		return 1
	}
	code := c.run(m, args[1:])
	// Providers are closed once the command is done with them, as
	// Terraform's are at the end of an operation.
	if err := m.closeProviders(); err != nil && code == 0 {
		code = m.errorf("%v", err)
	}
	return code
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: lepton [-chdir=DIR] <command> [options]

lepton declares datasets, GPU clusters, training runs, batch inference and
endpoints in *.lep.hcl files, plans the changes as a reviewable diff, and
applies them on this machine or in AWS, GCP and Azure.

Commands:
`)
	cs := commands()
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, cs[n].synopsis)
	}
	fmt.Fprint(w, `
Global options:
  -chdir=DIR    Switch to DIR before running the command.
  -help         Show this help; "lepton COMMAND -help" shows a command's.
  -version      Same as "lepton version".

Examples:
  lepton init -template quickstart
  lepton plan -out=tfplan
  lepton apply tfplan
`)
}
