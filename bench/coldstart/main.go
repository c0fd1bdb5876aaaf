// Command coldstart measures faasd's cold starts end to end and sets them beside the floor:
// the same program started without faasd.
//
//	go run ./bench/coldstart [-n 20]
//
// It builds faasd and hello-go, serves a Go and a Python hello-world that scale to zero
// after a short idle time, and for each sample waits until the function is at zero (the
// daemon logs "replica stopped"), sends one request on a fresh connection and records the
// time to the 200 OK and the X-Faasd-Cold-Start header. If the function never goes to zero
// on its own (no autoscaler), it falls back to restarting the daemon before each sample:
// with min = 0 a function starts at zero and wakes on its first request.
//
// The floor: the same program spawned directly with PORT set, exec → first 200 OK, polled
// with a tight loop of connect attempts. faasd overhead = faasd cold request − floor.
//
// With -baseline BINARY, a second daemon runs that binary beside the first, and each
// sample takes a cold request from both, so that a change to the daemon is measured side
// by side with what it changed: faasd − baseline.
// It needs root (faasd as root gives each replica a private /tmp in a mount namespace, and
// the direct runs get one too, so nobody's /tmp/.lock is touched).
package main

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"faasd/client"
	"faasd/internal/testkit"
)

// Targets this benchmark reports against, for the Go hello-world.
const (
	targetColdP50     = 10 * time.Millisecond
	targetOverheadP50 = 2 * time.Millisecond
)

type options struct {
	n            int
	python       string
	zeroDuration time.Duration
	downWindow   time.Duration
	idleTimeout  time.Duration
	settle       time.Duration
	poll         time.Duration
	mode         string
	only         string
	baseline     string
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 20, "cold samples per function (and as many direct starts)")
	flag.StringVar(&o.python, "python", "/usr/bin/python3", "interpreter of the Python function; must be readable by the function's unprivileged account")
	flag.DurationVar(&o.zeroDuration, "zero-duration", time.Second, "idle time before a function scales to zero")
	flag.DurationVar(&o.downWindow, "down-window", time.Second, "the daemon's scale_down_window; a wake from zero is held that long before zero-duration can end it")
	flag.DurationVar(&o.idleTimeout, "idle-timeout", 15*time.Second, "how long to wait for scale to zero before falling back to daemon restarts")
	flag.DurationVar(&o.settle, "settle", 200*time.Millisecond, "pause after a function reached zero, before the request")
	flag.DurationVar(&o.poll, "poll", 100*time.Microsecond, "pause between connect attempts of the direct measurement")
	flag.StringVar(&o.mode, "mode", "auto", "how a function gets to zero: idle (wait for scale to zero), restart (restart the daemon), auto (idle, else restart)")
	flag.StringVar(&o.only, "functions", "hello-go,hello-py", "functions to measure")
	flag.StringVar(&o.baseline, "baseline", "", "another faasd binary to measure beside this tree's, sample by sample")
	flag.Parse()
	testkit.RunProgram(func(p *testkit.Program) { run(p, o) })
}

// function is one workload under test.
type function struct {
	name    string
	argv    []string
	workdir string
}

func run(p *testkit.Program, o options) {
	if o.mode != "auto" && o.mode != "idle" && o.mode != "restart" {
		p.Fatalf("-mode %q: want auto, idle or restart", o.mode)
	}
	if os.Geteuid() != 0 {
		p.Fatal("run as root: the daemon gives replicas a private /tmp only as root")
	}
	root, bin := testkit.RepoRoot(), testkit.Bin(p)
	all := []function{
		{name: "hello-go", argv: []string{filepath.Join(bin, "hello-go")}, workdir: filepath.Join(root, "examples/hello-go")},
		{name: "hello-py", argv: []string{o.python, filepath.Join(root, "bench/coldstart/hello.py")}, workdir: filepath.Join(root, "bench/coldstart")},
	}
	var fns []function
	for _, f := range all {
		if slices.Contains(strings.Split(o.only, ","), f.name) {
			fns = append(fns, f)
		}
	}
	if len(fns) == 0 {
		p.Fatalf("-functions %q: none of hello-go, hello-py", o.only)
	}
	fmt.Fprintf(os.Stderr, "# load average %s; %d CPUs; faasd %s, hello-go %s; %s\n", loadavg(), runtime.NumCPU(),
		linkage(filepath.Join(bin, "faasd")), linkage(filepath.Join(bin, "hello-go")), pythonVersion(o.python))
	cold, floor, mode := measure(p, o, fns)
	report(o, mode, fns, cold, floor)
}

// functionsTOML serves fns at zero when idle for zero-duration, and at most one replica.
func functionsTOML(o options, fns []function) string {
	var b strings.Builder
	for _, f := range fns {
		fmt.Fprintf(&b, "\n[functions.%s]\nworkdir = %q\ncommand = [", f.name, f.workdir)
		for i, a := range f.argv {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", a)
		}
		fmt.Fprintf(&b, "]\nlabels = { %q = \"0\", %q = \"1\", %q = \"true\", %q = %q }\n",
			"com.openfaas.scale.min", "com.openfaas.scale.max", "com.openfaas.scale.zero",
			"com.openfaas.scale.zero-duration", o.zeroDuration.String())
	}
	return b.String()
}

// coldSample is one request to a function at zero.
type coldSample struct {
	e2e      time.Duration // client: request sent → 200 OK and body read
	held     time.Duration // X-Faasd-Cold-Start: the gateway held the request this long
	ready    time.Duration // daemon log "replica ready after=": start of spawn → ready
	toStart  time.Duration // client send → "replica started" line read (wake + prepare + fork)
	toReady  time.Duration // client send → "replica ready" line read
	readyToE time.Duration // "replica ready" line read → 200 OK read
}

// daemonUnderTest is a daemon whose cold starts are measured.
type daemonUnderTest struct {
	label    string // "faasd", or "baseline" for the -baseline binary
	d        *testkit.Daemon
	replicas *tracker
	gw       *client.Gateway
}

func startUnderTest(p *testkit.Program, o options, fns []function, label, binary string) *daemonUnderTest {
	u := &daemonUnderTest{label: label, replicas: newTracker()}
	u.d = testkit.StartDaemon(p, functionsTOML(o, fns), testkit.Options{
		Gateway:   fmt.Sprintf("scale_down_window = %q", o.downWindow.String()),
		LogLevel:  "info",
		OnLogLine: u.replicas.read,
		Binary:    binary,
	})
	u.gw = client.New(u.d.URL, client.Auth{})
	u.gw.HTTP = &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		Timeout:   60 * time.Second,
	}
	return u
}

// sample gets a function to zero and takes one cold request. mode may fall back from
// waiting for zero to restarting the daemon (see the package comment).
func (u *daemonUnderTest) sample(p *testkit.Program, o options, f function, i int, mode *string) coldSample {
	for attempt := 0; ; attempt++ {
		if attempt == 3 {
			p.Fatalf("%s %s: no cold request in 3 attempts", u.label, f.name)
		}
		// Get the function to zero.
		if u.replicas.live(f.name) > 0 {
			switch *mode {
			case "restart":
				u.d.Stop()
				u.replicas.reset()
				u.d.Start()
			default:
				if !u.replicas.waitZero(f.name, o.idleTimeout) {
					if *mode == "idle" {
						p.Fatalf("%s %s did not scale to zero within %s", u.label, f.name, o.idleTimeout)
					}
					fmt.Fprintf(os.Stderr, "# %s did not scale to zero within %s: restarting the daemon before each sample instead\n", f.name, o.idleTimeout)
					*mode = "restart"
					continue
				}
				if *mode == "auto" {
					*mode = "idle"
				}
			}
		}
		time.Sleep(o.settle)
		s, err := coldRequest(u.gw, u.replicas, f.name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "# %s %s sample %d: %v\n", u.label, f.name, i+1, err)
			continue
		}
		return s
	}
}

// measure takes n cold samples of each function through faasd and, right after each, one
// direct start of the same program (and one cold sample of the -baseline daemon), so that
// the noise of a shared machine falls on all of them.
func measure(p *testkit.Program, o options, fns []function) (map[string][]coldSample, map[string][]time.Duration, string) {
	work := testkit.Dir(p)
	tmp := filepath.Join(work, "direct-tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		p.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o1777|os.ModeSticky); err != nil {
		p.Fatal(err)
	}
	direct, err := testkit.NewPrivateTmp(tmp)
	if err != nil {
		p.Fatalf("direct runs need a private /tmp (the programs write /tmp/.lock): %v", err)
	}
	defer direct.Close()

	daemons := []*daemonUnderTest{startUnderTest(p, o, fns, "faasd", "")}
	if o.baseline != "" {
		daemons = append(daemons, startUnderTest(p, o, fns, "baseline", o.baseline))
	}
	mode := o.mode
	cold := map[string][]coldSample{} // by function, and "baseline " + function
	floor := map[string][]time.Duration{}
	for i := 0; i < o.n; i++ {
		for _, f := range fns {
			for _, u := range daemons {
				key := f.name
				if u.label != "faasd" {
					key = u.label + " " + f.name
				}
				cold[key] = append(cold[key], u.sample(p, o, f, i, &mode))
			}
			time.Sleep(o.settle)
			dt, err := directStart(p, direct, f, tmp, o.poll)
			if err != nil {
				p.Fatalf("direct %s: %v", f.name, err)
			}
			floor[f.name] = append(floor[f.name], dt)
			s := cold[f.name][len(cold[f.name])-1]
			line := fmt.Sprintf("# %s %2d/%d: faasd e2e %s (held %s, spawn→ready %s) | direct exec→200 %s",
				f.name, i+1, o.n, ms(s.e2e), ms(s.held), ms(s.ready), ms(dt))
			if b, ok := cold["baseline "+f.name]; ok {
				line += fmt.Sprintf(" | baseline e2e %s (spawn→ready %s)", ms(b[len(b)-1].e2e), ms(b[len(b)-1].ready))
			}
			fmt.Fprintln(os.Stderr, line)
		}
	}
	if mode == "auto" {
		mode = "idle"
	}
	return cold, floor, mode
}

func coldRequest(gw *client.Gateway, replicas *tracker, name string) (coldSample, error) {
	var s coldSample
	mark := replicas.readies(name)
	t0 := time.Now()
	resp, err := gw.Invoke(context.Background(), client.Invocation{Function: name, Method: http.MethodGet, Path: "/"})
	if err != nil {
		return s, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	t1 := time.Now()
	if err != nil {
		return s, err
	}
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("status %s", resp.Status)
	}
	s.e2e = t1.Sub(t0)
	h := resp.Header.Get("X-Faasd-Cold-Start")
	if h == "" {
		return s, errors.New("no X-Faasd-Cold-Start header: the function was not at zero")
	}
	if s.held, err = time.ParseDuration(h); err != nil {
		return s, fmt.Errorf("X-Faasd-Cold-Start %q: %w", h, err)
	}
	ev, ok := replicas.readyAfter(name, mark, 2*time.Second)
	if !ok {
		return s, errors.New(`no "replica ready" line in the daemon log`)
	}
	s.ready = ev.after
	s.toStart = ev.startedSeen.Sub(t0)
	s.toReady = ev.readySeen.Sub(t0)
	s.readyToE = t1.Sub(ev.readySeen)
	return s, nil
}

// tracker follows the daemon's log to tell which replicas live and when they got ready.
type tracker struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change below
	fns     map[string]*track
}

// track is what the log told of one function.
type track struct {
	live        int // replicas started and not yet stopped or failed
	readyEvents []readyEvent
	started     time.Time // when the last "replica started" line was read
}

type readyEvent struct {
	after       time.Duration
	startedSeen time.Time
	readySeen   time.Time
}

func newTracker() *tracker {
	return &tracker{changed: make(chan struct{}), fns: map[string]*track{}}
}

// reset forgets every replica: the daemon was restarted, and took them with it.
func (r *tracker) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fns = map[string]*track{}
}

// read follows one line of the daemon's log.
func (r *tracker) read(line string) {
	seen := time.Now()
	kv := testkit.ParseLogLine(line)
	name := kv["function"]
	if name == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.fns[name]
	if t == nil {
		t = &track{}
		r.fns[name] = t
	}
	switch kv["msg"] {
	case "replica started":
		t.live++
		t.started = seen
	case "replica stopped", "replica failed":
		t.live--
	case "replica ready":
		after, _ := time.ParseDuration(kv["after"])
		t.readyEvents = append(t.readyEvents, readyEvent{after: after, startedSeen: t.started, readySeen: seen})
	default:
		return
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *tracker) live(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.fns[name]; t != nil {
		return t.live
	}
	return 0
}

func (r *tracker) readies(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.fns[name]; t != nil {
		return len(t.readyEvents)
	}
	return 0
}

// await waits until cond holds, under the lock, or timeout.
func (r *tracker) await(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

func (r *tracker) waitZero(name string, timeout time.Duration) bool {
	return r.await(timeout, func() bool { t := r.fns[name]; return t == nil || t.live <= 0 })
}

func (r *tracker) readyAfter(name string, mark int, timeout time.Duration) (readyEvent, bool) {
	var ev readyEvent
	ok := r.await(timeout, func() bool {
		t := r.fns[name]
		if t == nil || len(t.readyEvents) <= mark {
			return false
		}
		ev = t.readyEvents[mark]
		return true
	})
	return ev, ok
}

// directStart runs a program once without faasd, as nobody with a private /tmp, and
// returns the time from exec to its first 200 OK: connect is retried every poll until the
// port accepts, then one GET goes over that connection.
func directStart(p *testkit.Program, direct *testkit.PrivateTmp, f function, tmp string, poll time.Duration) (time.Duration, error) {
	addr := testkit.FreeAddr(p)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(f.argv[0], f.argv[1:]...)
	cmd.Dir = f.workdir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "PORT=" + port}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534},
	}
	t0 := time.Now()
	if err := direct.Start(cmd); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		os.Remove(filepath.Join(tmp, ".lock"))
	}()
	deadline := t0.Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			defer conn.Close()
			return firstAnswer(conn, addr, t0)
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("exited before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("not listening within 10s: %w", err)
		}
		time.Sleep(poll)
	}
}

// firstAnswer sends one GET on conn and returns the time from t0 to its 200 OK read whole.
func firstAnswer(conn net.Conn, addr string, t0 time.Time) (time.Duration, error) {
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %s", resp.Status)
	}
	return time.Since(t0), nil
}

func report(o options, mode string, fns []function, cold map[string][]coldSample, floor map[string][]time.Duration) {
	how := "waited for scale to zero (zero-duration " + o.zeroDuration.String() + ")"
	if mode == "restart" {
		how = "restarted the daemon before each sample (function min = 0)"
	}
	fmt.Printf("\nfaasd cold start: %d samples per function; %s; fresh client connection per request\n\n", o.n, how)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "function\tmeasure\tn\tp50 ms\tp95 ms\tmin ms\tmax ms\t")
	for _, f := range fns {
		cs := cold[f.name]
		pick := func(get func(coldSample) time.Duration) []time.Duration {
			out := make([]time.Duration, len(cs))
			for i, s := range cs {
				out[i] = get(s)
			}
			return out
		}
		e2e := pick(func(s coldSample) time.Duration { return s.e2e })
		rows := []struct {
			what string
			ds   []time.Duration
		}{
			{"faasd cold request, e2e", e2e},
			{"  X-Faasd-Cold-Start (held)", pick(func(s coldSample) time.Duration { return s.held })},
			{"  send → 'replica started' logged", pick(func(s coldSample) time.Duration { return s.toStart })},
			{"  spawn → ready (daemon 'after=')", pick(func(s coldSample) time.Duration { return s.ready })},
			{"  'replica ready' logged → 200 read", pick(func(s coldSample) time.Duration { return s.readyToE })},
			{"direct exec → 200", floor[f.name]},
		}
		for _, r := range rows {
			st := summarize(r.ds)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", f.name, r.what, len(r.ds), ms(st.p50), ms(st.p95), ms(st.min), ms(st.max))
		}
		c, d := summarize(e2e), summarize(floor[f.name])
		fmt.Fprintf(tw, "%s\t%s\t\t%s\t%s\t\t\t\n", f.name, "faasd overhead (e2e − direct)", msSigned(c.p50-d.p50), msSigned(c.p95-d.p95))
		if bs, ok := cold["baseline "+f.name]; ok {
			var be2e, bready []time.Duration
			for _, s := range bs {
				be2e, bready = append(be2e, s.e2e), append(bready, s.ready)
			}
			for _, r := range []struct {
				what string
				ds   []time.Duration
			}{{"baseline cold request, e2e", be2e}, {"  baseline spawn → ready", bready}} {
				st := summarize(r.ds)
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", f.name, r.what, len(r.ds), ms(st.p50), ms(st.p95), ms(st.min), ms(st.max))
			}
			b, r, br := summarize(be2e), summarize(pick(func(s coldSample) time.Duration { return s.ready })), summarize(bready)
			fmt.Fprintf(tw, "%s\t%s\t\t%s\t%s\t\t\t\n", f.name, "faasd − baseline (e2e)", msSigned(c.p50-b.p50), msSigned(c.p95-b.p95))
			fmt.Fprintf(tw, "%s\t%s\t\t%s\t%s\t\t\t\n", f.name, "faasd − baseline (spawn → ready)", msSigned(r.p50-br.p50), msSigned(r.p95-br.p95))
		}
		fmt.Fprintln(tw, "\t\t\t\t\t\t\t")
	}
	tw.Flush()
	if cs, ok := cold["hello-go"]; ok && len(floor["hello-go"]) > 0 {
		e2e := make([]time.Duration, len(cs))
		for i, s := range cs {
			e2e[i] = s.e2e
		}
		c, d := summarize(e2e), summarize(floor["hello-go"])
		fmt.Printf("target hello-go cold request p50 < %s: %s (%s)\n", ms(targetColdP50), verdict(c.p50 < targetColdP50), ms(c.p50))
		fmt.Printf("target hello-go faasd overhead p50 < %s: %s (%s)\n", ms(targetOverheadP50), verdict(c.p50-d.p50 < targetOverheadP50), msSigned(c.p50-d.p50))
	}
}

type stats struct{ p50, p95, min, max time.Duration }

// summarize gives nearest-rank percentiles.
func summarize(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return stats{p50: rank(0.50), p95: rank(0.95), min: s[0], max: s[len(s)-1]}
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "MISSED"
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }

func msSigned(d time.Duration) string {
	if d >= 0 {
		return "+" + ms(d)
	}
	return ms(d)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// linkage tells whether a binary needs the dynamic loader (a cgo build), which adds to
// every start.
func linkage(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "dynamic"
		}
	}
	return "static"
}

func pythonVersion(python string) string {
	out, err := exec.CommandContext(context.Background(), python, "--version").CombinedOutput()
	if err != nil {
		return python + ": " + err.Error()
	}
	return python + " " + strings.TrimSpace(strings.TrimPrefix(string(out), "Python "))
}
