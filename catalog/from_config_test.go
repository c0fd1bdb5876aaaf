package catalog

import (
	"path/filepath"
	"testing"

	"faasd/config"
)

// A function of a stack file, deployed through the API, runs exactly as the file says.
func TestDeploymentForRoundTrips(t *testing.T) {
	dir := t.TempDir()
	text := `
[gateway]
upstream_timeout = "75s"

[functions.web]
workdir = "web"
command = ["./server", "--flag"]
env = { A = "1" }
labels = { "com.openfaas.scale.max" = "3" }
annotations = { team = "x" }
hosts = ["web.example.com"]
secrets = ["db"]
user = "daemon"
lock_file = "/tmp/ready"
readiness_timeout = "5s"
health_interval = 0
drain_timeout = "3s"
stop_grace = "2s"
build = ["make"]
limits = { memory = "128Mi", cpu = "500m", pids = 64 }
requests = { cpu = "0.1" }

[functions.classic]
fprocess = "sha512sum"
limits = { memory = "1G" }
`
	cfg, err := config.Parse(filepath.Join(dir, "faasd.toml"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range cfg.Functions {
		d := DeploymentFor(f)
		// The daemon that receives it lets the API choose that account.
		got, err := specOf(&d, config.Gateway{UpstreamTimeout: 5 * 60e9, APIUsers: []string{"daemon"}}, config.OwnNames{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got.Build = f.Build // not sent: the client builds
		if !got.Equal(f) {
			t.Errorf("%s: deployed as\n%+v\nfile says\n%+v", name, got, f)
		}
	}
}
