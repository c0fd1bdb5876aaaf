package queue

import (
	"bytes"
	"net/http"
)

// recorder is the in-process ResponseWriter a worker invokes a function with. It keeps
// at most limit bytes of the body: what is kept is sent to the callback, and a result
// must fit in the queue as a call does.
type recorder struct {
	header    http.Header
	status    int
	body      bytes.Buffer
	limit     int
	truncated bool
}

func newRecorder(limit int64) *recorder {
	return &recorder{header: http.Header{}, limit: int(limit)}
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	// Informational answers (100 Continue, 103 Early Hints) precede the real one.
	if r.status == 0 && code >= 200 {
		r.status = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if room := r.limit - r.body.Len(); len(p) > room {
		r.body.Write(p[:max(room, 0)])
		r.truncated = true
	} else {
		r.body.Write(p)
	}
	// Claim everything: the function must not see a failed write for a body nobody reads.
	return len(p), nil
}

// Flush lets streamed answers pass through the reverse proxy; there is nothing to flush.
func (r *recorder) Flush() {}

// code is the answer's status, or 502 when nothing at all was written.
func (r *recorder) code() int {
	if r.status == 0 {
		return http.StatusBadGateway
	}
	return r.status
}
