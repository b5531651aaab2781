// Command serve is the load generator for lepton's model server. Over
// loopback only, with generator and servers sharing the machine, it measures
// requests/s and p50/p99 latency of the 784-128-10 MLP server against a bare
// net/http handler returning a fixed small JSON body, in the same run, plus
// rows/s with batched requests. -soak runs a long load with model swaps and
// checks for errors and memory growth; -replicas compares one process with N
// workers against N processes behind a reverse proxy.
//
//	go run ./bench/serve                      # benchmark, 3 rounds of 5 s
//	go run ./bench/serve -soak 60s            # soak
//	go run ./bench/serve -replicas 2          # replica layouts
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/leptonml/lepton/runtime/serve"
	"github.com/leptonml/lepton/runtime/serve/testmodel"
)

const token = "bench-token"

type options struct {
	conns       int
	duration    time.Duration
	rounds      int
	batchRows   int
	workers     int
	maxBatch    int
	window      time.Duration
	maxRequests int64
	soak        time.Duration
	swapEvery   time.Duration
	replicas    int
	only        string
	bare        bool
	serverProf  string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "internal-serve" {
		if err := internalServe(context.Background(), os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "internal-serve:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	child := flag.Bool("child", false, "internal: run one model server and print its address")
	flag.BoolVar(&o.bare, "bare", false, "internal, with -child: serve the bare handler instead")
	flag.IntVar(&o.conns, "conns", 50, "concurrent connections")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each measured run")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every target once and medians are reported")
	flag.IntVar(&o.batchRows, "batch-rows", 32, "rows per request in the batched run")
	flag.IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "server batch workers")
	flag.IntVar(&o.maxBatch, "max-batch", 256, "server max batch size")
	flag.DurationVar(&o.window, "window", 0, "server batch window")
	flag.Int64Var(&o.maxRequests, "max-requests", 2_000_000, "upper bound on requests per run")
	flag.DurationVar(&o.soak, "soak", 0, "run a soak of this length instead of the benchmark")
	flag.DurationVar(&o.swapEvery, "swap-every", 5*time.Second, "soak: swap the model this often")
	flag.IntVar(&o.replicas, "replicas", 0, "compare 1 process x N workers with N processes x 1 worker behind a proxy")
	flag.StringVar(&o.only, "only", "", "benchmark only the model targets whose name contains this (the bare target always runs)")
	flag.StringVar(&o.serverProf, "server-cpuprofile", "", "write a CPU profile of the model server process to this file")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if o.duration > 2*time.Minute || o.soak > 30*time.Minute || o.conns > 1000 {
		fmt.Fprintln(os.Stderr, "bounds: -duration <= 2m, -soak <= 30m, -conns <= 1000")
		os.Exit(2)
	}
	ctx := context.Background()
	var err error
	switch {
	case *child:
		err = runChild(ctx, o)
	case o.soak > 0:
		var r soakResult
		r, err = soak(ctx, o, os.Stdout)
		fmt.Println(r)
	case o.replicas > 0:
		err = compareReplicas(ctx, o)
	default:
		err = benchmark(ctx, o)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench/serve:", err)
		os.Exit(1)
	}
}

// mnistRow makes a plausible MNIST input: mostly zero pixels, the rest k/255.
func mnistRow(r *rand.Rand) []float32 {
	x := make([]float32, 784)
	for i := range x {
		if r.IntN(5) == 0 {
			x[i] = float32(r.IntN(255)+1) / 255
		}
	}
	return x
}

func v1Body(rows int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	inst := make([][]float32, rows)
	for i := range inst {
		inst[i] = mnistRow(r)
	}
	b, _ := json.Marshal(map[string]any{"instances": inst})
	return b
}

func v2Body(rows int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var data []float32
	for range rows {
		data = append(data, mnistRow(r)...)
	}
	b, _ := json.Marshal(map[string]any{"id": "bench", "inputs": []any{map[string]any{
		"name": "input", "shape": []int{rows, 784}, "datatype": "FP32", "data": data}}})
	return b
}

// listen serves h on a fresh loopback port until ctx ends.
func listen(ctx context.Context, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	go func() { <-ctx.Done(); hs.Close() }()
	return "http://" + ln.Addr().String(), nil
}

// bareHandler is the ceiling: read the request, answer a fixed small JSON.
func bareHandler() http.Handler {
	body := []byte(`{"predictions":["7"]}` + "\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
}

func newModelServer(o options, seed uint64) (*serve.Server, error) {
	return serve.New(serve.Config{Name: "digits", Token: token, Workers: o.workers, MaxBatchSize: o.maxBatch, BatchWindow: o.window},
		serve.Loaded{Version: fmt.Sprintf("seed-%d", seed), Model: testmodel.MNIST(seed)})
}

// batchRows reads the model server's rows-per-Predict histogram.
func batchRows(ctx context.Context, url string) (sum, count float64) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, _ := strings.Cut(sc.Text(), " ")
		v, _ := strconv.ParseFloat(val, 64)
		switch {
		case strings.HasPrefix(name, "lepton_batch_rows_sum"):
			sum = v
		case strings.HasPrefix(name, "lepton_batch_rows_count"):
			count = v
		}
	}
	return sum, count
}

type target struct {
	name   string
	url    string
	token  string
	body   []byte
	rows   int
	server bool // a model server, with batch metrics
}

func benchmark(ctx context.Context, o options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Both servers run as processes of their own, as an endpoint does, so
	// the generator's garbage collector and scheduler do not distort them.
	bare, stopBare, err := startChildren(1, o.workers, o, "-bare")
	if err != nil {
		return err
	}
	defer stopBare()
	var prof []string
	if o.serverProf != "" {
		prof = []string{"-cpuprofile", o.serverProf}
	}
	model, stopModel, err := startChildren(1, o.workers, o, prof...)
	if err != nil {
		return err
	}
	defer stopModel()
	bareURL, modelURL := "http://"+bare[0], "http://"+model[0]
	one, oneV2, many := v1Body(1), v2Body(1), v1Body(o.batchRows)
	targets := []target{
		{name: "bare net/http, fixed JSON", url: bareURL, body: one, rows: 1},
		{name: "model v1 :predict, 1 row", url: modelURL + "/v1/models/digits:predict", token: token, body: one, rows: 1, server: true},
		{name: "model v2 infer, 1 row", url: modelURL + "/v2/models/digits/infer", token: token, body: oneV2, rows: 1, server: true},
		{name: fmt.Sprintf("model v1 :predict, %d rows", o.batchRows), url: modelURL + "/v1/models/digits:predict", token: token, body: many, rows: o.batchRows, server: true},
	}
	if o.only != "" {
		targets = slices.DeleteFunc(targets, func(t target) bool { return t.server && !strings.Contains(t.name, o.only) })
	}
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s; conns %d, %d rounds x %s per target; server workers %d, max batch %d, window %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), o.conns, o.rounds, o.duration, o.workers, o.maxBatch, o.window)
	fmt.Printf("request body: %d bytes (1 row v1), %d bytes (1 row v2), %d bytes (%d rows)\n", len(one), len(oneV2), len(many), o.batchRows)
	client := newClient(o.conns)
	for _, t := range targets { // warm up connections, pools and the CPU governor
		runLoad(ctx, client, loadSpec{url: t.url, token: t.token, body: t.body, conns: o.conns, duration: time.Second, maxRequests: o.maxRequests})
	}
	results := make([][]loadResult, len(targets))
	meanBatch := make([][]float64, len(targets))
	for round := range o.rounds {
		for i, t := range targets {
			var s0, c0 float64
			if t.server {
				s0, c0 = batchRows(ctx, modelURL)
			}
			r := runLoad(ctx, client, loadSpec{url: t.url, token: t.token, body: t.body, conns: o.conns, duration: o.duration, maxRequests: o.maxRequests})
			if r.errors > 0 {
				return fmt.Errorf("%s: %d errors, first: %s", t.name, r.errors, r.firstErr)
			}
			mb := 0.0
			if t.server {
				s1, c1 := batchRows(ctx, modelURL)
				mb = (s1 - s0) / max(c1-c0, 1)
			}
			results[i] = append(results[i], r)
			meanBatch[i] = append(meanBatch[i], mb)
			fmt.Printf("round %d  %-28s %s  rows/Predict %.1f\n", round+1, t.name, r, mb)
		}
	}
	fmt.Println()
	fmt.Println("| target | req/s | rows/s | p50 ms | p99 ms | rows per Predict call | req/s vs bare (median of per-round ratios) |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	for i, t := range targets {
		// Each round measures every target back to back, so a per-round
		// ratio cancels most of the machine's slow drifts in load.
		ratios := make([]float64, len(results[i]))
		for r := range ratios {
			ratios[r] = results[i][r].rps() / results[0][r].rps()
		}
		rps := median(results[i], func(r loadResult) float64 { return r.rps() })
		p50 := median(results[i], func(r loadResult) float64 { return ms(r.p50) })
		p99 := median(results[i], func(r loadResult) float64 { return ms(r.p99) })
		mb := median(meanBatch[i], func(f float64) float64 { return f })
		mbs := "-"
		if t.server {
			mbs = fmt.Sprintf("%.1f", mb)
		}
		fmt.Printf("| %s | %.0f | %.0f | %.2f | %.2f | %s | %.2f |\n", t.name, rps, rps*float64(t.rows), p50, p99, mbs, median(ratios, func(f float64) float64 { return f }))
	}
	return nil
}

func median[T any](xs []T, f func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	return v[len(v)/2]
}

// runChild serves one model on a loopback port, prints the address and
// exits when stdin closes (that is, when the parent bench exits).
func runChild(ctx context.Context, o options) error {
	ctx, cancel := context.WithCancel(ctx)
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	if o.bare {
		hs := &http.Server{Handler: bareHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { <-ctx.Done(); hs.Close() }()
		if err := hs.Serve(ln); err != http.ErrServerClosed {
			return err
		}
		return nil
	}
	s, err := newModelServer(o, 1)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// startChildren starts n child server processes with the given workers each.
func startChildren(n, workers int, o options, extra ...string) ([]string, func(), error) {
	var addrs []string
	var stops []func()
	stopAll := func() {
		for _, s := range stops {
			s()
		}
	}
	for range n {
		cmd := exec.Command(os.Args[0], "-child", "-workers", strconv.Itoa(workers), "-max-batch", strconv.Itoa(o.maxBatch), "-window", o.window.String())
		cmd.Args = append(cmd.Args, extra...)
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			stopAll()
			return nil, nil, err
		}
		stops = append(stops, func() { stdin.Close(); cmd.Wait() })
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			stopAll()
			return nil, nil, fmt.Errorf("child server: %w", err)
		}
		addrs = append(addrs, strings.TrimSpace(line))
	}
	return addrs, stopAll, nil
}
