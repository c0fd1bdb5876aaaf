package config

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// ErrCallbackRefused marks a callback the daemon will not send: its URL names, or its
// host name resolves to, an address [queue] callback_allow does not allow. It is final:
// asking again gets the same answer.
var ErrCallbackRefused = errors.New("callback refused")

// CallbackAllow is [queue] callback_allow: where the daemon may POST the results of
// asynchronous calls. /async-function/* is open and the daemon sits on the host's
// network, so without it any client could make the host send requests to addresses only
// the host reaches, such as a cloud's metadata service.
type CallbackAllow struct {
	Set      bool           // the key is present: what it does not name is refused
	Prefixes []netip.Prefix // addresses and CIDR prefixes
	Names    []string       // host names in lower case; "*.example.com" is any name below example.com
}

// guarded are the addresses a callback never reaches unless an entry within them names
// them (0.0.0.0/0 does not): link-local ones, where metadata services answer, the few
// metadata services outside link-local, and addresses that are nobody's in particular.
var guarded = []guardedRange{
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (where cloud metadata services answer)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "the metadata service of EC2"},
	{netip.MustParsePrefix("100.100.100.200/32"), "the metadata service of Alibaba Cloud"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

type guardedRange struct {
	prefix netip.Prefix
	what   string
}

// hostName is a DNS name, or "*." and one. parseCallbackAllow also wants its last label
// not to be a number, so that a misspelt address is not taken for a name.
var hostName = regexp.MustCompile(`^(\*\.)?([a-z0-9_]([-a-z0-9_]*[a-z0-9_])?\.)*[a-z0-9_]([-a-z0-9_]*[a-z0-9_])?$`)

func parseCallbackAllow(entries *[]string) (CallbackAllow, error) {
	if entries == nil {
		return CallbackAllow{}, nil
	}
	a := CallbackAllow{Set: true}
	var errs []error
	for _, v := range *entries {
		if p, err := parsePrefix(v); err == nil {
			a.Prefixes = append(a.Prefixes, p)
			continue
		}
		h := normalHost(v)
		if ip, ok := parseHostIP(h); ok {
			a.Prefixes = append(a.Prefixes, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		last := h[strings.LastIndexByte(h, '.')+1:]
		if !hostName.MatchString(h) || strings.Trim(last, "0123456789") == "" {
			errs = append(errs, fmt.Errorf("callback_allow: %q is not an address, a CIDR prefix or a host name (like 10.0.0.0/8, 192.0.2.7, hooks.example.com or *.example.com)", v))
			continue
		}
		a.Names = append(a.Names, h)
	}
	return a, errors.Join(errs...)
}

// Host says why a callback URL whose host is host is refused before its call is
// stored, or returns nil. An address is checked as a connection to it would be. A name
// that no entry names may still resolve into an address entry, so it is left to the
// connection, unless there are no address entries.
func (a CallbackAllow) Host(host string) error {
	h := normalHost(host)
	if ip, ok := parseHostIP(h); ok {
		return a.Addr(h, ip)
	}
	if !a.Set || len(a.Prefixes) > 0 || a.named(h) {
		return nil
	}
	return fmt.Errorf("%w: %q is not in [queue] callback_allow", ErrCallbackRefused, h)
}

// Addr says why a callback to host (its URL's host, a name or an address) may not
// connect to ip, or returns nil. It is checked on every connection, with the address
// the connection goes to, so that a name resolving elsewhere by the time of the call
// cannot take the callback where its URL could not.
func (a CallbackAllow) Addr(host string, ip netip.Addr) error {
	ip = ip.WithZone("").Unmap()
	g, isGuarded := guardOf(ip)
	for _, p := range a.Prefixes {
		if p.Contains(ip) && (!isGuarded || p.Bits() >= g.prefix.Bits()) {
			return nil
		}
	}
	switch {
	case isGuarded:
		return fmt.Errorf("%w: %s is %s; only a [queue] callback_allow entry within %s allows it", ErrCallbackRefused, ip, g.what, g.prefix)
	case !a.Set || a.named(normalHost(host)):
		return nil
	case !isAddr(host):
		return fmt.Errorf("%w: %s resolves to %s, which [queue] callback_allow does not name", ErrCallbackRefused, host, ip)
	}
	return fmt.Errorf("%w: %s is not in [queue] callback_allow", ErrCallbackRefused, ip)
}

// guardOf returns the guarded range ip is in, if any.
func guardOf(ip netip.Addr) (guardedRange, bool) {
	for _, g := range guarded {
		if g.prefix.Contains(ip) {
			return g, true
		}
	}
	return guardedRange{}, false
}

// named reports whether a name entry matches the host name h, already normal.
func (a CallbackAllow) named(h string) bool {
	for _, n := range a.Names {
		if suffix, wild := strings.CutPrefix(n, "*"); wild {
			if len(h) > len(suffix) && strings.HasSuffix(h, suffix) {
				return true
			}
		} else if h == n {
			return true
		}
	}
	return false
}

// isAddr reports whether host is an address, however spelt, rather than a name.
func isAddr(host string) bool {
	_, ok := parseHostIP(normalHost(host))
	return ok
}
