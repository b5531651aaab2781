// Command lepton-sandbox runs lepton's three clouds on this machine, for
// trying the cloud path without an account and for tests: see -help and
// internal/sandbox.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/leptonml/lepton/internal/sandbox"
)

const usage = `Usage: lepton-sandbox -dir DIR [-grace DURATION]
       lepton-sandbox -dir DIR status [-json]
       lepton-sandbox -dir DIR preempt INSTANCE_ID

Runs AWS EC2, GCP Compute Engine and Azure Resource Manager fakes, their
object stores (S3, GCS, Azure Blob) and AWS STS on loopback. Launching an
instance boots a node: a process in DIR/nodes/INSTANCE_ID, on its own address 127.0.0.N,
that runs the instance's user data (AWS), startup script (GCP) or custom
data (Azure) with bash, as cloud-init would, next to a metadata server for
its cloud. Terminating or deleting the instance kills the node's processes
(SIGTERM, then SIGKILL after -grace); its directory stays for inspection.

Without a subcommand it prints "export NAME=VALUE" lines that point lepton
at it (also written to DIR/sandbox.env), then a line "ready", and runs until
interrupted (SIGINT or SIGTERM), then stops every node it started.

Subcommands (talk to the sandbox running in DIR):
  status [-json]        list its nodes (cloud, instance, address, pid,
                        instance state, process state) and how many were booted
  preempt INSTANCE_ID   end an instance as a spot interruption does (AWS
                        Server.SpotInstanceTermination, GCP preemption, Azure
                        eviction) and wait until its node's processes are gone

Flags:
  -dir DIR              the sandbox's directory (required)
  -grace DURATION       time between SIGTERM and SIGKILL for a stopped node (default 3s)

Examples:
  go build -o bin ./cmd/...
  bin/lepton-sandbox -dir /tmp/sbx > /tmp/sbx.out &
  until grep -qx ready /tmp/sbx.out; do sleep 0.2; done
  . /tmp/sbx/sandbox.env
  bin/lepton apply
  bin/lepton-sandbox -dir /tmp/sbx status
  bin/lepton-sandbox -dir /tmp/sbx preempt i-00000000000000003
  kill -INT %1

Exit codes: 0 ok, 1 error, 2 usage.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lepton-sandbox", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", "", "")
	grace := fs.Duration("grace", 3*time.Second, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "lepton-sandbox: %v\n\n%s", err, usage)
		return 2
	}
	if *dir == "" {
		fmt.Fprintf(stderr, "lepton-sandbox: -dir is required\n\n%s", usage)
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return serve(*dir, *grace, stdout, stderr)
	}
	ctx := context.Background()
	switch rest[0] {
	case "status":
		sfs := flag.NewFlagSet("status", flag.ContinueOnError)
		sfs.SetOutput(io.Discard)
		asJSON := sfs.Bool("json", false, "")
		if err := sfs.Parse(rest[1:]); err != nil || sfs.NArg() != 0 {
			fmt.Fprintf(stderr, "lepton-sandbox: usage: lepton-sandbox -dir DIR status [-json]\n")
			return 2
		}
		c, err := sandbox.Dial(*dir)
		if err != nil {
			fmt.Fprintf(stderr, "lepton-sandbox: %v\n", err)
			return 1
		}
		st, err := c.Status(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "lepton-sandbox: %v\n", err)
			return 1
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(st)
			return 0
		}
		printStatus(stdout, st)
		return 0
	case "preempt":
		if len(rest) != 2 || rest[1] == "" {
			fmt.Fprintf(stderr, "lepton-sandbox: usage: lepton-sandbox -dir DIR preempt INSTANCE_ID\n")
			return 2
		}
		c, err := sandbox.Dial(*dir)
		if err != nil {
			fmt.Fprintf(stderr, "lepton-sandbox: %v\n", err)
			return 1
		}
		if err := c.Preempt(ctx, rest[1]); err != nil {
			fmt.Fprintf(stderr, "lepton-sandbox: preempt %s: %v\n", rest[1], err)
			return 1
		}
		fmt.Fprintf(stdout, "preempted %s\n", rest[1])
		return 0
	}
	fmt.Fprintf(stderr, "lepton-sandbox: unknown subcommand %q\n\n%s", rest[0], usage)
	return 2
}

func serve(dir string, grace time.Duration, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sb, err := sandbox.Start(ctx, sandbox.Config{Dir: dir, Grace: grace, Log: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "lepton-sandbox: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, sb.ExportLines())
	fmt.Fprintln(stdout, "ready")
	<-ctx.Done()
	stop()
	fmt.Fprintln(stderr, "lepton-sandbox: stopping every node")
	if err := sb.Close(); err != nil {
		fmt.Fprintf(stderr, "lepton-sandbox: %v\n", err)
		return 1
	}
	return 0
}

func printStatus(w io.Writer, st sandbox.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLOUD\tINSTANCE\tADDRESS\tPID\tSTATE\tPROCESS")
	for _, n := range st.Nodes {
		pid := "-"
		if n.PID > 0 {
			pid = fmt.Sprint(n.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Cloud, n.ID, n.IP, pid, n.State, n.Process)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d nodes booted, %d running\n", st.Booted, st.Live)
}
