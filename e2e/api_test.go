package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"faasd/internal/testkit"
)

// status is the part of a FunctionStatus the tests read; raw keeps the whole object.
type status struct {
	Name              string            `json:"name"`
	Image             string            `json:"image"`
	Namespace         string            `json:"namespace"`
	EnvProcess        string            `json:"envProcess"`
	EnvVars           map[string]string `json:"envVars"`
	Labels            map[string]string `json:"labels"`
	Annotations       map[string]string `json:"annotations"`
	Limits            map[string]string `json:"limits"`
	Replicas          int               `json:"replicas"`
	AvailableReplicas int               `json:"availableReplicas"`
	InvocationCount   float64           `json:"invocationCount"`
	raw               map[string]any
}

func getStatus(t *testing.T, d *testkit.Daemon, name string) status {
	t.Helper()
	code, body := d.API("GET", "/system/function/"+name, "")
	if code != 200 {
		t.Fatalf("GET function %s: %d %s", name, code, body)
	}
	var st status
	json.Unmarshal([]byte(body), &st)
	json.Unmarshal([]byte(body), &st.raw)
	return st
}

func invoke(t *testing.T, d *testkit.Daemon, method, name, query, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, d.URL+"/function/"+name+query, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// invokeUntilOK retries while a freshly deployed function starts, as clients do.
func invokeUntilOK(t *testing.T, d *testkit.Daemon, method, name, query, body string) string {
	t.Helper()
	var got string
	testkit.WaitFor(t, 20*time.Second, name+" answering 200", func() bool {
		code, b := invoke(t, d, method, name, query, body)
		got = b
		return code == 200
	})
	return got
}

func TestAPIAuth(t *testing.T) {
	d := testkit.StartDaemon(t, "", testkit.Options{Auth: true})
	for _, tc := range []struct {
		name, user, pass string
		want             int
	}{
		{"none", "", "", 401},
		{"wrong password", "admin", "nope", 401},
		{"wrong user", "root", d.Password(), 401},
		{"right", "admin", d.Password(), 200},
	} {
		req, _ := http.NewRequest("GET", d.URL+"/system/functions", nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want == 401 && (resp.Header.Get("WWW-Authenticate") != `Basic realm="Restricted"` || strings.TrimSpace(string(body)) != "invalid credentials") {
			t.Errorf("%s: 401 without the realm or message: %v %q", tc.name, resp.Header, body)
		}
	}
	// Open routes stay open, even when credentials are sent along.
	req, _ := http.NewRequest("GET", d.URL+"/healthz", nil)
	req.SetBasicAuth("admin", "wrong")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz with bad credentials: %v %v", resp, err)
	}
	if code, _ := testkit.Get(t, d.URL+"/metrics"); code != 200 {
		t.Errorf("/metrics: %d", code)
	}
	info, err := os.Stat(filepath.Join(d.Dir, "state", "credentials", "basic-auth-password"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("password file: %v %v", info, err)
	}
}

func TestAPIFunctionsContract(t *testing.T) {
	d := testkit.StartDaemon(t, workload("from-file", ""), testkit.Options{Auth: true})

	code, body := d.API("GET", "/system/info", "")
	var info struct {
		Provider struct {
			Provider, Orchestration string
			Version                 struct{ Release, SHA string }
		}
		Version struct{ Release, SHA string }
		Arch    string
	}
	json.Unmarshal([]byte(body), &info)
	if code != 200 || info.Provider.Provider == "" || info.Provider.Provider == "faasd" || info.Provider.Orchestration == "" ||
		info.Provider.Version.Release == "" || info.Provider.Version.SHA == "" || info.Version.SHA == "" || info.Arch == "" {
		t.Fatalf("info: %d %s", code, body)
	}
	if code, body := d.API("GET", "/system/namespaces", ""); code != 200 || strings.TrimSpace(body) != `["openfaas-fn"]` {
		t.Fatalf("namespaces: %d %s", code, body)
	}

	// Deploy without metadata: 202 at once, desired count set before the answer.
	code, body = d.API("POST", "/system/functions", `{"service":"stronghash","image":"functions/alpine:latest","envProcess":"sha512sum"}`)
	if code != 202 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	st := getStatus(t, d, "stronghash")
	if st.Replicas != 1 || st.Image != "functions/alpine:latest" || st.Namespace != "openfaas-fn" || st.EnvProcess != "sha512sum" {
		t.Errorf("status %+v", st)
	}
	if !reflect.DeepEqual(st.Labels, map[string]string{"faas_function": "stronghash"}) || st.Annotations == nil {
		t.Errorf("labels %v annotations %v", st.Labels, st.Annotations)
	}
	for _, absent := range []string{"envVars", "limits", "requests"} {
		if _, ok := st.raw[absent]; ok {
			t.Errorf("%s present though nothing was deployed: %v", absent, st.raw)
		}
	}
	if got := invokeUntilOK(t, d, "POST", "stronghash", "", "hello"); !strings.HasPrefix(got, "9b71d224bd62f378") {
		t.Errorf("sha512 of hello: %q", got)
	}

	// Metadata is echoed verbatim.
	annotation := "{\n  \"multi\": \"line\"\n}"
	dep, _ := json.Marshal(map[string]any{
		"service": "meta", "image": "docker.io/functions/alpine:latest", "envProcess": "env",
		"envVars": map[string]string{"custom_env": "custom_env_value"},
		"labels":  map[string]string{"canary_build": "true"}, "annotations": map[string]string{"json": annotation},
		"limits": map[string]string{"memory": "64Mi", "cpu": "100m"}, "constraints": []string{"node=x"},
	})
	if code, body := d.API("POST", "/system/functions", string(dep)); code != 202 {
		t.Fatalf("deploy meta: %d %s", code, body)
	}
	st = getStatus(t, d, "meta")
	if st.Labels["canary_build"] != "true" || st.Labels["faas_function"] != "meta" || st.Annotations["json"] != annotation ||
		!reflect.DeepEqual(st.EnvVars, map[string]string{"custom_env": "custom_env_value"}) ||
		!reflect.DeepEqual(st.Limits, map[string]string{"memory": "64Mi", "cpu": "100m"}) || st.Image != "docker.io/functions/alpine:latest" {
		t.Errorf("meta status %+v", st)
	}
	for _, verb := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		got := invokeUntilOK(t, d, verb, "meta", "?testing=1", "")
		for _, want := range []string{"Http_Method=" + verb, "custom_env=custom_env_value", "Http_Query=testing=1", "Http_Path=/", "HOSTNAME=meta"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: env output lacks %q", verb, want)
			}
		}
		for _, leaked := range []string{"FAASD_", "MARKER"} {
			if strings.Contains(got, leaked) {
				t.Errorf("the daemon's environment leaked into the function: %q", leaked)
			}
		}
	}

	// Status codes clients depend on.
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/system/functions", `{"service":"stronghash","image":"x","envProcess":"cat"}`, 409},
		{"PUT", "/system/functions", `{"service":"missing","image":"x","envProcess":"cat"}`, 404},
		{"DELETE", "/system/functions", `{"functionName":"missing"}`, 404},
		{"GET", "/system/function/missing", "", 404},
		{"POST", "/system/scale-function/missing", `{"serviceName":"missing","replicas":1}`, 404},
		{"POST", "/system/functions", `{"service":`, 400},
		{"POST", "/system/functions", `{"service":"x","image":"x","envProcess":42}`, 400},
		{"POST", "/system/functions", `{"service":"a/../b","image":"x","envProcess":"cat"}`, 400},
		{"POST", "/system/functions", `{"service":"Upper","image":"x","envProcess":"cat"}`, 400},
		{"POST", "/system/functions", `{"service":"noprocess","image":"x"}`, 400},
		{"POST", "/system/functions", `{"service":"ns","image":"x","envProcess":"cat","namespace":"other"}`, 400},
		{"POST", "/system/functions", `{"service":"sec","image":"x","envProcess":"cat","secrets":["nope"]}`, 400},
		{"POST", "/system/functions", `{"service":"lbl","image":"x","envProcess":"cat","labels":{"com.openfaas.scale.max":"lots"}}`, 400},
		{"GET", "/system/functions?namespace=other", "", 400},
		{"PUT", "/system/functions", `{"service":"from-file","image":"x","envProcess":"cat"}`, 409},
		{"DELETE", "/system/functions", `{"functionName":"from-file"}`, 409},
	} {
		if code, body := d.API(tc.method, tc.path, tc.body); code != tc.want {
			t.Errorf("%s %s %s: %d %s, want %d", tc.method, tc.path, tc.body, code, body, tc.want)
		}
	}
	// None of the rejected deployments reached the disk or the catalog.
	files, _ := filepath.Glob(filepath.Join(d.Dir, "state", "functions", "*"))
	slices.Sort(files)
	if len(files) != 2 || filepath.Base(files[0]) != "meta.json" || filepath.Base(files[1]) != "stronghash.json" {
		t.Errorf("state files %v", files)
	}
	var list []status
	_, body = d.API("GET", "/system/functions", "")
	json.Unmarshal([]byte(body), &list)
	var names []string
	for _, s := range list {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "from-file,meta,stronghash" {
		t.Errorf("list %v", names)
	}
	for _, s := range list {
		if s.Name == "stronghash" && s.InvocationCount < 1 {
			t.Errorf("invocationCount %v after an invocation", s.InvocationCount)
		}
	}

	// Update: the whole spec is replaced and replicas roll over.
	if code, body := d.API("PUT", "/system/functions", `{"service":"meta","image":"v2","envProcess":"env","envVars":{"custom_env":"v2"}}`); code != 202 {
		t.Fatalf("update: %d %s", code, body)
	}
	testkit.WaitFor(t, 20*time.Second, "the updated env", func() bool {
		code, b := invoke(t, d, "GET", "meta", "", "")
		return code == 200 && strings.Contains(b, "custom_env=v2")
	})
	if st := getStatus(t, d, "meta"); st.Image != "v2" || st.Limits != nil || st.Labels["canary_build"] != "" {
		t.Errorf("after the update %+v", st)
	}

	// Scale to zero is honoured and read back at once; a request wakes the function.
	if code, body := d.API("POST", "/system/scale-function/stronghash?namespace=openfaas-fn", `{"serviceName":"stronghash","replicas":0}`); code != 202 {
		t.Fatalf("scale: %d %s", code, body)
	}
	if st := getStatus(t, d, "stronghash"); st.Replicas != 0 {
		t.Fatalf("replicas after scale to 0: %d", st.Replicas)
	}
	if code, got := invoke(t, d, "POST", "stronghash", "", "hello"); code != 200 || !strings.HasPrefix(got, "9b71d224") {
		t.Fatalf("invoke at zero: %d %q", code, got)
	}

	// Delete: 202, then 404 for calls.
	if code, body := d.API("DELETE", "/system/functions", `{"functionName":"stronghash","namespace":"openfaas-fn"}`); code != 202 {
		t.Fatalf("delete: %d %s", code, body)
	}
	testkit.WaitFor(t, 10*time.Second, "the deleted function to 404", func() bool {
		code, _ := invoke(t, d, "GET", "stronghash", "", "")
		return code == 404
	})
}

func TestSecretsContractAndVisibilityInFunctions(t *testing.T) {
	d := testkit.StartDaemon(t, "", testkit.Options{Auth: true})
	if code, body := d.API("GET", "/system/secrets", ""); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Fatalf("empty list: %d %s", code, body)
	}
	raw := []byte{0, 1, 2, 'x', 0xff, '\n'}
	for _, tc := range []struct {
		method, body string
		want         int
	}{
		{"POST", `{"name":"secret-string","value":"s3cret"}`, 201},
		{"POST", fmt.Sprintf(`{"name":"secret-bytes","rawValue":%q}`, base64.StdEncoding.EncodeToString(raw)), 201},
		{"POST", `{"name":"secret-string","value":"again"}`, 409},
		{"POST", `{"name":"../escape","value":"x"}`, 400},
		{"POST", `{"name":"a/b","value":"x"}`, 400},
		{"POST", `{"name":"","value":"x"}`, 400},
		{"PUT", `{"name":"missing","value":"x"}`, 404},
		{"DELETE", `{"name":"missing"}`, 404},
		{"POST", `{"name":"x","value":"x","namespace":"other"}`, 400},
	} {
		if code, body := d.API(tc.method, "/system/secrets", tc.body); code != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.body, code, body, tc.want)
		}
	}
	_, body := d.API("GET", "/system/secrets", "")
	if !strings.Contains(body, `"name":"secret-string"`) || !strings.Contains(body, `"name":"secret-bytes"`) || strings.Contains(body, "s3cret") {
		t.Fatalf("list %s", body)
	}
	files, _ := filepath.Glob(filepath.Join(d.Dir, "state", "secrets", "openfaas-fn", "*"))
	for _, f := range files {
		if fi, _ := os.Stat(f); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", f, fi.Mode())
		}
	}
	if len(files) != 2 {
		t.Errorf("secret files %v", files)
	}

	for _, name := range []string{"secret-string", "secret-bytes"} {
		dep := fmt.Sprintf(`{"service":%q,"image":"functions/alpine:latest","envProcess":"cat /var/openfaas/secrets/%s","secrets":[%q]}`, name, name, name)
		if code, body := d.API("POST", "/system/functions", dep); code != 202 {
			t.Fatalf("deploy %s: %d %s", name, code, body)
		}
	}
	if got := invokeUntilOK(t, d, "GET", "secret-string", "", ""); got != "s3cret" {
		t.Errorf("secret-string reads %q", got)
	}
	if got := invokeUntilOK(t, d, "GET", "secret-bytes", "", ""); got != string(raw) {
		t.Errorf("secret-bytes reads %q", got)
	}
	// An update shows in running replicas: the very first call after it sees it.
	if code, body := d.API("PUT", "/system/secrets", `{"name":"secret-string","value":"rotated"}`); code != 200 {
		t.Fatalf("update: %d %s", code, body)
	}
	if code, got := invoke(t, d, "GET", "secret-string", "", ""); code != 200 || got != "rotated" {
		t.Errorf("after the update: %d %q", code, got)
	}
	// A secret in use stays until no function lists it.
	if code, body := d.API("DELETE", "/system/secrets", `{"name":"secret-bytes"}`); code != 409 {
		t.Errorf("delete in use: %d %s", code, body)
	}
	if code, body := d.API("DELETE", "/system/functions", `{"functionName":"secret-bytes"}`); code != 202 {
		t.Fatalf("remove secret-bytes: %d %s", code, body)
	}
	if code, body := d.API("DELETE", "/system/secrets", `{"name":"secret-bytes","value":"ignored"}`); code != 200 {
		t.Errorf("delete: %d %s", code, body)
	}
	if _, body := d.API("GET", "/system/secrets", ""); strings.Contains(body, "secret-bytes") {
		t.Errorf("deleted secret still listed: %s", body)
	}
}

func TestClassicModeLogsAndErrors(t *testing.T) {
	d := testkit.StartDaemon(t, `[functions.echo-classic]
fprocess = "cat"
[functions.fails]
fprocess = "false"
`, testkit.Options{})
	if got := invokeUntilOK(t, d, "POST", "echo-classic", "", "openfaas-fn"); got != "openfaas-fn" {
		t.Fatalf("cat: %q", got)
	}
	code, body := invoke(t, d, "POST", "fails", "", "")
	testkit.WaitFor(t, 20*time.Second, "fails to answer", func() bool {
		code, body = invoke(t, d, "POST", "fails", "", "")
		return code != 503
	})
	if code != 500 || !strings.Contains(body, "exit status 1") {
		t.Errorf("false: %d %q", code, body)
	}
	// The watchdog's lines, as OpenFaaS tools look for them.
	var texts []string
	testkit.WaitFor(t, 10*time.Second, "the watchdog's log lines", func() bool {
		_, body := d.API("GET", "/system/logs?name=echo-classic&follow=false&tail=-1", "")
		texts = nil
		for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
			var m struct{ Name, Namespace, Instance, Text string }
			if json.Unmarshal([]byte(line), &m) != nil || m.Name != "echo-classic" || m.Instance == "" || m.Namespace != "openfaas-fn" {
				t.Fatalf("bad log line %q", line)
			}
			texts = append(texts, strings.TrimLeft(m.Text, "0123456789/: "))
		}
		return slices.ContainsFunc(texts, func(s string) bool { return strings.HasPrefix(s, "Wrote 11 Bytes") })
	})
	if !slices.Contains(texts, "Forking fprocess.") {
		t.Errorf("no 'Forking fprocess.' in %q", texts)
	}
	if code, _ := d.API("GET", "/system/logs?name=echo-classic&tail=x", ""); code != 422 {
		t.Errorf("bad tail: %d", code)
	}
	if code, _ := d.API("GET", "/system/logs?name=nope", ""); code != 404 {
		t.Errorf("unknown function logs: %d", code)
	}
}

func TestLogsFollowStreamsNewLines(t *testing.T) {
	d := testkit.StartDaemon(t, `[functions.chatty]
fprocess = "cat"
`, testkit.Options{})
	invokeUntilOK(t, d, "POST", "chatty", "", "x")
	resp, err := http.Get(d.URL + "/system/logs?name=chatty&follow=true&tail=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("content type %q", resp.Header.Get("Content-Type"))
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	first := <-lines // the one historical line asked for
	if first == "" {
		t.Fatal("no history line")
	}
	// A new invocation produces new lines on the open stream.
	invoke(t, d, "POST", "chatty", "", "again")
	select {
	case line := <-lines:
		if !strings.Contains(line, "Forking fprocess.") && !strings.Contains(line, "Wrote") {
			t.Errorf("followed line %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no new line on the followed stream")
	}
}

// A crash in the middle of deploys: TestDaemonKilledDuringDeploysComesBackWhole.
func TestDeploymentsSurviveARestart(t *testing.T) {
	d := testkit.StartDaemon(t, "", testkit.Options{})
	for _, name := range []string{"one", "two"} {
		if code, body := d.API("POST", "/system/functions", fmt.Sprintf(`{"service":%q,"image":"x","envProcess":"cat","labels":{"k":"v"}}`, name)); code != 202 {
			t.Fatalf("deploy: %d %s", code, body)
		}
	}
	created := getStatus(t, d, "one").raw["createdAt"]
	d.Signal(syscall.SIGTERM)
	if err := d.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	d.Start()
	if st := getStatus(t, d, "one"); st.Labels["k"] != "v" || st.raw["createdAt"] != created {
		t.Fatalf("after restart: %+v (created %v, was %v)", st, st.raw["createdAt"], created)
	}
	if got := invokeUntilOK(t, d, "POST", "two", "", "back"); got != "back" {
		t.Fatalf("two after restart: %q", got)
	}
}
