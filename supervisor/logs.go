package supervisor

import (
	"sync"
	"time"
)

// Line is one line a replica wrote to stdout or stderr.
type Line struct {
	Seq      uint64
	Time     time.Time
	Function string
	Replica  string
	Stream   string // "stdout" or "stderr"
	Text     string
}

// Logs is a function's ring buffer of output lines. Followers read by sequence number and
// wait on a channel that closes when lines arrive.
type Logs struct {
	mu      sync.Mutex
	lines   []Line // ring of cap lines
	next    uint64 // sequence number of the next line
	changed chan struct{}
}

// NewLogs returns a buffer that keeps the last size lines.
func NewLogs(size int) *Logs {
	return &Logs{lines: make([]Line, 0, size), changed: make(chan struct{})}
}

func (l *Logs) append(ln Line) {
	l.mu.Lock()
	ln.Seq = l.next
	l.next++
	if len(l.lines) < cap(l.lines) {
		l.lines = append(l.lines, ln)
	} else {
		l.lines[ln.Seq%uint64(cap(l.lines))] = ln
	}
	ch := l.changed
	l.changed = make(chan struct{})
	l.mu.Unlock()
	close(ch)
}

// Read returns the kept lines with sequence numbers from seq on, the sequence number to
// read from next time, and a channel that closes when more lines arrive.
func (l *Logs) Read(seq uint64) ([]Line, uint64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	oldest := l.next - uint64(len(l.lines))
	seq = max(seq, oldest)
	out := make([]Line, 0, l.next-seq)
	for s := seq; s < l.next; s++ {
		out = append(out, l.lines[s%uint64(cap(l.lines))])
	}
	return out, l.next, l.changed
}
