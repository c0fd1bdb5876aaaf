package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"faasd/api"
	"faasd/internal/testkit"
)

// Faults under load, each with what exactly may go wrong: nothing, or only what was in
// flight where the fault struck.

// ready waits until a function has n ready replicas.
func ready(t *testing.T, d *testkit.Daemon, fn string, n int) {
	t.Helper()
	testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("%d ready replicas of %s", n, fn), func() bool {
		st := functionStatus(t, d, fn)
		return int(st.AvailableReplicas) == n && st.Starting == 0
	})
}

func TestReplicasKilledUnderLoadLoseOnlyTheirRequests(t *testing.T) {
	d := testkit.StartDaemon(t, workload("busy", `labels = { "com.openfaas.scale.min" = "3", "com.openfaas.scale.max" = "3" }`))
	ready(t, d, "busy", 3)
	// POSTs: the proxy sends a GET again when the reused connection it went over breaks
	// before an answer, which would hide what a kill costs.
	load := testkit.StartPostLoad(d.URL+"/function/busy/sleep?d=50ms", 60, 6)
	// A kill every time the function has recovered from the last one and served a
	// hundred more requests: every couple of seconds.
	type kill struct{ sent, dead time.Time }
	var kills []kill
	for range 4 {
		served := load.OK.Load()
		testkit.WaitFor(t, 30*time.Second, "recovery and 100 more requests", func() bool {
			return load.OK.Load() >= served+100 && functionStatus(t, d, "busy").AvailableReplicas == 3
		})
		victim := mustInfo(t, d, "busy").PID
		k := kill{sent: time.Now()}
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, 5*time.Second, "the victim to die", func() bool { return !testkit.Alive(victim) })
		k.dead = time.Now()
		kills = append(kills, k)
	}
	ready(t, d, "busy", 3)
	load.Stop()

	// A request may only fail if it was in flight while a replica died.
	failures := load.Failures()
	for _, f := range failures {
		inFlight := slices.ContainsFunc(kills, func(k kill) bool { return !f.Start.After(k.dead) && !f.End.Before(k.sent) })
		if !inFlight {
			t.Errorf("a request sent %s and failed %s was in flight during no kill: %s",
				f.Start.Format(time.StampMicro), f.End.Format(time.StampMicro), f.Err)
		}
	}
	// Each replica has at most a worker's request in flight at a time.
	if len(failures) > len(kills)*6 {
		t.Errorf("%d requests failed over %d kills", len(failures), len(kills))
	}
	t.Logf("%d requests served, %d failed over %d kills", load.OK.Load(), len(failures), len(kills))
	st := functionStatus(t, d, "busy")
	if st.LastError != "process exited: signal: killed" || st.OOMKills != 0 {
		t.Errorf("last error %q and %d OOM kills, want a kill that is not counted as out of memory", st.LastError, st.OOMKills)
	}
	if z := testkit.Zombies(d.Cmd.Process.Pid); len(z) > 0 {
		t.Errorf("zombies: %v", z)
	}
}

// watchdogsRunning counts the classic-mode replicas that carry marker and run fprocess,
// and reports whether they are all the replicas with marker.
func watchdogsRunning(marker, fprocess string) (n int, all bool) {
	all = true
	for _, pid := range testkit.ProcessesWith(marker) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if !bytes.Contains(cmdline, []byte("watchdog")) {
			continue // a call's process
		}
		environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if slices.Contains(strings.Split(string(environ), "\x00"), "fprocess="+fprocess) {
			n++
		} else {
			all = false
		}
	}
	return n, all
}

func TestRedeploysAndReloadsUnderLoadLoseNothing(t *testing.T) {
	m := marker(t)
	viaAPI, viaFile := m+"_API", m+"_FILE"
	fileFunction := func(fprocess string) string {
		return fmt.Sprintf("[functions.file]\nfprocess = %q\nenv = { MARKER = %q }\nlabels = { \"com.openfaas.scale.min\" = \"2\", \"com.openfaas.scale.max\" = \"2\" }\n", fprocess, viaFile)
	}
	deployment := func(fprocess string) string {
		return fmt.Sprintf(`{"service":"api","image":"x","envProcess":%q,"envVars":{"MARKER":%q},"labels":{"com.openfaas.scale.min":"2","com.openfaas.scale.max":"2"}}`, fprocess, viaAPI)
	}
	d := testkit.StartDaemon(t, fileFunction("cat"))
	if code, body := d.API("POST", "/system/functions", deployment("cat")); code != 202 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	ready(t, d, "file", 2)
	ready(t, d, "api", 2)
	loads := []*testkit.Load{
		testkit.StartLoad(d.URL+"/function/file/", 20, 4),
		testkit.StartLoad(d.URL+"/function/api/", 20, 4),
	}
	for round := range 4 {
		fprocess := []string{"tee", "cat"}[round%2]
		served := []int64{loads[0].OK.Load(), loads[1].OK.Load()}
		if code, body := d.API("PUT", "/system/functions", deployment(fprocess)); code != 202 {
			t.Fatalf("redeploy: %d %s", code, body)
		}
		d.WriteConfig(fileFunction(fprocess))
		if round%2 == 1 {
			d.Signal(syscall.SIGHUP) // besides the file's change
		}
		for _, m := range []string{viaAPI, viaFile} {
			testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("round %d: two replicas of %s running %s alone", round, m, fprocess), func() bool {
				n, all := watchdogsRunning(m, fprocess)
				return n == 2 && all
			})
		}
		testkit.WaitFor(t, 10*time.Second, "ten requests of each during the round", func() bool {
			return loads[0].OK.Load() >= served[0]+10 && loads[1].OK.Load() >= served[1]+10
		})
	}
	for _, l := range loads {
		l.Stop()
		t.Logf("%d requests served during 4 redeploys and reloads", l.OK.Load())
		if n := l.Failed.Load(); n > 0 {
			t.Errorf("%d of %d requests failed during the rollovers; last: %s", n, n+l.OK.Load(), l.LastErr)
		}
	}
}

func TestSIGTERMUnderLoadFinishesTheRequestsInFlight(t *testing.T) {
	m := marker(t)
	d := testkit.StartDaemon(t, workload("slow", fmt.Sprintf(`env = { MARKER = %q }
labels = { "com.openfaas.scale.min" = "2", "com.openfaas.scale.max" = "2" }`, m)))
	ready(t, d, "slow", 2)
	groups := containment(t, d).Groups
	// A connection per request: a request either reached the daemon before it closed its
	// port, and must be answered, or was refused.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
	type result struct {
		start time.Time
		body  string
		err   error
	}
	var mu sync.Mutex
	var results []result
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				r := result{start: time.Now()}
				resp, err := client.Get(d.URL + "/function/slow/sleep?d=1s")
				if err == nil {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					r.body, r.err = string(b), rerr
					if resp.StatusCode != 200 {
						r.err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
					}
				} else {
					r.err = err
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				if r.err != nil {
					return
				}
			}
		})
	}
	testkit.WaitFor(t, 20*time.Second, "8 requests in flight", func() bool { return d.Metric("faasd_requests_in_flight", "slow") == 8 })
	term := time.Now()
	d.Signal(syscall.SIGTERM)
	if err := d.Wait(60 * time.Second); err != nil {
		t.Fatalf("daemon exit: %v, want status 0", err)
	}
	wg.Wait()
	finished := 0
	for _, r := range results {
		switch {
		case r.err == nil:
			if !strings.HasPrefix(r.body, "slept 1s") {
				t.Errorf("answer %q", r.body)
			}
			if r.start.Before(term) {
				finished++
			}
		case errors.Is(r.err, syscall.ECONNREFUSED), r.start.After(term):
			// Never reached the daemon, or sent after the stop began.
		default:
			t.Errorf("a request sent before SIGTERM failed: %v", r.err)
		}
	}
	if finished < 8 {
		t.Errorf("%d requests sent before SIGTERM were answered, want at least the 8 in flight", finished)
	}
	if pids := testkit.ProcessesWith(m); len(pids) > 0 {
		t.Errorf("processes left: %v", pids)
	}
	for _, g := range groups {
		if _, err := os.Stat(g); err == nil {
			t.Errorf("cgroup %s left", g)
		}
	}
}

func TestDaemonKilledDuringDeploysComesBackWhole(t *testing.T) {
	m := marker(t)
	d := testkit.StartDaemon(t, workload("keeper", fmt.Sprintf(`env = { MARKER = %q }`, m)))
	keeper := mustInfo(t, d, "keeper")
	// A daemonizing grandchild, which the parent-death signal does not reach.
	code, body := testkit.Get(t, d.URL+"/function/keeper/spawn?setsid=1")
	grandchild, err := strconv.Atoi(strings.TrimSpace(body))
	if code != 200 || err != nil {
		t.Fatalf("setsid: %d %s", code, body)
	}

	// Deploys racing a SIGKILL: every deploy that was answered 202 survives.
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("crash-%d-%d", w, i)
				dep := fmt.Sprintf(`{"service":%q,"image":"x","envProcess":"cat","envVars":{"MARKER":%q}}`, name, m)
				resp, err := http.Post(d.URL+"/system/functions", "application/json", strings.NewReader(dep))
				if err != nil {
					return // the daemon is gone
				}
				resp.Body.Close()
				if resp.StatusCode == 202 {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}
		})
	}
	testkit.WaitFor(t, 20*time.Second, "some deploys", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 12
	})
	old := testkit.ProcessesWith(m)
	d.Signal(syscall.SIGKILL)
	d.Wait(10 * time.Second)
	close(stop)
	wg.Wait()
	if !testkit.Alive(grandchild) {
		t.Fatal("the grandchild died with the daemon: there is nothing to clean up, the test proves nothing")
	}

	// Restarted on the same port: nothing of the old run is left once it answers.
	d.Start()
	for _, pid := range append(old, grandchild) {
		if testkit.Alive(pid) {
			t.Errorf("process %d of the old run survives the restart", pid)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(d.Dir, "state", "functions", "*.tmp"))
	if len(leftovers) > 0 {
		t.Errorf("temp files left: %v", leftovers)
	}
	if strings.Contains(d.Log(), "deployed function not loaded") {
		t.Errorf("a state file was unreadable after the crash:\n%s", d.Log())
	}
	// Every acknowledged deployment is back, and runs.
	testkit.WaitFor(t, 60*time.Second, "every acknowledged deployment to run", func() bool {
		_, body := d.API("GET", "/system/functions", "")
		var list []api.FunctionStatus
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("list: %v: %s", err, body)
		}
		running := map[string]bool{}
		for _, st := range list {
			running[st.Name] = st.AvailableReplicas > 0
		}
		for _, name := range acked {
			if _, ok := running[name]; !ok {
				t.Fatalf("deploy of %s was acknowledged but is gone after the crash", name)
			}
			if !running[name] {
				return false
			}
		}
		return true
	})
	// Every replica group is of this run: populated by one of its replicas.
	for _, root := range containment(t, d).Groups {
		fns, _ := os.ReadDir(filepath.Join(root, "functions"))
		for _, fn := range fns {
			replicas, _ := os.ReadDir(filepath.Join(root, "functions", fn.Name()))
			for _, r := range replicas {
				procs, err := os.ReadFile(filepath.Join(root, "functions", fn.Name(), r.Name(), "cgroup.procs"))
				if r.IsDir() && (err != nil || len(bytes.TrimSpace(procs)) == 0) {
					t.Errorf("cgroup %s/%s holds no process of this run (%v)", fn.Name(), r.Name(), err)
				}
			}
		}
	}
	// The old replica's port is free again, or a replica of this run has it.
	if ln, err := net.Listen("tcp", "127.0.0.1:"+keeper.Port); err == nil {
		ln.Close()
	} else if now := mustInfo(t, d, "keeper"); now.Port != keeper.Port {
		t.Errorf("the old replica's port %s is still taken: %v", keeper.Port, err)
	}
}

func TestFullStateDirIsReportedAndCorruptsNothing(t *testing.T) {
	d := testkit.StartDaemon(t, "")
	// The state dir on a small file system of its own.
	d.Stop()
	state := filepath.Join(d.Dir, "state")
	if err := syscall.Mount("tmpfs", state, "tmpfs", 0, "size=2m,mode=0700"); err != nil {
		t.Fatalf("mount a tmpfs on the state dir: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(state, syscall.MNT_DETACH) })
	d.Start()
	deploy := func(method, name, value string) (int, string) {
		return d.API(method, "/system/functions", fmt.Sprintf(`{"service":%q,"image":"x","envProcess":"cat","annotations":{"a":%q}}`, name, value))
	}
	if code, body := deploy("POST", "before", "v1"); code != 202 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	ready(t, d, "before", 1)
	before, err := os.ReadFile(filepath.Join(state, "functions", "before.json"))
	if err != nil {
		t.Fatal(err)
	}

	// Fill it up.
	filler, err := os.Create(filepath.Join(state, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = filler.Write(make([]byte, 64<<10))
	}
	filler.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the state dir: %v", err)
	}
	big := strings.Repeat("x", 256<<10)
	for _, c := range []struct{ method, name string }{{"POST", "new"}, {"PUT", "before"}} {
		code, body := deploy(c.method, c.name, big)
		t.Logf("%s %s on a full state dir: %d %s", c.method, c.name, code, strings.TrimSpace(body))
		if code != http.StatusInsufficientStorage || !strings.Contains(body, "no space left on device") {
			t.Errorf("%s %s on a full state dir: %d %q, want 507 saying so", c.method, c.name, code, body)
		}
	}
	// Nothing changed: the old version serves, and is what is on disk.
	if st := functionStatus(t, d, "before"); st.Annotations["a"] != "v1" {
		t.Errorf("before's annotation %q after a failed update", st.Annotations["a"])
	}
	if code, _ := d.API("GET", "/system/function/new", ""); code != 404 {
		t.Errorf("a failed deploy left a function: %d", code)
	}
	if now, _ := os.ReadFile(filepath.Join(state, "functions", "before.json")); !bytes.Equal(now, before) {
		t.Errorf("before.json changed:\n%s", now)
	}
	if left, _ := filepath.Glob(filepath.Join(state, "functions", ".*.tmp")); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}

	// With room again, deploys work, and a restart brings back exactly what was acknowledged.
	os.Remove(filler.Name())
	if code, body := deploy("POST", "after", "v1"); code != 202 {
		t.Fatalf("deploy with room again: %d %s", code, body)
	}
	d.Stop()
	d.Start()
	_, body := d.API("GET", "/system/functions", "")
	var list []api.FunctionStatus
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range list {
		names = append(names, st.Name)
	}
	if slices.Sort(names); !slices.Equal(names, []string{"after", "before"}) {
		t.Errorf("functions after a restart: %v, want after and before", names)
	}
	if strings.Contains(d.Log(), "deployed function not loaded") {
		t.Errorf("a state file was unreadable:\n%s", d.Log())
	}
}
