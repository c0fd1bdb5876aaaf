package config

import (
	"net"
	"os"
	"strings"
	"testing"
)

func TestOwnNamesRefuseEveryNameOfTheGateway(t *testing.T) {
	own := LocalNames(Gateway{Listen: "gw.example.com:8080", AdminListen: "10.9.8.7:8081"})
	refused := []string{
		"localhost", "LOCALHOST", "localhost.", "app.localhost",
		"127.0.0.1", "127.0.0.2", "127.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.0.0.01", "127.0.0.1.",
		"::1", "[::1]", "[0:0:0:0:0:0:0:1]", "::ffff:127.0.0.1", "0.0.0.0", "0", "::", "[::]",
		"gw.example.com", "GW.Example.Com.", "10.9.8.7",
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		refused = append(refused, h, strings.ToUpper(h))
	}
	// Every address of every interface of this machine, in both spellings.
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				refused = append(refused, ipn.IP.String(), "["+ipn.IP.String()+"]")
			}
		}
	}
	for _, h := range refused {
		if err := own.Check(h); err == nil || !strings.Contains(err.Error(), "reaches the gateway itself") {
			t.Errorf("Check(%q) = %v, want it refused", h, err)
		}
	}
	for _, h := range []string{"api.example.com", "example.com", "192.0.2.10", "2001:db8::1", "localhost.example.com", "1e100.net", "127.0.0.1.example"} {
		if err := own.Check(h); err != nil {
			t.Errorf("Check(%q) = %v, want it free", h, err)
		}
	}
}

func TestParseHostIPReadsWhatClientsAccept(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"127.0.0.1", "127.0.0.1"}, {"127.1", "127.0.0.1"}, {"10.1.2", "10.1.0.2"}, {"0x0a.0.0.1", "10.0.0.1"},
		{"012.0.0.1", "10.0.0.1"}, {"4294967295", "255.255.255.255"}, {"::ffff:10.0.0.1", "10.0.0.1"}, {"fe80::1%eth0", "fe80::1"},
		{"256.0.0.1", ""}, {"1.2.3.4.5", ""}, {"1.2.65536", ""}, {"4294967296", ""}, {"08.0.0.1", ""}, {"0x", ""},
		{"+1.2.3.4", ""}, {"1..2", ""}, {"", ""}, {"example", ""},
	} {
		ip, ok := parseHostIP(tc.in)
		got := ""
		if ok {
			got = ip.String()
		}
		if got != tc.want {
			t.Errorf("parseHostIP(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
