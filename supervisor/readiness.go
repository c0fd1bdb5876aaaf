package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watcher tells a replica about files appearing and going in its private /tmp.
type watcher interface {
	// watch delivers events for files in dir until the returned stop is called.
	watch(dir string) (<-chan lockEvent, func(), error)
	close() error
}

// lockWatcher is the one inotify instance of the daemon. Each replica subscribes to its
// private tmp directory; one instance per replica would run into the kernel's small
// per-user limit on inotify instances.
type lockWatcher struct {
	w   *fsnotify.Watcher
	log *slog.Logger

	mu   sync.Mutex
	subs map[string]chan<- lockEvent // directory → subscriber
}

type lockEvent struct {
	name    string // base name of the file
	present bool   // created or written (true), removed or renamed away (false)
}

func newLockWatcher(log *slog.Logger) (*lockWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	lw := &lockWatcher{w: w, log: log, subs: map[string]chan<- lockEvent{}}
	go lw.loop()
	return lw, nil
}

func (lw *lockWatcher) loop() {
	for {
		select {
		case ev, ok := <-lw.w.Events:
			if !ok {
				return
			}
			var present bool
			switch {
			case ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write):
				present = true
			case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
				present = false
			default:
				continue
			}
			lw.mu.Lock()
			ch := lw.subs[filepath.Dir(ev.Name)]
			lw.mu.Unlock()
			if ch != nil {
				// Subscribers keep a buffered channel and only care about the latest
				// state, so a full buffer may drop an event safely: they re-check
				// the file when they act.
				select {
				case ch <- lockEvent{name: filepath.Base(ev.Name), present: present}:
				default:
				}
			}
		case err, ok := <-lw.w.Errors:
			if !ok {
				return
			}
			lw.log.Warn("inotify", "err", err)
		}
	}
}

// watch delivers events for files in dir until the returned stop is called.
func (lw *lockWatcher) watch(dir string) (<-chan lockEvent, func(), error) {
	ch := make(chan lockEvent, 16)
	lw.mu.Lock()
	lw.subs[dir] = ch
	lw.mu.Unlock()
	if err := lw.w.Add(dir); err != nil {
		lw.mu.Lock()
		delete(lw.subs, dir)
		lw.mu.Unlock()
		return nil, nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	return ch, func() {
		lw.mu.Lock()
		delete(lw.subs, dir)
		lw.mu.Unlock()
		// The directory may be gone already, which removes the watch by itself.
		_ = lw.w.Remove(dir)
	}, nil
}

func (lw *lockWatcher) close() error { return lw.w.Close() }

// dialFunc connects to a port and hangs up: readiness and health ask no more of a
// program than that.
type dialFunc func(ctx context.Context, addr string) error

func dialTCP(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// alive is the health probe of a ready replica.
func alive(dial dialFunc, addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return dial(ctx, addr) == nil
}
