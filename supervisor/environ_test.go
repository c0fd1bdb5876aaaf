package supervisor

import (
	"slices"
	"testing"
)

func TestEnvironLeaksOnlyPathAndLocaleAndKeepsFixedValuesLast(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("LC_ALL", "C.UTF-8")
	t.Setenv("TZ", "Europe/Paris")
	t.Setenv("DAEMON_SECRET", "must not leak")
	for _, c := range []struct {
		name     string
		c        credentials
		defaults []string
		user     map[string]string
		fixed    []string
		want     []string
	}{
		{"daemon's own account", credentials{}, []string{"HOME=/tmp"}, nil, []string{"PORT=8080"},
			[]string{"PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TZ=Europe/Paris", "PORT=8080"}},
		{"another account, the user's env sorted, overriding defaults but not fixed values",
			credentials{set: true, name: "mysql"}, []string{"HOME=/data"},
			map[string]string{"Z": "1", "HOME": "/elsewhere", "DATA_DIR": "/wrong"}, []string{"DATA_DIR=/data"},
			[]string{"PATH=/usr/bin:/bin", "HOME=/data", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TZ=Europe/Paris", "USER=mysql", "LOGNAME=mysql",
				"DATA_DIR=/wrong", "HOME=/elsewhere", "Z=1", "DATA_DIR=/data"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := environ(c.c, c.defaults, c.user, c.fixed...); !slices.Equal(got, c.want) {
				t.Errorf("environ = %q\nwant %q", got, c.want)
			}
		})
	}
}
