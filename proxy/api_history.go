package proxy

import (
	"math"
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"faasd/api"
	"faasd/scaler"
)

// History is what the API needs of the autoscaler's record: the scaler implements it.
type History interface {
	// History returns what is newer than the tick since, and false when the function
	// has not been seen (yet).
	History(name string, since uint64) (scaler.History, bool)
}

// historyOf answers GET /system/history: the autoscaler's samples and changes of one
// function (name=), or of every function. since= (a seq from an earlier answer) keeps the
// answer to what is new, so a page that polls moves a few hundred bytes, not ten
// minutes of samples. It reads what the scaler keeps anyway: when no one asks, it costs
// nothing.
func (p *Proxy) historyOf(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	q := r.URL.Query()
	if !validNamespace(w, q.Get("namespace")) {
		return
	}
	var since uint64
	if s := q.Get("since"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			http.Error(w, "since: want the seq of an earlier answer, a non-negative integer", http.StatusBadRequest)
			return
		}
		since = n
	}
	if name := q.Get("name"); name != "" {
		if _, ok := p.catalog.Get(name); !ok {
			http.Error(w, "no such function: "+name, http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, p.historyOfOne(name, since))
		return
	}
	fns := p.catalog.List()
	out := make([]api.History, 0, len(fns))
	for _, fn := range fns {
		out = append(out, p.historyOfOne(fn.Spec.Name, since))
	}
	writeJSON(w, http.StatusOK, out)
}

// historyOfOne converts the scaler's record to the wire's. A function the scaler has not
// seen yet (just deployed) has an empty history.
func (p *Proxy) historyOfOne(name string, since uint64) api.History {
	h, _ := p.history.History(name, since)
	if since > h.Seq {
		// A daemon started since counts its ticks from 0 again: all it has is new, and
		// the client tells from the seq going back that what it holds is of another run.
		h, _ = p.history.History(name, 0)
	}
	out := api.History{
		Name:     name,
		Interval: h.Interval.Seconds(),
		Seq:      h.Seq,
		Samples:  make([]api.Sample, 0, len(h.Samples)),
		Changes:  make([]api.ScaleChange, 0, len(h.Changes)),
	}
	for _, s := range h.Samples {
		out.Samples = append(out.Samples, api.Sample{
			Seq: s.Seq, Time: s.At.UnixMilli(), RPS: round(s.RPS, 1e3), InFlight: s.InFlight,
			Desired: s.Desired, Ready: s.Ready, P50: round(s.P50.Seconds(), 1e6),
			P99: round(s.P99.Seconds(), 1e6), ColdStarts: s.ColdStarts,
		})
	}
	for _, c := range h.Changes {
		out.Changes = append(out.Changes, api.ScaleChange{
			Seq: c.Seq, Time: c.At.UnixMilli(), From: c.From, To: c.To, Reason: string(c.Reason),
		})
	}
	return out
}

// round keeps the digits a chart can show: ten minutes of samples stay a few tens of
// kilobytes.
func round(v, scale float64) float64 { return math.Round(v*scale) / scale }
