// Package ui is lepton's local, read-only web dashboard (`lepton ui`): the
// resource graph, the current plan and the last apply, training curves,
// dataset profiles, endpoint traffic and run logs, read from the state and
// the run directories. It serves on loopback behind a token, with every asset
// embedded, so nothing is fetched from outside the machine.
package ui

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/planner"
	"github.com/leptonml/lepton/providers"
)

//go:embed assets
var assets embed.FS

// CookieName holds the token once a browser has presented it in the URL.
const CookieName = "lepton_ui_token"

// PlanFunc computes what `lepton plan` would do now, without writing state.
type PlanFunc func(ctx context.Context) (*planner.Plan, error)

// Options configure a dashboard.
type Options struct {
	// Dir is the project directory and DataDir its .lepton directory.
	Dir, DataDir string
	// State is where the state is read (the project's backend, decrypting
	// when the state is encrypted). The dashboard never writes it.
	State state.Backend
	// Token guards every route; the printed URL carries it.
	Token string
	// Plan computes the current plan; nil shows none.
	Plan PlanFunc
	// ScrapeEvery is how often endpoints' /metrics are read (default 2s).
	ScrapeEvery time.Duration
	// Log receives request errors worth a look (default: discarded).
	Log io.Writer
	// Resource returns the implementation of a kind by a provider ("" for
	// the default), or nil; the dashboard asks it for log files, profiles
	// and metrics targets. Default: the local provider's kinds.
	Resource func(kind, provider string) providers.Resource
}

// Server is a running dashboard's handler and its background work.
type Server struct {
	opts     Options
	tokenSum [sha256.Size]byte
	mux      *http.ServeMux
	static   http.Handler

	stateMu sync.Mutex
	stateAt stateKey
	cached  *snapshot

	plans    *planCache
	scraper  *scraper
	profiles *profileCache
	models   *modelCache
}

// New returns a dashboard for opts.
func New(opts Options) (*Server, error) {
	if opts.Token == "" {
		return nil, errors.New("ui: a token is required")
	}
	if opts.State == nil {
		return nil, errors.New("ui: a state backend is required")
	}
	if opts.ScrapeEvery <= 0 {
		opts.ScrapeEvery = 2 * time.Second
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Resource == nil {
		opts.Resource = localResources()
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, tokenSum: sha256.Sum256([]byte(opts.Token)), mux: http.NewServeMux(),
		static: http.FileServerFS(sub), profiles: newProfileCache(), models: &modelCache{}}
	s.plans = &planCache{fn: opts.Plan}
	s.scraper = newScraper(opts.ScrapeEvery)
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", s.static))
	s.mux.HandleFunc("GET /api/graph", s.apiGraph)
	s.mux.HandleFunc("GET /api/resource", s.apiResource)
	s.mux.HandleFunc("GET /api/plan", s.apiPlan)
	s.mux.HandleFunc("GET /api/apply", s.apiApply)
	s.mux.HandleFunc("GET /api/training", s.apiTraining)
	s.mux.HandleFunc("GET /api/dataset", s.apiDataset)
	s.mux.HandleFunc("GET /api/endpoint", s.apiEndpoint)
	s.mux.HandleFunc("GET /api/events", s.apiEvents)
	s.mux.HandleFunc("GET /api/logs", s.apiLogs)
}

// Run serves on ln until ctx ends, scraping endpoints meanwhile.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.scraper.run(ctx, s.endpoints)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		defer c()
		srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		return err
	}
}

// ServeHTTP checks the Host header and the token, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Only loopback names: a page elsewhere cannot reach this server through
	// a DNS name rebound to 127.0.0.1.
	if !loopbackHost(r.Host) {
		http.Error(w, "lepton ui answers on 127.0.0.1 and localhost only", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if t := r.URL.Query().Get("token"); t != "" {
		if !s.tokenOK(t) {
			denied(w)
			return
		}
		// As Jupyter does: the URL's token becomes a cookie, and the
		// address bar loses it.
		http.SetCookie(w, &http.Cookie{Name: CookieName, Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		q := r.URL.Query()
		q.Del("token")
		u := *r.URL
		u.RawQuery = q.Encode()
		if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/") {
			http.Redirect(w, r, u.RequestURI(), http.StatusFound)
			return
		}
	} else if !s.authorized(r) {
		denied(w)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func denied(w http.ResponseWriter) {
	http.Error(w, "lepton ui: open the URL with ?token=... that `lepton ui` printed", http.StatusForbidden)
}

func (s *Server) authorized(r *http.Request) bool {
	if c, err := r.Cookie(CookieName); err == nil && s.tokenOK(c.Value) {
		return true
	}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") && s.tokenOK(strings.TrimPrefix(h, "Bearer ")) {
		return true
	}
	return false
}

// tokenOK compares digests, so the time taken says nothing of the token.
func (s *Server) tokenOK(t string) bool {
	sum := sha256.Sum256([]byte(t))
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// stateKey identifies a version of the state: every write of a state
// raises its serial.
type stateKey struct {
	lineage string
	serial  uint64
	exists  bool
}

func (k stateKey) String() string {
	if !k.exists {
		return "none"
	}
	return fmt.Sprintf("%s-%d", k.lineage, k.serial)
}

// stateTTL is how long a read of the state is used before the backend is
// read again (the event stream asks every second).
const stateTTL = time.Second

// snapshot is a parsed state and what is derived from it once per version.
type snapshot struct {
	key    stateKey
	readAt time.Time
	st     *state.State
	byAdr  map[string]*state.Resource
	graph  []byte // encoded /api/graph answer
	err    error
}

// snapshot returns the state as it is now (read at most once a second), and
// derives its index and graph only when its version changed.
func (s *Server) snapshot() *snapshot {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.cached != nil && time.Since(s.cached.readAt) < stateTTL {
		return s.cached
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := s.opts.State.Read(ctx)
	now := time.Now()
	key := stateKey{}
	if st != nil {
		key = stateKey{lineage: st.Lineage, serial: st.Serial, exists: true}
	}
	if err == nil && s.cached != nil && s.cached.err == nil && s.cached.key == key {
		s.cached.readAt = now
		return s.cached
	}
	snap := &snapshot{key: key, readAt: now, byAdr: map[string]*state.Resource{}}
	if err != nil {
		snap.err = err
	} else {
		if st == nil {
			st = &state.State{}
		}
		snap.st = st
		for _, r := range st.Resources {
			snap.byAdr[r.Address] = r
		}
	}
	s.cached = snap
	return snap
}

// version is what the event stream sends so pages know when to reload.
func (s *Server) version() string { return s.snapshot().key.String() }
