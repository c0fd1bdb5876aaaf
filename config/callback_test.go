package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func callbackAllow(t *testing.T, entries ...string) CallbackAllow {
	t.Helper()
	if entries == nil {
		return CallbackAllow{}
	}
	if entries[0] == "" {
		entries = []string{}
	}
	a, err := parseCallbackAllow(&entries)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCallbackAllowDecidesWhereCallbacksGo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		allow []string // nil: the key left out; {""}: an empty list
		host  string   // the callback URL's host
		ip    string   // the address a connection goes to; "": the host itself
		// accept and connect are the refusals expected before the call is stored and
		// when the callback connects: "" for none, else part of the message.
		accept, connect string
	}{
		{name: "by default the gateway itself", host: "127.0.0.1"},
		{name: "by default a name on loopback", host: "localhost", ip: "::1"},
		{name: "by default any public address", host: "hooks.example.com", ip: "203.0.113.9"},
		{name: "never the metadata service", host: "169.254.169.254", accept: "169.254.169.254 is link-local", connect: "within 169.254.0.0/16"},
		{name: "nor the metadata service by another spelling", host: "0xa9fea9fe", accept: "link-local", connect: "link-local"},
		{name: "nor mapped into IPv6", host: "::ffff:169.254.169.254", accept: "link-local", connect: "link-local"},
		{name: "nor IPv6 link-local with a zone", host: "fe80::1%eth0", accept: "is link-local", connect: "is link-local"},
		{name: "nor EC2's IPv6 metadata address", host: "fd00:ec2::254", accept: "metadata service of EC2", connect: "metadata"},
		{name: "nor unspecified", host: "0.0.0.0", accept: "unspecified", connect: "unspecified"},
		{name: "nor unspecified IPv6", host: "::", accept: "unspecified", connect: "unspecified"},
		{name: "nor multicast", host: "239.1.2.3", accept: "multicast", connect: "multicast"},
		{name: "a name passes until it resolves to link-local", host: "metadata.google.internal", ip: "169.254.169.254", connect: "link-local"},
		{name: "a listed name does not open link-local", allow: []string{"metadata.google.internal"}, host: "metadata.google.internal", ip: "169.254.169.254", connect: "link-local"},
		{name: "a broad prefix does not name link-local", allow: []string{"0.0.0.0/0"}, host: "169.254.169.254", accept: "link-local", connect: "link-local"},
		{name: "an entry within link-local names it", allow: []string{"169.254.169.254"}, host: "169.254.169.254"},
		{name: "a prefix within fe80::/10 names it", allow: []string{"fe80::/64"}, host: "fe80::1"},
		{name: "an address in a listed prefix", allow: []string{"10.0.0.0/8"}, host: "10.1.2.3"},
		{name: "an address outside the list", allow: []string{"10.0.0.0/8"}, host: "192.0.2.1", accept: "192.0.2.1 is not in [queue] callback_allow", connect: "not in"},
		{name: "loopback once the list is set and does not name it", allow: []string{"10.0.0.0/8"}, host: "127.0.0.1", accept: "not in", connect: "not in"},
		{name: "a name is left to the connection when addresses are listed", allow: []string{"10.0.0.0/8"}, host: "svc.internal", ip: "10.9.9.9"},
		{name: "a name resolving outside the listed addresses", allow: []string{"10.0.0.0/8"}, host: "localhost", ip: "127.0.0.1", connect: "localhost resolves to 127.0.0.1, which [queue] callback_allow does not name"},
		{name: "a name that no entry names, with no address entries", allow: []string{"hooks.example.com"}, host: "evil.example.net", ip: "203.0.113.9", accept: `"evil.example.net" is not in`, connect: "does not name"},
		{name: "an exact name, in any case, rooted", allow: []string{"Hooks.Example.com"}, host: "hooks.example.com.", ip: "10.0.0.1"},
		{name: "a name below a wildcard", allow: []string{"*.example.com"}, host: "a.b.example.com", ip: "198.51.100.1"},
		{name: "not the wildcard's own name", allow: []string{"*.example.com"}, host: "example.com", ip: "198.51.100.1", accept: "not in", connect: "does not name"},
		{name: "not a name that merely ends alike", allow: []string{"*.example.com"}, host: "badexample.com", ip: "198.51.100.1", accept: "not in", connect: "does not name"},
		{name: "an empty list refuses everything", allow: []string{""}, host: "127.0.0.1", accept: "not in", connect: "not in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := callbackAllow(t, tc.allow...)
			check := func(stage string, err error, want string) {
				t.Helper()
				switch {
				case want == "" && err != nil:
					t.Errorf("%s: refused: %v", stage, err)
				case want != "" && (err == nil || !errors.Is(err, ErrCallbackRefused) || !strings.Contains(err.Error(), want)):
					t.Errorf("%s: %v, want a refusal saying %q", stage, err, want)
				}
			}
			check("accept", a.Host(tc.host), tc.accept)
			ip := tc.ip
			if ip == "" {
				ip = tc.host
			}
			addr, ok := parseHostIP(normalHost(ip))
			if !ok {
				t.Fatalf("%q is no address", ip)
			}
			check("connect", a.Addr(tc.host, addr), tc.connect)
		})
	}
}

func TestCallbackAllowIsReadFromQueue(t *testing.T) {
	cfg, err := Parse("/srv/f.toml", []byte("[queue]\ncallback_allow = [\"10.0.0.0/8\", \"127.0.0.1\", \"::1\", \"Hooks.example.com\", \"*.svc.internal\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Queue.CallbackAllow
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
	if !a.Set || len(a.Prefixes) != 3 || a.Prefixes[0] != want[0] || a.Prefixes[1] != want[1] || a.Prefixes[2] != want[2] ||
		strings.Join(a.Names, " ") != "hooks.example.com *.svc.internal" {
		t.Errorf("callback_allow = %+v", a)
	}
	if cfg, err := Parse("/srv/f.toml", []byte("[queue]\ncallback_allow = []\n")); err != nil || !cfg.Queue.CallbackAllow.Set {
		t.Errorf("an empty list: %+v, %v", cfg, err)
	}

	for _, tc := range []struct{ entry, want string }{
		{"10.0.0.0/33", `/srv/f.toml:3: queue: callback_allow: "10.0.0.0/33" is not an address, a CIDR prefix or a host name`},
		{"10.0.0.300", `callback_allow: "10.0.0.300" is not`},
		{"http://hooks.example.com", `callback_allow: "http://hooks.example.com" is not`},
		{"hooks.*.com", `callback_allow: "hooks.*.com" is not`},
		{"*", `callback_allow: "*" is not`},
		{"", `callback_allow: "" is not`},
	} {
		_, err := Parse("/srv/f.toml", []byte("[queue]\n\ncallback_allow = [\"127.0.0.1\", \""+tc.entry+"\"]\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.entry, err, tc.want)
		}
	}
}
