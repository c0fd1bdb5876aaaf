package catalog

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"faasd/api"
	"faasd/config"
)

// FuzzDeploymentSpec feeds /system/functions bodies through what the API does with them:
// decode, then turn into a spec. A refusal is always ErrInvalid (400, nothing kept); what
// is accepted never runs as a user or takes a host the gateway did not allow, and deploys
// again, through DeploymentFor, as exactly the same spec.
func FuzzDeploymentSpec(f *testing.F) {
	for _, seed := range []string{
		`{"service":"stronghash","image":"functions/alpine:latest","envProcess":"sha512sum"}`,
		`{"service":"web","command":["./srv","-v"],"workdir":"/srv","user":"app","hosts":["Web.Example"],"timeout":"90s","lockFile":"/tmp/ready"}`,
		`{"service":"x","envProcess":"cat","user":"root","hosts":["127.1","[::1]"],"lockFile":"/tmp/.."}`,
		`{"service":"y","envProcess":"env","envVars":{"Http_Method":"x","A":"1"},"labels":{"com.openfaas.scale.min":"3"},"secrets":["db"]}`,
		`{"service":"z","command":["a"],"drainTimeout":"0s","healthInterval":"0","stopGrace":"1ns","readinessTimeout":"2562047h"}`,
	} {
		f.Add([]byte(seed))
	}
	g := config.Gateway{UpstreamTimeout: time.Minute, APIUsers: []string{"app"}}
	own := config.LocalNames(g)
	f.Fuzz(func(t *testing.T, body []byte) {
		var d api.Deployment
		if json.Unmarshal(body, &d) != nil {
			return
		}
		spec, err := specOf(&d, g, own)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("refused without ErrInvalid: %v", err)
			}
			return
		}
		if spec.User != "" && !slices.Contains(g.APIUsers, spec.User) {
			t.Fatalf("runs as %q", spec.User)
		}
		for _, h := range spec.Hosts {
			if err := own.Check(h); err != nil {
				t.Fatalf("takes host %q: %v", h, err)
			}
		}
		if config.ValidName(spec.Name) != nil || !filepath.IsAbs(spec.Workdir) || filepath.Dir(spec.LockFile) != "/tmp" {
			t.Fatalf("accepted %+v", spec)
		}
		again := DeploymentFor(spec)
		spec2, err := specOf(&again, g, own)
		if err != nil || !spec2.Equal(spec) {
			t.Fatalf("deployed again as\n%+v (%v)\nwas\n%+v", spec2, err, spec)
		}
	})
}
