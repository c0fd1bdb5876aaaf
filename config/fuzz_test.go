package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds faasd.toml files to the parser: it never panics, every error names the
// file, and whatever it accepts is a spec the rest of the daemon may rely on.
func FuzzParse(f *testing.F) {
	if repo, err := os.ReadFile(filepath.Join("..", "faasd.toml")); err == nil {
		f.Add(repo)
	}
	for _, seed := range []string{
		"[gateway]\nlisten = \"127.0.0.1:9\"\nadmin_listen = \"127.0.0.1:10\"\napi_users = [\"app\"]\n",
		"[functions.a]\ncommand = [\"./srv\"]\nhosts = [\"A.example\", \"localhost\"]\nlock_file = \"/tmp/..\"\n",
		"[functions.b]\nfprocess = \"cat\"\nlabels = { \"com.openfaas.scale.min\" = \"2\", \"com.openfaas.scale.max\" = \"1\" }\n",
		"[services.db]\ncommand = [\"./db\"]\nready_tcp = \"127.0.0.1:1\"\n[functions.c]\ncommand = [\"x\"]\ndepends_on = [\"db\"]\n",
		"[functions.\"a.b\"]\ncommand = [\"x\"]\ntimeout = 5\nreadiness_timeout = \"-1s\"\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "/fuzz/faasd.toml"
		cfg, err := Parse(path, data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		g := cfg.Gateway
		if !filepath.IsAbs(g.StateDir) || g.Listen == "" || g.MaxBodyBytes <= 0 || g.ScaleInterval <= 0 || (g.AdminListen != "" && g.AdminListen == g.Listen) {
			t.Fatalf("accepted gateway %+v", g)
		}
		own := LocalNames(g)
		for name, fn := range cfg.Functions {
			if fn.Name != name || ValidName(name) != nil || !filepath.IsAbs(fn.Workdir) || filepath.Dir(fn.LockFile) != "/tmp" {
				t.Fatalf("accepted function %q: %+v", name, fn)
			}
			for _, h := range fn.Hosts {
				if err := own.Check(h); err != nil || h != strings.ToLower(h) {
					t.Fatalf("accepted host %q of %s: %v", h, name, err)
				}
			}
			if fn.Timeout <= 0 || fn.ReadinessTimeout <= 0 || fn.DrainTimeout <= 0 || fn.StopGrace <= 0 || fn.HealthInterval < 0 {
				t.Fatalf("accepted durations of %s: %+v", name, fn)
			}
			// Validation is idempotent: the API validates specs that came from the file.
			before := *fn
			if err := fn.Validate(cfg.Gateway.ScaleDefaults); err != nil || !before.Equal(fn) {
				t.Fatalf("%s validated once but not twice: %v", name, err)
			}
		}
	})
}

// FuzzParseScalePolicy feeds scaling labels to the policy parser: what it accepts is a
// policy the scaler can apply without dividing by zero or looping.
func FuzzParseScalePolicy(f *testing.F) {
	f.Add("1", "5", "false", "5m", "5", "rps", "0.9")
	f.Add("0", "0", "true", "-1s", "0", "cpu", "1.5")
	f.Add("1000", "", "yes", "90", "NaN", "capacity", "1e-300")
	f.Add("+3", "0x10", "T", "1h1h", "Inf", "", "0")
	f.Fuzz(func(t *testing.T, min, max, zero, zeroDuration, target, typ, proportion string) {
		labels := map[string]string{}
		for k, v := range map[string]string{
			LabelScaleMin: min, LabelScaleMax: max, LabelScaleZero: zero, LabelScaleZeroDuration: zeroDuration,
			LabelScaleTarget: target, LabelScaleType: typ, LabelScaleTargetProportion: proportion,
		} {
			if v != "" {
				labels[k] = v
			}
		}
		p, err := ParseScalePolicy(DefaultScalePolicy, labels)
		if err != nil {
			if !strings.Contains(err.Error(), "com.openfaas.scale.") {
				t.Fatalf("error does not name the label: %v", err)
			}
			return
		}
		switch {
		case p.Min < 0 || p.Max < 1 || p.Min > p.Max || p.Max > 1000:
			t.Fatalf("replicas out of range: %+v", p)
		case !(p.Target > 0) || !(p.TargetProportion > 0 && p.TargetProportion <= 1):
			t.Fatalf("target out of range: %+v", p)
		case p.ZeroDuration <= 0 || p.ZeroDuration > time.Duration(1<<63-1):
			t.Fatalf("zero-duration out of range: %+v", p)
		case p.Type != ScaleRPS && p.Type != ScaleCapacity:
			t.Fatalf("type %q", p.Type)
		}
	})
}
