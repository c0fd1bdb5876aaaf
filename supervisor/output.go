package supervisor

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"
)

// output takes a program's output line by line. It is called from one goroutine per
// stream.
type output interface {
	line(stream, text string)
}

// logOutput puts each line into a ring buffer (for /system/logs) and the daemon's log.
type logOutput struct {
	logs     *Logs
	name     string // function or service
	instance string // replica id, or a service's run
	log      *slog.Logger
}

func (o logOutput) line(stream, text string) {
	o.logs.append(Line{Time: time.Now(), Function: o.name, Replica: o.instance, Stream: stream, Text: text})
	o.log.Info("output", "stream", stream, "line", text)
}

// lineBuffer keeps the first max bytes of a program's output, for an error message: the
// output of a short check matters only when it fails.
type lineBuffer struct {
	max int

	mu sync.Mutex
	b  []byte
}

func (l *lineBuffer) line(_, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.b) > 0 {
		text = "\n" + text
	}
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, text[:min(room, len(text))]...)
	}
}

func (l *lineBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// pipes carry a command's stdout and stderr to the pumps.
type pipes struct {
	r, w [2]*os.File // stdout, stderr
}

func openPipes(cmd *exec.Cmd) (*pipes, error) {
	p := &pipes{}
	for i := range 2 {
		r, w, err := os.Pipe()
		if err != nil {
			p.closeReaders()
			p.closeWriters()
			return nil, err
		}
		p.r[i], p.w[i] = r, w
	}
	cmd.Stdout, cmd.Stderr = p.w[0], p.w[1]
	return p, nil
}

func (p *pipes) closeWriters() {
	for _, f := range p.w {
		if f != nil {
			f.Close()
		}
	}
}

func (p *pipes) closeReaders() {
	for _, f := range p.r {
		if f != nil {
			f.Close()
		}
	}
}

// pump hands both streams to out; the returned channel closes when both reached EOF.
func (p *pipes) pump(out output, log *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i, stream := range []string{"stdout", "stderr"} {
		wg.Go(func() { pump(p.r[i], stream, out, log) })
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// pump copies a stream to out line by line. Over-long lines are split rather than held
// in memory.
func pump(rd io.ReadCloser, stream string, out output, log *slog.Logger) {
	defer rd.Close()
	br := bufio.NewReaderSize(rd, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			out.line(stream, string(trimNewline(line)))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				log.Warn("read output", "stream", stream, "err", err)
			}
			return
		}
	}
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
