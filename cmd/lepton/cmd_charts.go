package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/leptonml/lepton/internal/chart"
	"github.com/leptonml/lepton/internal/fsutil"
	"github.com/leptonml/lepton/planner"
	"github.com/leptonml/lepton/providers"
)

// chartFlags are show's -png and -confusion.
type chartFlags struct{ png, confusion string }

func (c *chartFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.png, "png", "", "With a training ADDR: draw its loss and accuracy (or mean return) per epoch to this PNG file.")
	fs.StringVar(&c.confusion, "confusion", "", "With a training ADDR: draw its confusion matrix on the test split to this PNG file.")
}

func (c chartFlags) set() bool { return c.png != "" || c.confusion != "" }

// showCharts writes a training's charts as PNG files.
func showCharts(m *meta, addr string, c chartFlags) int {
	_, st, ok := m.readState()
	if !ok {
		return 1
	}
	r := st.Find(addr)
	if st == nil || r == nil {
		return m.errorf("no resource %s in state", addr)
	}
	mr, ok := m.resource(r.Kind, r.Provider).(runMetricsReader)
	if !ok {
		return m.errorf("%s is a %s: -png and -confusion draw a training's charts", addr, r.Kind)
	}
	rm, found, err := mr.RunMetrics(m.view(r))
	if err != nil {
		return m.errorf("%v", err)
	}
	if !found {
		return m.errorf("%s: %v", addr, chart.ErrNoHistory)
	}
	write := func(file, what string, draw func(w io.Writer) error) bool {
		var b bytes.Buffer
		if err := draw(&b); err != nil {
			m.errorf("%s: %v", addr, err)
			return false
		}
		if err := fsutil.WriteFile(m.path(file), b.Bytes(), 0o644, fsutil.Options{MkdirAll: true}); err != nil {
			m.errorf("writing %s: %v", file, err)
			return false
		}
		fmt.Fprintf(m.stdout, "Wrote the %s of %s to %s\n", what, addr, file)
		return true
	}
	if c.png != "" && !write(c.png, "curves", func(w io.Writer) error { return chart.Curves(w, addr, rm) }) {
		return 1
	}
	if c.confusion != "" && !write(c.confusion, "confusion matrix", func(w io.Writer) error { return chart.Confusion(w, addr, rm.Confusion, rm.Labels) }) {
		return 1
	}
	return 0
}

// markdownCharts writes the curves (and confusion matrix) of each training
// in the plan that has run here into dir, and prints a Markdown section that
// embeds them from urlPrefix (dir itself when empty): CI uploads dir as
// artifacts and the pull-request comment shows the images.
func markdownCharts(m *meta, plan *planner.Plan, dir, urlPrefix string) error {
	if urlPrefix == "" {
		urlPrefix = dir
	}
	urlPrefix = strings.TrimRight(urlPrefix, "/")
	var out bytes.Buffer
	for _, c := range plan.Changes {
		mr, ok := m.resource(c.Addr.Resource.Kind, "").(runMetricsReader)
		if !ok {
			continue
		}
		addr := c.Address()
		rm, found, err := mr.RunMetrics(providers.InstanceView{Address: addr, Env: m.providerEnv()})
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		if out.Len() == 0 {
			if err := os.MkdirAll(m.path(dir), 0o755); err != nil {
				return fmt.Errorf("-charts-dir: %w", err)
			}
		}
		base := chartFileName(addr)
		draws := []struct {
			file, alt string
			draw      func(io.Writer) error
		}{{base + ".png", "loss and accuracy per epoch", func(w io.Writer) error { return chart.Curves(w, addr, rm) }}}
		if len(rm.Confusion) > 0 {
			draws = append(draws, struct {
				file, alt string
				draw      func(io.Writer) error
			}{base + ".confusion.png", "confusion matrix on the test split", func(w io.Writer) error { return chart.Confusion(w, addr, rm.Confusion, rm.Labels) }})
		}
		fmt.Fprintf(&out, "\n**`%s`** (as last trained here)\n\n", addr)
		for _, d := range draws {
			var b bytes.Buffer
			if err := d.draw(&b); err != nil {
				return fmt.Errorf("%s: %w", addr, err)
			}
			if err := fsutil.WriteFile(filepath.Join(m.path(dir), d.file), b.Bytes(), 0o644, fsutil.Options{MkdirAll: true}); err != nil {
				return err
			}
			fmt.Fprintf(&out, "![%s: %s](%s/%s)\n", addr, d.alt, urlPrefix, d.file)
		}
	}
	if out.Len() > 0 {
		fmt.Fprintf(m.stdout, "\n### Training charts\n%s", out.String())
	}
	return nil
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// chartFileName turns training.x["a b"] into training.x_a_b_.
func chartFileName(addr string) string {
	return unsafeFileChars.ReplaceAllString(addr, "_")
}
