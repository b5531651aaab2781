package ui

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/leptonml/lepton/planner"
)

// PlanView is the /api/plan answer.
type PlanView struct {
	// Status is "none" (no planner), "computing", "ready" or "error".
	Status     string       `json:"status"`
	Computing  bool         `json:"computing"`
	ComputedAt *time.Time   `json:"computed_at,omitempty"`
	Seconds    float64      `json:"seconds,omitempty"`
	Add        int          `json:"add"`
	Change     int          `json:"change"`
	Destroy    int          `json:"destroy"`
	Changes    []PlanChange `json:"changes"`
	More       int          `json:"more,omitempty"` // changes left out of Changes
	Text       string       `json:"text,omitempty"`
	Error      string       `json:"error,omitempty"`
}

// PlanChange is one resource the plan changes.
type PlanChange struct {
	Address string  `json:"address"`
	Action  string  `json:"action"`
	Symbol  string  `json:"symbol"`
	Reason  string  `json:"reason,omitempty"`
	Cost    float64 `json:"cost_per_hour,omitempty"`
}

// Bounds on what one plan answer carries (a plan of 10,000 creations
// renders to megabytes of text).
const (
	maxPlanChanges = 2000
	maxPlanText    = 256 << 10
	planMaxAge     = 30 * time.Second
)

// planCache computes the plan in the background, one at a time, and keeps
// the last result: a page asks again and shows the result when it is there.
type planCache struct {
	fn      PlanFunc
	mu      sync.Mutex
	running bool
	last    *PlanView
	lastAt  time.Time
}

func (c *planCache) view(force bool) PlanView {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fn == nil {
		return PlanView{Status: "none", Changes: []PlanChange{}, Error: "no configuration to plan"}
	}
	if !c.running && (force || c.last == nil || time.Since(c.lastAt) > planMaxAge) {
		c.running = true
		go c.compute()
	}
	if c.last == nil {
		return PlanView{Status: "computing", Computing: true, Changes: []PlanChange{}}
	}
	v := *c.last
	v.Computing = c.running
	return v
}

func (c *planCache) compute() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	p, err := c.fn(ctx)
	v := planView(p, err)
	now := time.Now()
	v.ComputedAt, v.Seconds = &now, now.Sub(start).Seconds()
	c.mu.Lock()
	c.last, c.lastAt, c.running = v, now, false
	c.mu.Unlock()
}

func planView(p *planner.Plan, err error) *PlanView {
	if err != nil {
		return &PlanView{Status: "error", Error: err.Error(), Changes: []PlanChange{}}
	}
	v := &PlanView{Status: "ready", Changes: []PlanChange{}}
	v.Add, v.Change, v.Destroy = p.Counts()
	for _, c := range p.Changes {
		if c.Action == planner.NoOp {
			continue
		}
		if len(v.Changes) == maxPlanChanges {
			v.More++
			continue
		}
		reason := c.Reason
		if reason == "" {
			reason = c.ActionReason
		}
		v.Changes = append(v.Changes, PlanChange{Address: c.Address(), Action: c.Action.String(), Symbol: c.Action.Symbol(), Reason: reason, Cost: c.PricePerHour})
	}
	var b bytes.Buffer
	planner.RenderHuman(&b, p, planner.Colors{})
	if b.Len() > maxPlanText {
		cut := bytes.LastIndexByte(b.Bytes()[:maxPlanText], '\n')
		b.Truncate(cut + 1)
		fmt.Fprintf(&b, "\n... the rest of the plan is cut here: run lepton plan to see it whole.\n")
	}
	v.Text = b.String()
	return v
}

func (s *Server) apiPlan(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.plans.view(r.URL.Query().Get("refresh") == "1"))
}
