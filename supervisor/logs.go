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

// defaultLogBytes bounds the text kept per function or service. A line may be as long as
// 64 KiB (output.go), so a bound on lines alone would let one buffer of 1000 lines hold
// 64 MiB.
const defaultLogBytes = 1 << 20

// keepRemovedLogs is how long the output of a removed function or service stays readable,
// for whoever asks why it went (`faasd logs` right after a remove); then it is freed.
const keepRemovedLogs = 5 * time.Minute

// Logs is a function's buffer of its latest output lines, bounded by a number of lines and
// by the bytes of their text: the oldest lines go first. Followers read by sequence number
// and wait on a channel that closes when lines arrive.
type Logs struct {
	maxLines, maxBytes int

	mu      sync.Mutex
	lines   []Line // the kept ones are lines[head:], oldest first
	head    int
	bytes   int    // of the kept lines' text
	next    uint64 // sequence number of the next line
	changed chan struct{}
}

// NewLogs returns a buffer that keeps the last size lines, at most 1 MiB of them.
func NewLogs(size int) *Logs { return newLogs(size, defaultLogBytes) }

func newLogs(lines, bytes int) *Logs {
	return &Logs{maxLines: max(lines, 1), maxBytes: max(bytes, 1), changed: make(chan struct{})}
}

func (l *Logs) append(ln Line) {
	if len(ln.Text) > l.maxBytes {
		ln.Text = ln.Text[:l.maxBytes]
	}
	l.mu.Lock()
	for l.kept() > 0 && (l.kept() >= l.maxLines || l.bytes+len(ln.Text) > l.maxBytes) {
		l.bytes -= len(l.lines[l.head].Text)
		l.lines[l.head] = Line{}
		l.head++
	}
	// Move the kept lines to the front once half the slice is gone: amortized, each line
	// is copied at most once.
	if l.head > 0 && l.head >= len(l.lines)/2 {
		n := copy(l.lines, l.lines[l.head:])
		clear(l.lines[n:])
		l.lines, l.head = l.lines[:n], 0
	}
	ln.Seq = l.next
	l.next++
	l.lines = append(l.lines, ln)
	l.bytes += len(ln.Text)
	ch := l.changed
	l.changed = make(chan struct{})
	l.mu.Unlock()
	close(ch)
}

func (l *Logs) kept() int { return len(l.lines) - l.head }

// Read returns the kept lines with sequence numbers from seq on, the sequence number to
// read from next time, and a channel that closes when more lines arrive.
func (l *Logs) Read(seq uint64) ([]Line, uint64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	oldest := l.next - uint64(l.kept())
	seq = min(max(seq, oldest), l.next)
	out := make([]Line, l.next-seq)
	copy(out, l.lines[l.head+int(seq-oldest):])
	return out, l.next, l.changed
}
