package config

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// OwnNames are the names and addresses by which clients reach the gateway itself. A
// function that claimed one of them in `hosts` would receive every request sent to the
// gateway by that name, other functions' calls and the admin's credentials included, so
// no function may claim one.
type OwnNames struct {
	names map[string]bool
	addrs map[netip.Addr]bool
}

// LocalNames collects the gateway's own names as they are now: the hosts of its listen
// addresses, localhost, this machine's host name, and every address of every interface.
// It reads the interfaces, so callers ask for it when they check hosts, not once at start.
func LocalNames(g Gateway) OwnNames {
	n := OwnNames{names: map[string]bool{}, addrs: map[netip.Addr]bool{}}
	for _, l := range []string{g.Listen, g.AdminListen} {
		if host, _, err := net.SplitHostPort(l); err == nil && host != "" {
			n.add(host)
		}
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		n.add(h)
		if short, _, ok := strings.Cut(h, "."); ok {
			n.add(short)
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(p.IP); ok {
					n.addrs[ip.Unmap()] = true
				}
			}
		}
	}
	return n
}

func (n OwnNames) add(host string) {
	h := normalHost(host)
	if ip, ok := parseHostIP(h); ok {
		n.addrs[ip] = true
		return
	}
	n.names[h] = true
}

// Check returns why host reaches the gateway itself, or nil when a function may claim it.
func (n OwnNames) Check(host string) error {
	h := normalHost(host)
	if ip, ok := parseHostIP(h); ok {
		switch {
		case ip.IsLoopback() || ip.IsUnspecified():
			return fmt.Errorf("%q is a loopback address: it reaches the gateway itself", host)
		case n.addrs[ip]:
			return fmt.Errorf("%q is an address of this machine: it reaches the gateway itself", host)
		}
		return nil
	}
	switch {
	case h == "localhost" || strings.HasSuffix(h, ".localhost"):
		return fmt.Errorf("%q names this machine (localhost): it reaches the gateway itself", host)
	case n.names[h]:
		return fmt.Errorf("%q is the gateway's own name: it reaches the gateway itself", host)
	}
	return nil
}

// normalHost is a host as clients may write it, reduced to one spelling: lower case,
// without brackets around an IPv6 address and without the trailing dot of a rooted name.
func normalHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return strings.TrimSuffix(h, ".")
}

// parseHostIP reads an IP literal, including the IPv4 forms that inet_aton and so curl
// and many other clients accept ("127.1", "0x7f000001", "017700000001"): each of them
// reaches the same address as its dotted-quad spelling.
func parseHostIP(h string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.WithZone("").Unmap(), true
	}
	parts := strings.Split(h, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base, digits := 10, p
		switch {
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, digits = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil || digits == "" || digits[0] == '+' {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	// Every part but the last is one byte; the last fills the bytes that remain.
	var ip uint32
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		ip |= uint32(v) << (24 - 8*i)
	}
	last, room := vals[len(vals)-1], 4-(len(vals)-1)
	if room < 4 && last >= 1<<(8*room) {
		return netip.Addr{}, false
	}
	ip |= uint32(last)
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}

// checkOwnHosts refuses file functions that claim one of the gateway's own names.
func checkOwnHosts(cfg *Config, loc locator, probs *problems) {
	var own *OwnNames
	for _, name := range slices.Sorted(maps.Keys(cfg.Functions)) {
		for _, h := range cfg.Functions[name].Hosts {
			if own == nil {
				n := LocalNames(cfg.Gateway)
				own = &n
			}
			if err := own.Check(h); err != nil {
				loc.report(probs, []string{"functions", name}, fmt.Errorf("hosts: %w", err))
			}
		}
	}
}
