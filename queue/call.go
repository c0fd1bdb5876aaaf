package queue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Call is one asynchronous invocation as it is stored: everything needed to replay the
// request later, on this host or another.
type Call struct {
	ID          string      `json:"id"`
	Function    string      `json:"function"`
	Method      string      `json:"method"`
	Path        string      `json:"path"`  // upstream path after the function's name, escaped
	Query       string      `json:"query"` // raw query
	Header      http.Header `json:"header"`
	Host        string      `json:"host"`
	RemoteAddr  string      `json:"remoteAddr"`
	CallbackURL string      `json:"callbackUrl,omitempty"`
	EnqueuedAt  time.Time   `json:"enqueuedAt"`
	Body        []byte      `json:"-"`
}

// Result is what a call's callback is sent: the function's answer, stored until the
// callback took it.
type Result struct {
	CallID      string        `json:"callId"`
	Function    string        `json:"function"`
	CallbackURL string        `json:"callbackUrl"`
	Status      int           `json:"status"`
	Header      http.Header   `json:"header"`
	Duration    time.Duration `json:"duration"`
	Attempts    int           `json:"attempts"`
	EnqueuedAt  time.Time     `json:"enqueuedAt"`
	Body        []byte        `json:"-"`
}

// encode writes the JSON of meta, a newline, then body as it is: a body is stored without
// the third more that base64 would cost. JSON never holds a raw newline, so the first one
// ends it.
func encode(meta any, body []byte) ([]byte, error) {
	head, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(head)+1+len(body))
	out = append(append(append(out, head...), '\n'), body...)
	return out, nil
}

// decode is the inverse of encode; it returns the body.
func decode(data []byte, meta any) ([]byte, error) {
	head, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return nil, errors.New("stored message has no header line")
	}
	if err := json.Unmarshal(head, meta); err != nil {
		return nil, fmt.Errorf("stored message: %w", err)
	}
	return body, nil
}
