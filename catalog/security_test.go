package catalog

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"faasd/api"
	"faasd/config"
	"faasd/statedir"
)

func TestAPIDeploymentsRunAsTheDefaultUserUnlessAllowed(t *testing.T) {
	strict := gateway
	allowing := gateway
	allowing.APIUsers = []string{"app", "root"}
	for _, tc := range []struct {
		name string
		g    config.Gateway
		user string
		err  string
	}{
		{"default account", strict, "", ""},
		{"root", strict, "root", `user: "root" may not be chosen through the API`},
		{"another account", strict, "daemon", `user: "daemon" may not be chosen`},
		{"nobody named", strict, "nobody", `user: "nobody" may not be chosen`},
		{"allowed account", allowing, "app", ""},
		{"root named in api_users", allowing, "root", ""},
		{"account not listed", allowing, "daemon", "api_users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := api.Deployment{Service: "f", Command: []string{"/bin/sh", "-c", "id"}, User: tc.user}
			f, err := specOf(&d, tc.g, config.LocalNames(tc.g))
			if tc.err != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want ErrInvalid with %q", err, tc.err)
				}
				return
			}
			if err != nil || f.User != tc.user {
				t.Fatalf("spec %+v, %v", f, err)
			}
		})
	}
}

// A deployment persisted before its user was refused (an older version, or api_users
// changed since) is not run as that user after a restart.
func TestPersistedDeploymentWithAForbiddenUserIsNotLoaded(t *testing.T) {
	dir := t.TempDir()
	g := gateway
	g.APIUsers = []string{"root"}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r, err := Open(statedir.New(dir), g, &applied{}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Create(api.Deployment{Service: "rooted", EnvProcess: "id", User: "root"}); err != nil {
		t.Fatal(err)
	}
	a := &applied{}
	r2, err := Open(statedir.New(dir), gateway, a, log)
	if err != nil {
		t.Fatal(err)
	}
	r2.SetFile("faasd.toml", nil)
	if _, ok := r2.Get("rooted"); ok || a.last["rooted"] != nil {
		t.Fatalf("a deployment as root was loaded without api_users allowing it")
	}
	if !strings.Contains(logs.String(), "deployed function not loaded") || !strings.Contains(logs.String(), "api_users") {
		t.Errorf("no reason logged:\n%s", logs.String())
	}
}

func TestHostsOfTheGatewayOrAnotherFunctionAreRefused(t *testing.T) {
	r, a := open(t, t.TempDir())
	r.SetFile("faasd.toml", map[string]*config.Function{
		"from-file": {Name: "from-file", Command: []string{"srv"}, Hosts: []string{"file.example"}},
	})
	for _, tc := range []struct {
		hosts []string
		want  error
	}{
		{[]string{"127.0.0.1"}, ErrInvalid},
		{[]string{"localhost"}, ErrInvalid},
		{[]string{"[::1]"}, ErrInvalid},
		{[]string{"ok.example", "127.1"}, ErrInvalid},
		{[]string{"file.example"}, ErrConflict},
		{[]string{"FILE.example"}, ErrConflict},
	} {
		err := r.Create(api.Deployment{Service: "grabber", EnvProcess: "cat", Hosts: tc.hosts})
		if !errors.Is(err, tc.want) {
			t.Errorf("hosts %q: %v, want %v", tc.hosts, err, tc.want)
		}
	}
	if _, ok := r.Get("grabber"); ok {
		t.Fatal("a refused deployment was kept")
	}
	if err := r.Create(api.Deployment{Service: "one", EnvProcess: "cat", Hosts: []string{"one.example"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Create(api.Deployment{Service: "two", EnvProcess: "cat", Hosts: []string{"one.example"}}); !errors.Is(err, ErrConflict) ||
		!strings.Contains(err.Error(), "function one has it") {
		t.Fatalf("second claim of a host: %v", err)
	}
	// Updating a function with its own hosts is no conflict.
	if err := r.Update(api.Deployment{Service: "one", EnvProcess: "wc", Hosts: []string{"one.example"}}); err != nil {
		t.Fatal(err)
	}
	if got := a.last["one"].Hosts; len(got) != 1 || got[0] != "one.example" {
		t.Fatalf("hosts applied %q", got)
	}
}

// When the file claims a host that a deployed function has, the file wins, the same way
// every time; the deployed function keeps running without that host.
func TestTheFileWinsAHostClaimedByADeployedFunction(t *testing.T) {
	var logs strings.Builder
	a := &applied{}
	r, err := Open(statedir.New(t.TempDir()), gateway, a, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r.SetFile("faasd.toml", nil)
	if err := r.Create(api.Deployment{Service: "deployed", EnvProcess: "cat", Hosts: []string{"shared.example", "mine.example"}}); err != nil {
		t.Fatal(err)
	}
	for range 20 { // map order must not matter
		r.SetFile("faasd.toml", map[string]*config.Function{
			"file-fn": {Name: "file-fn", Command: []string{"srv"}, Hosts: []string{"shared.example"}},
		})
		if got := a.last["deployed"].Hosts; len(got) != 1 || got[0] != "mine.example" {
			t.Fatalf("deployed function's hosts %q, want only mine.example", got)
		}
		if got := a.last["file-fn"].Hosts; len(got) != 1 || got[0] != "shared.example" {
			t.Fatalf("file function's hosts %q", got)
		}
	}
	if !strings.Contains(logs.String(), "host name dropped from a deployed function") {
		t.Errorf("no warning:\n%s", logs.String())
	}
	// What was deployed is still reported as deployed.
	if got, _ := r.Get("deployed"); len(got.Deployment.Hosts) != 2 {
		t.Errorf("deployment %+v", got.Deployment)
	}
}

func TestSecretInUseIsNotDeleted(t *testing.T) {
	r, _ := open(t, t.TempDir())
	for _, name := range []string{"db", "spare"} {
		if err := r.Secrets().Put(name, []byte("v"), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Create(api.Deployment{Service: "api-fn", EnvProcess: "cat", Secrets: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	r.SetFile("faasd.toml", map[string]*config.Function{
		"file-fn": {Name: "file-fn", Command: []string{"srv"}, Secrets: []string{"db"}},
	})
	err := r.DeleteSecret("db")
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "api-fn, file-fn") {
		t.Fatalf("delete of a secret in use: %v", err)
	}
	if !r.Secrets().Exists("db") {
		t.Fatal("the secret is gone")
	}
	if err := r.DeleteSecret("spare"); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteSecret("spare"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	r.SetFile("faasd.toml", nil)
	if err := r.Delete("api-fn"); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteSecret("db"); err != nil {
		t.Fatalf("delete once nobody uses it: %v", err)
	}
}
