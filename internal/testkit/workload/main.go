// Command workload is the test program of the e2e tests: an unmodified-style service
// that binds $PORT, writes the literal /tmp/.lock when ready, and exposes endpoints that
// make it misbehave on request.
//
// Environment: VERSION (echoed), READY_DELAY (Go duration before the lock is written),
// NO_LOCK=1 (never ready), NO_LISTEN=1 (writes its lock but never binds its port),
// IGNORE_TERM=1 (needs SIGKILL), EXIT_AT_START=N (exit at once), RECORD_FILE (where
// /record appends the X-Call-Id of every call it finished).
//
// /fs and /kill do what a hostile function would try on the machine, as the function's
// account: read, write and link files, signal processes.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const lock = "/tmp/.lock"

// hoard is the memory /hog keeps.
var hoard struct {
	sync.Mutex
	blocks [][]byte
}

func main() {
	if code := os.Getenv("EXIT_AT_START"); code != "" {
		n, _ := strconv.Atoi(code)
		fmt.Fprintln(os.Stderr, "exiting at start as asked")
		os.Exit(n)
	}
	var ln net.Listener
	if os.Getenv("NO_LISTEN") != "1" {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", info)
	mux.HandleFunc("/crash", func(http.ResponseWriter, *http.Request) { os.Exit(3) })
	mux.HandleFunc("/unlock", func(w http.ResponseWriter, _ *http.Request) {
		os.Remove(lock)
		fmt.Fprintln(w, "unlocked")
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		select {
		case <-time.After(d):
			fmt.Fprintf(w, "slept %s pid %d\n", d, os.Getpid())
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		http.Error(w, "answering "+r.URL.Query().Get("code")+" as asked", code)
	})
	mux.HandleFunc("/record", record)
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		// The second event only comes when the client has seen the first: proof that
		// nothing between them buffers.
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
			fmt.Fprint(w, "data: second\n\n")
		}
	})
	mux.HandleFunc("/ws", websocketEcho)
	mux.HandleFunc("/fs", fileOp)
	mux.HandleFunc("/kill", func(w http.ResponseWriter, r *http.Request) {
		pid, _ := strconv.Atoi(r.URL.Query().Get("pid"))
		sig, _ := strconv.Atoi(r.URL.Query().Get("sig"))
		if err := syscall.Kill(pid, syscall.Signal(sig)); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		fmt.Fprintln(w, "signalled", pid)
	})
	mux.HandleFunc("/spawn", func(w http.ResponseWriter, r *http.Request) {
		// A child that outlives requests: in the replica's process group, or with
		// ?setsid=1 in a session of its own, as a program that daemonizes makes it.
		cmd := exec.Command("sleep", "1000")
		if r.URL.Query().Get("setsid") == "1" {
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		}
		if err := cmd.Start(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		go cmd.Wait()
		fmt.Fprintln(w, cmd.Process.Pid)
	})
	mux.HandleFunc("/hog", func(w http.ResponseWriter, r *http.Request) {
		// Touch ?mb= MiB of memory and keep it: over a memory limit, the OOM killer ends
		// the replica before it answers.
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		hoard.Lock()
		defer hoard.Unlock()
		for range mb {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			hoard.blocks = append(hoard.blocks, b)
		}
		fmt.Fprintf(w, "holding %d MiB\n", len(hoard.blocks))
	})
	if os.Getenv("IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() {
			<-term
			os.Remove(lock)
			os.Exit(0)
		}()
	}
	go func() {
		if os.Getenv("NO_LOCK") == "1" {
			return
		}
		if d, err := time.ParseDuration(os.Getenv("READY_DELAY")); err == nil {
			time.Sleep(d)
		}
		if err := os.WriteFile(lock, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "write lock:", err)
			os.Exit(1)
		}
		fmt.Println("ready on port", os.Getenv("PORT"))
	}()
	for ln == nil {
		time.Sleep(time.Hour) // until a signal ends it
	}
	http.Serve(ln, mux)
}

// fileOp does one file operation of ?op= as the workload's account: read ?path=, write the
// body to ?path=, symlink ?path= to ?target=, rename ?target= to ?path=. A refusal is 403
// with the error.
func fileOp(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	path, target := q.Get("path"), q.Get("target")
	var err error
	switch q.Get("op") {
	case "read":
		var b []byte
		if b, err = os.ReadFile(path); err == nil {
			w.Write(b)
			return
		}
	case "write":
		var b []byte
		if b, err = io.ReadAll(r.Body); err == nil {
			err = os.WriteFile(path, b, 0o644)
		}
	case "symlink":
		err = os.Symlink(target, path)
	case "rename":
		err = os.Rename(target, path)
	default:
		http.Error(w, "op: read, write, symlink or rename", http.StatusBadRequest)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	fmt.Fprintln(w, "done")
}

// info answers with what the tests check: who served, what arrived, what it sees.
func info(w http.ResponseWriter, r *http.Request) {
	lockPID, _ := os.ReadFile(lock)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"pid":      os.Getpid(),
		"uid":      os.Getuid(),
		"version":  os.Getenv("VERSION"),
		"path":     r.URL.Path,
		"raw_path": r.URL.RawPath,
		"query":    r.URL.RawQuery,
		"host":     r.Host,
		"headers":  r.Header,
		"lock_pid": string(lockPID),
		"tmpdir":   os.Getenv("TMPDIR"),
		"port":     os.Getenv("PORT"),
		"home":     os.Getenv("HOME"),
		"secret":   os.Getenv("DAEMON_SECRET"),
	})
}

// websocketEcho accepts any upgrade and echoes raw bytes: enough to prove the proxy
// passes an upgraded connection through both ways.
func websocketEcho(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") == "" {
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n\r\n", r.Header.Get("Upgrade"))
	rw.Flush()
	br := bufio.NewReader(rw)
	buf := make([]byte, 4096)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			conn.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// record sleeps for ?d=, then appends the call's X-Call-Id to $RECORD_FILE: a count of
// the calls a function really ran, duplicates included.
func record(w http.ResponseWriter, r *http.Request) {
	d, _ := time.ParseDuration(r.URL.Query().Get("d"))
	select {
	case <-time.After(d):
	case <-r.Context().Done():
		return
	}
	f, err := os.OpenFile(os.Getenv("RECORD_FILE"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	// One write of a whole line: appends from several replicas do not interleave.
	if _, err := f.WriteString(r.Header.Get("X-Call-Id") + "\n"); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "recorded", r.Header.Get("X-Call-Id"))
}
