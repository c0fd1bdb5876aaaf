package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"faasd/api"
	"faasd/supervisor"
)

func isFollow(r *http.Request) bool {
	return r.URL.Path == "/system/logs" && r.URL.Query().Get("follow") == "true"
}

// logs streams a function's output from its ring buffer: the history first (filtered by
// since, instance and tail), then, with follow=true, new lines as they come until the
// client leaves or the daemon stops.
func (p *Proxy) logs(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	q := r.URL.Query()
	name := q.Get("name")
	if !validNamespace(w, q.Get("namespace")) {
		return
	}
	if name == "" {
		http.Error(w, "name is required", http.StatusBadRequest)
		return
	}
	tail := -1
	if s := q.Get("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			http.Error(w, "tail: not an integer", http.StatusUnprocessableEntity)
			return
		}
		tail = n
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			http.Error(w, "since: not an RFC 3339 time", http.StatusUnprocessableEntity)
			return
		}
		since = t
	}
	follow := q.Get("follow") == "true"
	instance := q.Get("instance")
	buf, ok := p.control.Logs(name)
	if !ok {
		if _, known := p.catalog.Get(name); !known {
			http.Error(w, "no such function: "+name, http.StatusNotFound)
			return
		}
		buf = supervisor.NewLogs(1) // known but never started: no lines yet
	}
	keep := func(l supervisor.Line) bool {
		return (instance == "" || l.Replica == instance) && !l.Time.Before(since)
	}
	lines, next, changed := buf.Read(0)
	history := make([]supervisor.Line, 0, len(lines))
	for _, l := range lines {
		if keep(l) {
			history = append(history, l)
		}
	}
	if tail > 0 && len(history) > tail {
		history = history[len(history)-tail:]
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher := http.NewResponseController(w)
	write := func(ls []supervisor.Line) bool {
		for _, l := range ls {
			if !keep(l) {
				continue
			}
			msg := api.LogMessage{Name: name, Namespace: api.Namespace, Instance: l.Replica, Timestamp: l.Time.UTC(), Text: l.Text}
			if enc.Encode(msg) != nil {
				return false
			}
		}
		return flusher.Flush() == nil
	}
	if !write(history) || !follow {
		return
	}
	for {
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-p.closing:
			return
		}
		lines, next, changed = buf.Read(next)
		if !write(lines) {
			return
		}
	}
}
