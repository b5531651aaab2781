// Command ui measures the first render of `lepton ui` on a large state in a
// real headless Chromium (issue 16: under 2 s for 10,000 resources).
//
// Each run starts `lepton ui` on a state of N resources (N/2 datasets and N/2
// trainings, each training depending on its dataset), starts a fresh headless
// Chromium with an empty profile (nothing cached), opens the printed URL and
// times, from the navigation's start (the page's performance time origin),
// until the graph canvas has drawn every node and the resource table shows its
// rows, then until the next frame after that. Starting the server and the
// browser is not timed. It prints a Markdown table of medians.
//
//	go run ./bench/ui -bin /tmp/lepton -n 10000 -runs 5
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/leptonml/lepton/bench/internal/benchbin"
	"github.com/leptonml/lepton/internal/state"
)

// probe runs in the page before its own scripts. It records when the graph
// canvas says it drew every node and the table holds its rows (rendered), and
// the end of the frame after that (painted), in milliseconds since the
// navigation started.
const probe = `(() => {
  const want = %d, rows = %d;
  window.__leptonBench = {};
  const check = () => {
    const cv = document.getElementById("graph-canvas");
    if (!cv || cv.dataset.drawn !== String(want)) return;
    if (document.querySelectorAll("#resources tbody tr").length !== rows) return;
    if (window.__leptonBench.rendered !== undefined) return;
    window.__leptonBench.rendered = performance.now();
    requestAnimationFrame(() => setTimeout(() => { window.__leptonBench.painted = performance.now(); }, 0));
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-drawn"] });
})();`

// result is one run's figures, in milliseconds since the navigation started.
type result struct {
	Rendered float64 `json:"rendered"`
	Painted  float64 `json:"painted"`
	Graph    float64 `json:"graph"` // the /api/graph answer received
	Doc      float64 `json:"doc"`   // the page's HTML received
}

func main() {
	bin := flag.String("bin", "", "the lepton binary (default: build ./cmd/lepton into the work directory)")
	n := flag.Int("n", 10000, "resources in the state (half datasets, half trainings)")
	runs := flag.Int("runs", 5, "runs (the table shows medians)")
	rows := flag.Int("rows", 500, "rows the resource table shows at first (the page's tableRows)")
	work := flag.String("work", "", "work directory (default: a new temporary directory, removed at the end)")
	flag.Parse()
	if err := run(*bin, *n, *runs, *rows, *work); err != nil {
		fmt.Fprintln(os.Stderr, "bench/ui:", err)
		os.Exit(1)
	}
}

func run(bin string, n, runs, rows int, work string) error {
	if runs < 1 || n < 2 {
		return errors.New("-runs must be at least 1 and -n at least 2")
	}
	chromium := os.Getenv("LEPTON_CHROMIUM")
	if chromium == "" {
		chromium, _ = exec.LookPath("chromium")
	}
	if chromium == "" {
		return errors.New("chromium is not installed: run .ci/setup-chromium.sh, or set LEPTON_CHROMIUM")
	}
	bin, work, cleanup, err := benchbin.Prepare(bin, work, "lepton-bench-ui-")
	if err != nil {
		return err
	}
	defer cleanup()
	dir := filepath.Join(work, "project")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeState(filepath.Join(dir, "lepton.state.json"), n/2); err != nil {
		return err
	}
	want := n / 2 * 2
	var rs []result
	for i := range runs {
		r, err := once(bin, dir, chromium, filepath.Join(work, fmt.Sprintf("profile%d", i)), want, min(rows, want))
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		rs = append(rs, r)
	}
	printTable(os.Stdout, want, rs)
	return nil
}

// writeState writes a state of n datasets and n trainings, each training
// depending on the dataset of the same index (as cmd/lepton's browser tests).
func writeState(path string, n int) error {
	st := state.New("bench")
	for i := range n {
		st.Resources = append(st.Resources,
			&state.Resource{Address: fmt.Sprintf("dataset.d[%d]", i), Kind: "dataset", Name: "d", Index: i, Provider: "local", Status: state.StatusReady,
				Attributes: json.RawMessage(fmt.Sprintf(`{"digest":"sha256:%064d","rows":100,"dropped_rows":0,"columns":["x"],"schema":{"x":"number"},"stats":{"x":{"count":100,"missing":0}}}`, i))},
			&state.Resource{Address: fmt.Sprintf("training.t[%d]", i), Kind: "training", Name: "t", Index: i, Provider: "local", Status: state.StatusReady,
				Attributes:   json.RawMessage(`{"status":"succeeded","epochs_completed":3,"metrics":{"train_loss":0.5}}`),
				Dependencies: []string{"dataset.d"}})
	}
	return state.Write(context.Background(), state.NewLocal(path), st, state.WriteOptions{})
}

// once starts `lepton ui` and a fresh browser, and measures one first render.
func once(bin, dir, chromium, profile string, want, rows int) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ui := exec.Command(bin, "ui", "-port", "0")
	ui.Dir = dir
	ui.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := ui.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	ui.Stderr = os.Stderr
	if err := ui.Start(); err != nil {
		return result{}, err
	}
	defer func() {
		ui.Process.Signal(syscall.SIGINT)
		ui.Wait()
	}()
	u, err := printedURL(ctx, out)
	if err != nil {
		return result{}, err
	}

	actx, cancelA := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1000),
	)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	// Start the browser on a blank page, then install the probe: neither is timed.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		return result{}, fmt.Errorf("starting chromium: %w", err)
	}
	if _, err := chromedp.Call(bctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: fmt.Sprintf(probe, want, rows)}); err != nil {
		return result{}, err
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(u)); err != nil {
		return result{}, fmt.Errorf("opening %s: %w", u, err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`window.__leptonBench?.painted !== undefined`, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		return result{}, fmt.Errorf("waiting for %d nodes drawn and %d table rows: %w", want, rows, err)
	}
	return chromedp.Run(bctx, chromedp.Evaluate[result](`(() => {
		const b = window.__leptonBench;
		const g = performance.getEntriesByType("resource").find((e) => new URL(e.name).pathname === "/api/graph");
		const d = performance.getEntriesByType("navigation")[0];
		return { rendered: b.rendered, painted: b.painted, graph: g ? g.responseEnd : -1, doc: d ? d.responseEnd : -1 };
	})()`))
}

// printedURL reads lepton ui's output until it prints the dashboard's URL.
func printedURL(ctx context.Context, out io.Reader) (string, error) {
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`http://127\.0\.0\.1:\d+/\?token=[0-9a-f]+`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u := re.FindString(sc.Text()); u != "" {
				found <- u
				break
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case u := <-found:
		return u, nil
	case <-ctx.Done():
		return "", errors.New("lepton ui printed no URL")
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printTable(w io.Writer, n int, rs []result) {
	host, _ := os.Hostname()
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(w, "lepton ui first render: %s, %d CPUs, %s, %d resources, %d runs, medians (load average %s)\n\n", runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), host, n, len(rs), strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "))
	fmt.Fprintln(w, "| from navigation start to | median | min–max |")
	fmt.Fprintln(w, "|---|---:|---:|")
	col := func(name string, f func(result) float64) {
		var xs []float64
		for _, r := range rs {
			xs = append(xs, f(r))
		}
		fmt.Fprintf(w, "| %s | %.0f ms | %.0f–%.0f ms |\n", name, median(xs), slices.Min(xs), slices.Max(xs))
	}
	col("page HTML received", func(r result) float64 { return r.Doc })
	col("/api/graph answer received", func(r result) float64 { return r.Graph })
	col("every node drawn, table filled", func(r result) float64 { return r.Rendered })
	col("the next frame", func(r result) float64 { return r.Painted })
}
