// Package filewatch reports changes of files and directory trees once they settle. Editors,
// builds and configuration management write several times per save and replace files by
// renaming over them, which ends a watch on the file itself: so directories are watched,
// and a change is reported once nothing more happened to it for a while.
package filewatch

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher reports changes under a key per watched file or tree.
type Watcher struct {
	fs      *fsnotify.Watcher
	settle  time.Duration
	onError func(error)
	out     chan string
	due     chan string
	done    chan struct{}
	exited  chan struct{}
	close   sync.Once

	mu      sync.Mutex
	files   map[string][]string // path → keys
	trees   []tree
	watched map[string]bool // directories given to fsnotify
}

type tree struct {
	root, key string
	skip      func(dir string) bool
}

// New starts a watcher that reports a key once its files have been quiet for settle.
// onError hears what could not be watched, from any goroutine; nil ignores it.
func New(settle time.Duration, onError func(error)) (*Watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if onError == nil {
		onError = func(error) {}
	}
	w := &Watcher{
		fs: fw, settle: settle, onError: onError,
		out: make(chan string), due: make(chan string), done: make(chan struct{}), exited: make(chan struct{}),
		files: map[string][]string{}, watched: map[string]bool{},
	}
	go w.loop()
	return w, nil
}

// Changes delivers the key of each change, once it settled. Keys that changed while the
// reader was busy are delivered once each.
func (w *Watcher) Changes() <-chan string { return w.out }

// File reports changes of the file at path (created, written, replaced, removed) as key.
func (w *Watcher) File(path, key string) error {
	path = filepath.Clean(path)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.addDirLocked(filepath.Dir(path)); err != nil {
		return err
	}
	w.files[path] = append(w.files[path], key)
	return nil
}

// Tree reports changes of anything under root as key, in directories created later too;
// skip leaves out directories below root (nil: none). Watching the same root under the
// same key again replaces its skip rule.
func (w *Watcher) Tree(root, key string, skip func(dir string) bool) {
	if skip == nil {
		skip = func(string) bool { return false }
	}
	t := tree{root: filepath.Clean(root), key: key, skip: skip}
	w.mu.Lock()
	i := slices.IndexFunc(w.trees, func(o tree) bool { return o.root == t.root && o.key == t.key })
	if i >= 0 {
		w.trees[i] = t // watched already; the new skip rule applies from now on
	} else {
		w.trees = append(w.trees, t)
	}
	w.mu.Unlock()
	w.walk(t, t.root)
}

// walk watches dir and the directories below it that t does not skip.
func (w *Watcher) walk(t tree, dir string) {
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil
		}
		if p != t.root && t.skip(p) {
			return filepath.SkipDir
		}
		w.mu.Lock()
		err = w.addDirLocked(p)
		w.mu.Unlock()
		if err != nil {
			w.onError(err)
		}
		return nil
	})
}

func (w *Watcher) addDirLocked(dir string) error {
	if w.watched[dir] {
		return nil
	}
	if err := w.fs.Add(dir); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	w.watched[dir] = true
	return nil
}

// keys returns the keys an event at path concerns.
func (w *Watcher) keys(path string) (keys []string, trees []tree) {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys = append(keys, w.files[path]...)
	for _, t := range w.trees {
		if within(path, t.root) {
			keys = append(keys, t.key)
			trees = append(trees, t)
		}
	}
	return keys, trees
}

// within reports whether p is dir or lies under it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+string(filepath.Separator))
}

func (w *Watcher) loop() {
	defer close(w.exited)
	timers := map[string]*time.Timer{}
	defer func() {
		for _, t := range timers {
			t.Stop()
		}
	}()
	var ready []string // settled, not yet delivered
	for {
		var send chan string
		var next string
		if len(ready) > 0 {
			send, next = w.out, ready[0]
		}
		select {
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			for _, key := range w.touched(ev) {
				if t, ok := timers[key]; ok {
					t.Reset(w.settle)
					continue
				}
				timers[key] = time.AfterFunc(w.settle, func() {
					select {
					case w.due <- key:
					case <-w.done:
					}
				})
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			w.onError(err)
		case key := <-w.due:
			if !slices.Contains(ready, key) {
				ready = append(ready, key)
			}
		case send <- next:
			ready = ready[1:]
		case <-w.done:
			return
		}
	}
}

// touched returns the keys of an event, and starts watching a directory created in a tree.
func (w *Watcher) touched(ev fsnotify.Event) []string {
	path := filepath.Clean(ev.Name)
	keys, trees := w.keys(path)
	if ev.Has(fsnotify.Create) {
		for _, t := range trees {
			if !t.skip(path) {
				w.walk(t, path)
			}
		}
	}
	return keys
}

// Close stops watching; Changes delivers nothing more.
func (w *Watcher) Close() error {
	var err error
	w.close.Do(func() {
		close(w.done)
		err = w.fs.Close()
		<-w.exited
	})
	return err
}
