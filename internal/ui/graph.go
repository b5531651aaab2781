package ui

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strings"

	"github.com/leptonml/lepton/internal/state"
)

// Node is one resource instance in the graph answer. Short JSON names keep a
// 10,000-resource answer small.
type Node struct {
	Address string   `json:"a"`
	Kind    string   `json:"k"`
	Status  string   `json:"s"`
	Cost    *float64 `json:"c,omitempty"` // price per hour, where the kind has one
	Deps    []int    `json:"d,omitempty"` // indices of the nodes it depends on
	X       int      `json:"x"`
	Y       int      `json:"y"`
}

// Graph is the /api/graph answer: every resource with its place in a
// layered drawing (a column per dependency depth).
type Graph struct {
	Version string         `json:"version"`
	Serial  uint64         `json:"serial"`
	Nodes   []Node         `json:"nodes"`
	Width   int            `json:"width"`
	Height  int            `json:"height"`
	Kinds   map[string]int `json:"kinds"`
	Cost    float64        `json:"cost_per_hour"`
	Error   string         `json:"error,omitempty"`
}

// Layout sizes, in SVG user units.
const (
	nodeW, nodeH = 230, 34
	gapX, gapY   = 50, 10
)

// attrsSummary is what the graph reads of each resource's attributes.
type attrsSummary struct {
	Status       string   `json:"status"`
	PricePerHour *float64 `json:"price_per_hour"`
}

// BuildGraph lays out st's resources: depth 0 holds what depends on nothing,
// each other resource sits one column right of its deepest dependency; a
// column taller than maxRows wraps into several.
func BuildGraph(st *state.State) *Graph {
	res := append([]*state.Resource(nil), st.Resources...)
	sort.Slice(res, func(i, j int) bool { return res[i].Address < res[j].Address })
	// Dependencies are recorded per resource (dataset.x stands for all its
	// instances): index instances by resource and by instance key.
	byRes := map[string]*instances{}
	keyOf := make([]string, len(res))
	for i, r := range res {
		base, key := splitInstance(r.Address)
		in := byRes[base]
		if in == nil {
			in = &instances{byKey: map[string]int{}}
			byRes[base] = in
		}
		in.all = append(in.all, i)
		in.byKey[key] = i
		keyOf[i] = key
	}
	g := &Graph{Serial: st.Serial, Nodes: make([]Node, len(res)), Kinds: map[string]int{}}
	for i, r := range res {
		n := Node{Address: r.Address, Kind: r.Kind, Status: r.Status}
		var a attrsSummary
		json.Unmarshal(r.Attributes, &a)
		if a.Status != "" && (r.Status == "" || r.Status == state.StatusReady) {
			n.Status = a.Status
		}
		if n.Status == "" {
			n.Status = state.StatusReady
		}
		if a.PricePerHour != nil {
			n.Cost = a.PricePerHour
			g.Cost += *a.PricePerHour
		}
		for _, d := range r.Dependencies {
			if in := byRes[d]; in != nil {
				n.Deps = append(n.Deps, in.pick(keyOf[i], i)...)
			}
		}
		g.Nodes[i] = n
		g.Kinds[r.Kind]++
	}
	depth := depths(g.Nodes)
	layers := map[int][]int{}
	maxDepth := 0
	for i, d := range depth {
		layers[d] = append(layers[d], i)
		maxDepth = max(maxDepth, d)
	}
	// Columns wrap at maxRows so that a large graph drawn whole is about
	// twice as wide as it is tall, as the page's graph box is.
	maxRows := max(25, int(math.Sqrt(float64(len(res))*float64(nodeW+gapX)/float64(2*(nodeH+gapY)))))
	col := 0
	for d := 0; d <= maxDepth; d++ {
		ids := layers[d]
		for k, i := range ids {
			c, row := col+k/maxRows, k%maxRows
			g.Nodes[i].X = c * (nodeW + gapX)
			g.Nodes[i].Y = row * (nodeH + gapY)
			g.Height = max(g.Height, g.Nodes[i].Y+nodeH)
		}
		col += (len(ids) + maxRows - 1) / maxRows
	}
	g.Width = max(col*(nodeW+gapX)-gapX, 0)
	return g
}

// instances are one resource's instances, in address order and by key.
type instances struct {
	all   []int
	byKey map[string]int
}

// pick chooses the instances of a dependency to draw edges to: the one with
// the same key (x[3] on y[3], the usual count pattern), else all of them
// when few, else the first few, so that edges stay linear in the state size.
func (in *instances) pick(key string, self int) []int {
	if j, ok := in.byKey[key]; ok && key != "" && j != self {
		return []int{j}
	}
	var out []int
	for _, j := range in.all {
		if j == self {
			continue
		}
		if len(out) == 8 {
			break
		}
		out = append(out, j)
	}
	return out
}

// depths is each node's longest dependency chain (Kahn's algorithm over the
// dependency edges); nodes on a cycle, which a valid state never holds, get 0.
func depths(nodes []Node) []int {
	depth := make([]int, len(nodes))
	pending := make([]int, len(nodes))
	dependents := make([][]int, len(nodes))
	var queue []int
	for i, n := range nodes {
		pending[i] = len(n.Deps)
		for _, d := range n.Deps {
			dependents[d] = append(dependents[d], i)
		}
		if pending[i] == 0 {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, j := range dependents[i] {
			depth[j] = max(depth[j], depth[i]+1)
			if pending[j]--; pending[j] == 0 {
				queue = append(queue, j)
			}
		}
	}
	return depth
}

// splitInstance splits dataset.x[3] into dataset.x and [3].
func splitInstance(addr string) (base, key string) {
	if i := strings.IndexByte(addr, '['); i > 0 {
		return addr[:i], addr[i:]
	}
	return addr, ""
}

func (s *Server) apiGraph(w http.ResponseWriter, r *http.Request) {
	snap := s.snapshot()
	s.stateMu.Lock()
	b := snap.graph
	s.stateMu.Unlock()
	if b == nil {
		g := &Graph{Nodes: []Node{}, Kinds: map[string]int{}}
		if snap.err != nil {
			g.Error = snap.err.Error()
		} else {
			g = BuildGraph(snap.st)
		}
		g.Version = snap.key.String()
		var err error
		if b, err = json.Marshal(g); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.stateMu.Lock()
		snap.graph = b
		s.stateMu.Unlock()
	}
	writeRaw(w, b)
}

func writeRaw(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, b)
}
