package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/runtime/serve"
)

const predictHelp = `
Usage: lepton predict [options] ADDR

  Calls an endpoint with the token from state and prints its answer. The
  input is a JSON array of rows ([[...], ...]), a KServe v1 body
  ({"instances": ...}) or an Open Inference Protocol v2 body ({"inputs": ...}).

Examples:
  lepton predict endpoint.digits -input '[[5.1, 3.5, 1.4, 0.2]]'
  lepton predict endpoint.digits -input-file rows.json
`

func cmdPredict(m *meta, args []string) int {
	fs := m.flags("predict", predictHelp)
	input := fs.String("input", "", "The request body, inline JSON.")
	file := fs.String("input-file", "", "A file holding the request body (- for standard input).")
	timeout := fs.Duration("timeout", 60*time.Second, "How long to wait for the answer.")
	if code, ok := parseInterleaved(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return m.errorf("predict needs exactly one endpoint address, like endpoint.digits")
	}
	if (*input == "") == (*file == "") {
		return m.errorf("give the request with exactly one of -input or -input-file")
	}
	body := []byte(*input)
	if *file != "" {
		var err error
		if *file == "-" {
			body, err = io.ReadAll(m.stdin)
		} else {
			body, err = os.ReadFile(m.path(*file))
		}
		if err != nil {
			return m.errorf("reading the input: %v", err)
		}
	}
	if !json.Valid(body) {
		return m.errorf("the input is not valid JSON")
	}
	_, st, ok := m.readState()
	if !ok {
		return 1
	}
	addr := fs.Arg(0)
	r := st.Find(addr)
	if st == nil || r == nil {
		return m.errorf("no %s in state: apply it first", addr)
	}
	pr, ok := m.resource(r.Kind, r.Provider).(predictor)
	if !ok {
		return m.errorf("%s is a %s; predict calls endpoints", addr, r.Kind)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	target, err := pr.PredictTarget(ctx, m.view(r))
	if err != nil || target.URL == "" {
		return m.errorf("%s has no URL in state: is it running? (lepton status)", addr)
	}
	out, err := (&serve.Client{}).PredictRaw(ctx, target.URL, target.Model, target.Token, body)
	if err != nil {
		return m.errorf("%v", err)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		out = pretty.Bytes()
	}
	fmt.Fprintln(m.stdout, strings.TrimSpace(string(out)))
	return 0
}

const statusHelp = `
Usage: lepton status [options]

  A live view of what lepton manages here: training runs (status, epochs,
  metrics, progress of a run in flight; for a run with resources { } of its
  own, its restarts after preemptions and lost nodes, with their causes),
  endpoints (health, model version, requests served), clusters (nodes and
  cost per hour).

Examples:
  lepton status
  lepton status -json
  lepton status -watch
`

type statusRow struct {
	Address string            `json:"address"`
	Kind    string            `json:"kind"`
	Status  string            `json:"status"`
	Detail  string            `json:"detail,omitempty"`
	Metrics map[string]any    `json:"metrics,omitempty"`
	Extra   map[string]string `json:"extra,omitempty"`
}

func cmdStatus(m *meta, args []string) int {
	fs := m.flags("status", statusHelp)
	asJSON := fs.Bool("json", false, "Print as JSON.")
	watch := fs.Bool("watch", false, "Refresh every -interval until interrupted.")
	interval := fs.Duration("interval", 2*time.Second, "Refresh interval with -watch.")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for {
		_, st, ok := m.readState()
		if !ok {
			return 1
		}
		rows := statusRows(ctx, m, st)
		if *watch && !*asJSON && isTTY(m.stdout) {
			fmt.Fprint(m.stdout, "\x1b[H\x1b[2J")
		}
		if *asJSON {
			b, _ := json.MarshalIndent(rows, "", "  ")
			fmt.Fprintln(m.stdout, string(b))
		} else {
			renderStatus(m, rows)
		}
		if !*watch {
			return 0
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(*interval):
		}
	}
}

func statusRows(ctx context.Context, m *meta, st *state.State) []statusRow {
	rows := []statusRow{}
	if st == nil {
		return rows
	}
	res := append([]*state.Resource(nil), st.Resources...)
	sort.Slice(res, func(i, j int) bool { return res[i].Address < res[j].Address })
	for _, r := range res {
		row := statusRow{Address: r.Address, Kind: r.Kind, Status: r.Status, Extra: map[string]string{}}
		if sr, ok := m.resource(r.Kind, r.Provider).(statusReporter); ok {
			rep := sr.Status(ctx, m.view(r))
			if rep.Status != "" {
				row.Status = rep.Status
			}
			row.Detail, row.Metrics = rep.Detail, rep.Metrics
			for k, v := range rep.Extra {
				row.Extra[k] = v
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func renderStatus(m *meta, rows []statusRow) {
	if len(rows) == 0 {
		fmt.Fprintln(m.stdout, "Nothing is managed here yet: run lepton apply.")
		return
	}
	tw := tabwriter.NewWriter(m.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tSTATUS\tDETAIL")
	for _, r := range rows {
		detail := r.Detail
		if len(r.Metrics) > 0 {
			keys := make([]string, 0, len(r.Metrics))
			for k := range r.Metrics {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s=%v", k, r.Metrics[k]))
			}
			detail += "; " + strings.Join(parts, " ")
		}
		for _, k := range []string{"requests", "model_version"} {
			if v := r.Extra[k]; v != "" {
				if len(v) > 19 {
					v = v[:19] + "…"
				}
				detail += fmt.Sprintf("; %s=%s", k, v)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Address, r.Status, detail)
	}
	tw.Flush()
}
