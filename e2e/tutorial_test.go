package e2e

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"faasd/internal/testkit"
)

// requireTutorialPackages fails (never skips) when the Debian packages the example stack
// runs on are missing: `make test` installs them first, so their absence is a broken
// setup, not an optional feature.
func requireTutorialPackages(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/usr/bin/ruby", "/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: install the tutorial's packages with scripts/install-deps.sh (make deps)", p)
		}
	}
	out, err := exec.Command("/usr/bin/ruby", "-e", `require "sinatra/base"; require "puma"; require "mysql2"`).CombinedOutput()
	if err != nil {
		t.Fatalf("ruby cannot load sinatra, puma and mysql2: %v\n%s\ninstall them with scripts/install-deps.sh (make deps)", err, out)
	}
}

// TestTutorial replays the README's walkthrough against the example stack of the
// repository's faasd.toml: Debian's ruby and Sinatra, and a real MariaDB supervised as a
// service. Only the database's port (free here) and the guestbook's idle time before zero
// (short here) differ from `make run`.
func TestTutorial(t *testing.T) {
	requireTutorialPackages(t)
	_, dbPort, _ := net.SplitHostPort(testkit.FreeAddr(t))
	stack := testkit.ExampleStack(t,
		"3307", dbPort,
		`"com.openfaas.scale.zero-duration" = "1m"`, `"com.openfaas.scale.zero-duration" = "2s"`)
	d := testkit.StartDaemon(t, stack, testkit.Options{Gateway: `scale_down_window = "3s"`, Examples: true})
	if got := d.MetricWith("faasd_service_ready", "service", "mariadb"); got != 1 {
		t.Fatalf("the daemon serves, but mariadb is not ready: faasd_service_ready = %v", got)
	}
	frank := d.URL + "/function/frank-says/"
	guestbook := d.URL + "/function/guestbook/"

	t.Run("the database password is a faasd secret", func(t *testing.T) {
		for _, line := range strings.Split(stack, "\n") {
			if strings.HasPrefix(line, "env = ") && strings.Contains(line, "PASSWORD") {
				t.Errorf("faasd.toml sets a password in plain env: %s", line)
			}
		}
		if code, body := d.API("GET", "/system/secrets", ""); code != 200 || !strings.Contains(body, `"guestbook-db-password"`) {
			t.Errorf("secrets: %d %s", code, body)
		}
		if st := getStatus(t, d, "guestbook"); fmt.Sprint(st.raw["secrets"]) != "[guestbook-db-password]" {
			t.Errorf("the guestbook's secrets: %v", st.raw["secrets"])
		}
	})

	t.Run("frank-says answers both routes", func(t *testing.T) {
		for path, want := range map[string]string{"": "Frank has entered the building", "logout": "Frank has left the building"} {
			if code, body := testkit.Get(t, frank+path); code != 200 || body != want {
				t.Errorf("GET /%s: %d %q, want 200 %q", path, code, body, want)
			}
		}
	})

	t.Run("invocations rise", func(t *testing.T) {
		series := []string{"function_name", "frank-says.openfaas-fn", "code", "200"}
		before := max(d.MetricWith("gateway_function_invocation_total", series...), 0)
		for range 3 {
			testkit.Get(t, frank)
		}
		testkit.WaitFor(t, 5*time.Second, "3 more invocations of frank-says", func() bool {
			return d.MetricWith("gateway_function_invocation_total", series...) >= before+3
		})
	})

	t.Run("a curl loop scales frank-says out and back in", func(t *testing.T) {
		// 25 req/s against the default target of 5 per replica asks for more than one.
		load := testkit.StartLoad(frank, 25, 5)
		testkit.WaitFor(t, 30*time.Second, "frank-says above one ready replica under load", func() bool {
			return d.Metric("gateway_service_count", "frank-says") > 1 && d.Metric("faasd_replicas_ready", "frank-says") > 1
		})
		load.Stop()
		if n := load.Failed.Load(); n > 0 {
			t.Fatalf("%d of %d requests failed while scaling out: %s", n, n+load.OK.Load(), load.LastErr)
		}
		testkit.WaitFor(t, 40*time.Second, "frank-says back to one replica after the load", func() bool {
			return d.Metric("gateway_service_count", "frank-says") == 1 && d.Metric("faasd_replicas_ready", "frank-says") == 1
		})
	})

	entries := []string{fmt.Sprintf("first visit %d", time.Now().UnixNano()), "Frank was here <b>too</b>"}
	t.Run("guestbook signs and lists", func(t *testing.T) {
		for i, msg := range entries {
			sign(t, guestbook, fmt.Sprintf("visitor %d", i), msg)
		}
		listsAll(t, guestbook, entries)
	})

	guestbookDir := filepath.Join(d.Dir, "examples", "guestbook")
	t.Run("entries survive killing every guestbook replica", func(t *testing.T) {
		listsAll(t, guestbook, entries) // awake, with at least one replica
		pids := testkit.ProcessesIn(guestbookDir)
		if len(pids) == 0 {
			t.Fatal("no guestbook process found")
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		testkit.WaitFor(t, 10*time.Second, "the killed guestbook replicas gone", func() bool {
			for _, pid := range pids {
				if syscall.Kill(pid, 0) == nil {
					return false
				}
			}
			return true
		})
		// Requests racing the supervisor's view of the killed replicas may fail; the
		// entries must be back once a new replica serves.
		testkit.WaitFor(t, 30*time.Second, "the guestbook serving its entries again", func() bool {
			code, body := testkit.Get(t, guestbook)
			return code == 200 && containsAll(body, entries)
		})
	})

	t.Run("entries survive a restart of the daemon", func(t *testing.T) {
		d.Signal(syscall.SIGTERM)
		if err := d.Wait(90 * time.Second); err != nil {
			t.Fatalf("daemon exit: %v", err)
		}
		if pids := testkit.ProcessesIn(guestbookDir); len(pids) > 0 {
			t.Fatalf("guestbook processes %v outlived the daemon", pids)
		}
		if !strings.Contains(d.Log(), `msg="service stopped" service=mariadb`) {
			t.Fatal("mariadb was not stopped gracefully")
		}
		d.Start()
		listsAll(t, guestbook, entries)
		if n := strings.Count(d.Log(), "fresh data dir: running init"); n != 1 {
			t.Errorf("mariadb's init ran %d times over two starts, want once", n)
		}
	})

	t.Run("the guestbook at zero wakes with its data", func(t *testing.T) {
		testkit.WaitFor(t, 30*time.Second, "the guestbook asleep at zero", func() bool {
			return d.Metric("gateway_service_count", "guestbook") == 0 && len(testkit.ProcessesIn(guestbookDir)) == 0
		})
		resp, err := http.Get(guestbook)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !containsAll(string(body), entries) {
			t.Fatalf("wake-up request: %d, entries %v in %q", resp.StatusCode, entries, body)
		}
		if resp.Header.Get("X-Faasd-Cold-Start") == "" {
			t.Errorf("no X-Faasd-Cold-Start on the request that woke the guestbook: %v", resp.Header)
		}
	})

	t.Run("reset empties the guestbook", func(t *testing.T) {
		post(t, guestbook+"reset", nil)
		if code, body := testkit.Get(t, guestbook); code != 200 || !strings.Contains(body, "0 entries") || strings.Contains(body, "visitor 0") {
			t.Fatalf("after reset: %d %q", code, body)
		}
	})

	t.Run("classic functions", func(t *testing.T) {
		sum := sha512.Sum512([]byte("faasd"))
		if code, body := invokeBody(t, d.URL+"/function/stronghash", "faasd"); code != 200 || body != hex.EncodeToString(sum[:])+"  -\n" {
			t.Errorf("stronghash: %d %q", code, body)
		}
		if code, body := invokeBody(t, d.URL+"/function/wordcount", "one two three\n"); code != 200 || strings.Join(strings.Fields(body), " ") != "1 3 14" {
			t.Errorf("wordcount: %d %q", code, body)
		}
	})
}

// noRedirect shows a redirect as it comes, to check where it points.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// post sends a form the way a browser does and expects the guestbook's redirect back to
// the list, relative so that it stays under the /function/guestbook/ prefix.
func post(t *testing.T, u string, form url.Values) {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	origin, _ := url.Parse(u)
	req.Header.Set("Origin", origin.Scheme+"://"+origin.Host)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "./" {
		t.Fatalf("POST %s: %d Location %q, want 303 to ./: %s", u, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	back, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if !strings.HasSuffix(back.Path, "/function/guestbook/") {
		t.Fatalf("the redirect leads to %s, out of the guestbook", back)
	}
}

func sign(t *testing.T, guestbook, name, message string) {
	t.Helper()
	post(t, guestbook+"sign", url.Values{"name": {name}, "message": {message}})
}

func listsAll(t *testing.T, guestbook string, entries []string) {
	t.Helper()
	code, body := testkit.Get(t, guestbook)
	if code != 200 || !containsAll(body, entries) {
		t.Fatalf("GET %s: %d, want entries %q in:\n%s", guestbook, code, entries, body)
	}
}

// containsAll reports whether the page shows every entry, HTML-escaped as the view does.
func containsAll(page string, entries []string) bool {
	for _, e := range entries {
		escaped := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "/", "&#x2F;", `"`, "&quot;", "'", "&#x27;").Replace(e)
		if !strings.Contains(page, escaped) {
			return false
		}
	}
	return true
}

func invokeBody(t *testing.T, u, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(u, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A developer runs the example stack as an ordinary user, once the packages are
// installed: the daemon runs every function and service as that user, MariaDB included
// (which the file gives user = "mysql"), and says so once.
func TestTutorialAsAnOrdinaryUser(t *testing.T) {
	requireTutorialPackages(t)
	_, dbPort, _ := net.SplitHostPort(testkit.FreeAddr(t))
	stack := testkit.ExampleStack(t, "3307", dbPort)
	developer := &syscall.Credential{Uid: 65534, Gid: 65534}
	d := testkit.StartDaemon(t, stack, testkit.Options{Examples: true, Credential: developer})
	if got := d.MetricWith("faasd_service_ready", "service", "mariadb"); got != 1 {
		t.Fatalf("the daemon serves, but mariadb is not ready: faasd_service_ready = %v", got)
	}
	if n := strings.Count(d.Log(), "the daemon is not root"); n != 1 {
		t.Errorf("%d warnings that the daemon is not root, want one:\n%s", n, d.Log())
	}
	if code, body := testkit.Get(t, d.URL+"/function/frank-says/"); code != 200 || body != "Frank has entered the building" {
		t.Errorf("frank-says: %d %q", code, body)
	}
	guestbook := d.URL + "/function/guestbook/"
	entry := fmt.Sprintf("signed by a developer %d", time.Now().UnixNano())
	sign(t, guestbook, "dev", entry)
	listsAll(t, guestbook, []string{entry})
	for what, pids := range map[string][]int{
		"guestbook": testkit.ProcessesIn(filepath.Join(d.Dir, "examples", "guestbook")),
		"mariadbd":  testkit.ProcessesWith("--datadir=" + d.State().Service("mariadb")),
	} {
		if len(pids) == 0 {
			t.Errorf("no %s process found", what)
		}
		for _, pid := range pids {
			if uid := processUID(t, pid); uid != developer.Uid {
				t.Errorf("%s (pid %d) runs as uid %d, want the developer's %d", what, pid, uid, developer.Uid)
			}
		}
	}
}

// processUID returns the real user id of a process.
func processUID(t *testing.T, pid int) uint32 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			var uid uint32
			fmt.Sscan(f[1], &uid)
			return uid
		}
	}
	return 0
}
