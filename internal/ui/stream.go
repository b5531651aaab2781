package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// sse prepares a server-sent event stream.
func sse(w http.ResponseWriter) (func(event string, v any) error, bool) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return nil, false
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	return func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		fl.Flush()
		return nil
	}, true
}

// tick is the event stream's message: pages reload what changed.
type tick struct {
	State   string `json:"state"`   // the state file's version
	Scrapes uint64 `json:"scrapes"` // endpoint scrape rounds so far
	Time    int64  `json:"time"`
}

// apiEvents streams a tick every second: pages fetch their data again when
// the state changed, or on every tick for live views (curves, traffic).
func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) {
	send, ok := sse(w)
	if !ok {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s.scraper.mu.Lock()
		n := s.scraper.rounds
		s.scraper.mu.Unlock()
		if err := send("tick", tick{State: s.version(), Scrapes: n, Time: time.Now().UnixMilli()}); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

// logTail is how much of an existing log a stream starts with.
const logTail = 256 << 10

// apiLogs streams a run's log: its last part, then what is appended, as
// `lepton logs -f` prints it.
func (s *Server) apiLogs(w http.ResponseWriter, r *http.Request) {
	res, _ := s.find(w, r)
	if res == nil {
		return
	}
	lf, ok := s.resource(res).(logFiler)
	if !ok {
		http.Error(w, res.Kind+" resources have no logs: logs exist for training and endpoint resources", http.StatusNotFound)
		return
	}
	path := lf.LogFile(s.view(res))
	send, ok := sse(w)
	if !ok {
		return
	}
	var off int64 = -1
	buf := make([]byte, 64<<10)
	for {
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			if off != -2 {
				if send("status", map[string]string{"message": "no log yet: " + res.Address + " has not run here"}) != nil {
					return
				}
				off = -2
			}
		default:
			size := fi.Size()
			if off < 0 || size < off { // first read, or the log began again
				off = max(size-logTail, 0)
				if send("reset", map[string]int64{"from": off}) != nil {
					return
				}
			}
			if size > off {
				f, err := os.Open(path)
				if err == nil {
					for off < size {
						n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
						if n > 0 {
							if send("line", map[string]string{"text": string(buf[:n])}) != nil {
								f.Close()
								return
							}
							off += int64(n)
						}
						if err != nil && err != io.EOF || n == 0 {
							break
						}
					}
					f.Close()
				}
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}
