package testkit

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
)

// Program is a T for a benchmark program: Fatal ends the body, after which, as at its
// normal end and on SIGINT or SIGTERM, the cleanups run in reverse order, so that no
// daemon or replica outlives the program.
type Program struct {
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	once     sync.Once
}

// RunProgram runs body under a Program and exits: 0 if it did not fail, 1 if it did,
// 130 when interrupted.
func RunProgram(body func(p *Program)) {
	p := &Program{}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(p)
	}()
	code := 0
	select {
	case <-done:
		if p.Failed() {
			code = 1
		}
	case sig := <-sigs:
		fmt.Fprintf(os.Stderr, "# %s: cleaning up\n", sig)
		code = 130
	}
	p.cleanup()
	removeBin()
	os.Exit(code)
}

func (p *Program) cleanup() {
	p.once.Do(func() {
		p.mu.Lock()
		fns := p.cleanups
		p.mu.Unlock()
		for i := len(fns) - 1; i >= 0; i-- {
			fns[i]()
		}
	})
}

// Helper does nothing: a program's messages carry no file and line.
func (p *Program) Helper() {}

// Cleanup registers fn to run when the program ends.
func (p *Program) Cleanup(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, fn)
}

// Logf writes a line to standard error.
func (p *Program) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// Fatal writes args and ends the body.
func (p *Program) Fatal(args ...any) { p.fail(fmt.Sprint(args...)) }

// Fatalf writes a line and ends the body.
func (p *Program) Fatalf(format string, args ...any) { p.fail(fmt.Sprintf(format, args...)) }

func (p *Program) fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
	runtime.Goexit()
}

// Failed reports whether Fatal was called.
func (p *Program) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}
