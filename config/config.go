// Package config owns faasd.toml: its schema, defaults, validation and the Function spec
// that every other package reads. It parses with file:line errors and does no I/O beyond
// reading the file and, to refuse `hosts` that are the gateway's own, this machine's
// interface addresses and host name.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Defaults a user sees when a key is left out.
const (
	DefaultListen           = "127.0.0.1:8080"
	DefaultStateDir         = ".faasd"
	DefaultLockFile         = "/tmp/.lock"
	DefaultTimeout          = 60 * time.Second
	DefaultReadinessTimeout = 30 * time.Second
	DefaultHealthInterval   = 10 * time.Second
	DefaultStopGrace        = 10 * time.Second
	DefaultMaxBodyBytes     = 64 << 20
	// DefaultMaxConnsPerClient is far above what a browser (6) or a client library's
	// pool opens, and above a load test of hundreds of connections from one machine,
	// yet keeps one address from taking the daemon's file descriptors.
	DefaultMaxConnsPerClient = 1024
)

// Config is one parsed faasd.toml.
type Config struct {
	Path      string // absolute path of the file, for messages and reloads
	Gateway   Gateway
	Queue     Queue // asynchronous invocations, see queue.go
	Functions map[string]*Function
	Services  map[string]*Service // supervised dependencies, see service.go
	Secrets   map[string]*Secret  // secrets the file needs, made when missing; see secret.go
}

// Gateway holds the daemon-wide settings of the [gateway] table.
type Gateway struct {
	Listen   string // address of the one shared port
	StateDir string // absolute; replica dirs, deployed functions, secrets, credentials
	Auth     bool   // basic auth on /system and /ui

	// AdminListen, when set, is the only address that serves /system, /ui and /metrics;
	// Listen then serves functions and /healthz, so that no function shares the UI's origin.
	AdminListen string
	// APIUsers are the accounts a deployment through the API may ask to run as. Anything
	// else, root included, is for faasd.toml alone.
	APIUsers []string
	// UserRange holds the ids of the accounts that functions and services without a
	// `user` get, one each, when the daemon is root.
	UserRange IDRange
	// TrustedProxies are the proxies in front of the gateway: their X-Forwarded-* fields
	// are passed on to functions (extended), anyone else's replaced, and their
	// connections are not capped by MaxConnsPerClient.
	TrustedProxies []netip.Prefix
	// MaxConnsPerClient caps the connections one client address (IPv6: one /64) holds
	// open at once; 0 lifts the cap.
	MaxConnsPerClient int

	// ReadTimeout and WriteTimeout bound every request but function calls, which their
	// function's own Timeout bounds instead (no hidden cap sits in the chain), and log
	// follows: the API, the UI, /metrics, /healthz, and every answer the gateway gives
	// without calling a function (404, 401, ...).
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	ReadHeaderTimeout time.Duration // against clients that never finish their headers
	UpstreamTimeout   time.Duration // default Timeout of a function
	MaxBodyBytes      int64         // largest request body accepted, in bytes

	ScaleFromZeroTimeout time.Duration // how long a request waits for a replica to become ready
	MaxHeldRequests      int           // requests per function that may wait at once
	ScaleInterval        time.Duration // autoscaler tick
	ScaleDownWindow      time.Duration // stabilization window before scaling down
	ScaleDefaults        ScalePolicy   // the policy of a function without scaling labels
}

// Equal reports whether two gateway tables are the same. Deep, because of its lists.
func (g Gateway) Equal(o Gateway) bool { return reflect.DeepEqual(g, o) }

// APIAddress is where the daemon serves /system: admin_listen when set, else listen.
func (g Gateway) APIAddress() string { return cmp.Or(g.AdminListen, g.Listen) }

// AllowsAPIUser reports whether a deployment through the API may run as user. The
// default account ("") always may; any other must be listed in api_users by name.
func (g Gateway) AllowsAPIUser(user string) bool {
	return user == "" || slices.Contains(g.APIUsers, user)
}

// Function is the spec of one function: how to run, route and scale it.
type Function struct {
	Name        string
	Command     []string // argv of an HTTP workload; Command[0] is looked up in PATH unless it has a slash
	Fprocess    string   // classic mode: a command forked per request
	Build       []string // run by `faasd up` / `faasd build`, not by the daemon
	Workdir     string   // absolute
	Env         map[string]string
	Labels      map[string]string
	Annotations map[string]string
	Hosts       []string // host names routed to this function at the root path
	Secrets     []string
	DependsOn   []string // services that must be ready before the first replica starts

	// User is the account the replicas run as when the daemon is root. Empty means an
	// unprivileged account of the function's own ([gateway] user_range); running as root
	// takes an explicit user = "root".
	User string

	LockFile         string // path inside the replica's private /tmp
	ReadinessTimeout time.Duration
	HealthInterval   time.Duration // TCP liveness probe period of a ready replica; 0 disables
	Timeout          time.Duration // one request, end to end
	DrainTimeout     time.Duration // how long a leaving replica may finish in-flight requests
	StopGrace        time.Duration // SIGTERM → SIGKILL

	Limits   Limits   // per replica, enforced through cgroups (limits.go)
	Requests Requests // advisory

	Scale       ScalePolicy // derived from Labels
	MaxInflight int         // asynchronous calls at once, from Labels; 0: the [queue] default
}

// Program is what the replicas execute, as written: the command's program, or the first
// word of fprocess, which the classic watchdog forks per request (splitting the trimmed
// line on spaces, as OpenFaaS's does).
func (f *Function) Program() string {
	if len(f.Command) > 0 {
		return f.Command[0]
	}
	prog, _, _ := strings.Cut(strings.TrimSpace(f.Fprocess), " ")
	return prog
}

// Equal reports whether two specs would run the same replicas. Scaling labels alone do
// not require new replicas, but they are part of the spec, so they compare too.
func (f *Function) Equal(g *Function) bool {
	return f.Name == g.Name && slices.Equal(f.Command, g.Command) && f.Fprocess == g.Fprocess &&
		slices.Equal(f.Build, g.Build) && f.Workdir == g.Workdir && maps.Equal(f.Env, g.Env) &&
		maps.Equal(f.Labels, g.Labels) && maps.Equal(f.Annotations, g.Annotations) &&
		slices.Equal(f.Hosts, g.Hosts) && slices.Equal(f.Secrets, g.Secrets) && f.User == g.User &&
		slices.Equal(f.DependsOn, g.DependsOn) && f.LockFile == g.LockFile && f.ReadinessTimeout == g.ReadinessTimeout &&
		f.HealthInterval == g.HealthInterval && f.Timeout == g.Timeout &&
		f.DrainTimeout == g.DrainTimeout && f.StopGrace == g.StopGrace &&
		f.Limits == g.Limits && f.Requests == g.Requests
}

// Error is a configuration error that points at a line of the file, the way a compiler does.
type Error struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted key, may be empty
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and validates a faasd.toml file.
func Load(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(abs, data)
}

// Parse validates the contents of a faasd.toml file; path names it in errors and anchors
// relative paths. It reports every problem of the file at once, in the order of their
// lines, as a compiler does; only a syntax error stops it at the first.
func Parse(path string, data []byte) (*Config, error) {
	var doc document
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		return nil, decodeError(path, err)
	}
	probs := &problems{}
	d := &decoder{md: md, loc: locator{path: path, text: string(data)}, probs: probs}
	d.unknownTables()
	var raw rawFile
	gatewayRead := d.table([]string{"gateway"}, doc.Gateway, &raw.Gateway)
	queueRead := d.table([]string{"queue"}, doc.Queue, &raw.Queue)
	raw.Functions = make(map[string]rawFunction, len(doc.Functions))
	unread := map[string]bool{}
	for name, keys := range doc.Functions {
		var rf rawFunction
		if d.table([]string{"functions", name}, keys, &rf) {
			raw.Functions[name] = rf
		} else {
			unread[name] = true
		}
	}
	raw.Services = make(map[string]rawService, len(doc.Services))
	for name, keys := range doc.Services {
		var rs rawService
		if d.table([]string{"services", name}, keys, &rs) {
			raw.Services[name] = rs
		} else {
			unread[name] = true
		}
	}
	raw.Secrets = make(map[string]rawSecret, len(doc.Secrets))
	for name, keys := range doc.Secrets {
		var rs rawSecret
		if d.table([]string{"secrets", name}, keys, &rs) {
			raw.Secrets[name] = rs
		}
	}

	base := filepath.Dir(path)
	cfg := &Config{Path: path, Functions: map[string]*Function{}}
	cfg.Gateway, err = raw.Gateway.resolve(base)
	if gatewayRead {
		d.loc.report(probs, []string{"gateway"}, err)
	}
	cfg.Queue, err = raw.Queue.resolve(cfg.Gateway)
	if queueRead {
		d.loc.report(probs, []string{"queue"}, err)
	}
	for name, rf := range raw.Functions {
		f, err := rf.resolve(name, base, cfg.Gateway)
		d.loc.report(probs, []string{"functions", name}, err)
		if err == nil {
			cfg.Functions[name] = f
		}
	}
	d.loc.report(probs, nil, checkHosts(cfg.Functions))
	checkOwnHosts(cfg, d.loc, probs)
	resolveServices(cfg, raw.Services, base, d.loc, probs, unread)
	resolveSecrets(cfg, raw.Secrets, base, d.loc, probs)
	if err := probs.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Names returns the function names in order.
func (c *Config) Names() []string {
	return slices.Sorted(maps.Keys(c.Functions))
}

type rawFile struct {
	Gateway   rawGateway             `toml:"gateway"`
	Queue     rawQueue               `toml:"queue"`
	Functions map[string]rawFunction `toml:"functions"`
	Services  map[string]rawService  `toml:"services"`
	Secrets   map[string]rawSecret   `toml:"secrets"`
}

type rawGateway struct {
	Listen               *string   `toml:"listen"`
	StateDir             *string   `toml:"state_dir"`
	Auth                 *bool     `toml:"auth"`
	AdminListen          *string   `toml:"admin_listen"`
	APIUsers             []string  `toml:"api_users"`
	UserRange            *string   `toml:"user_range"`
	TrustedProxies       []string  `toml:"trusted_proxies"`
	MaxConnsPerClient    *int      `toml:"max_conns_per_client"`
	ReadTimeout          *Duration `toml:"read_timeout"`
	WriteTimeout         *Duration `toml:"write_timeout"`
	ReadHeaderTimeout    *Duration `toml:"read_header_timeout"`
	UpstreamTimeout      *Duration `toml:"upstream_timeout"`
	MaxBodyBytes         *int64    `toml:"max_body_bytes"`
	ScaleFromZeroTimeout *Duration `toml:"scale_from_zero_timeout"`
	MaxHeldRequests      *int      `toml:"max_held_requests"`
	ScaleInterval        *Duration `toml:"scale_interval"`
	ScaleDownWindow      *Duration `toml:"scale_down_window"`
	// Defaults of the com.openfaas.scale.* labels, keyed by what follows that prefix
	// ("zero-duration"), for every function that does not set the label itself.
	ScaleDefaults map[string]string `toml:"scale_defaults"`
}

type rawFunction struct {
	Command          []string          `toml:"command"`
	Fprocess         string            `toml:"fprocess"`
	Build            []string          `toml:"build"`
	Workdir          string            `toml:"workdir"`
	Env              map[string]string `toml:"env"`
	Labels           map[string]string `toml:"labels"`
	Annotations      map[string]string `toml:"annotations"`
	Hosts            []string          `toml:"hosts"`
	Secrets          []string          `toml:"secrets"`
	DependsOn        []string          `toml:"depends_on"`
	User             string            `toml:"user"`
	LockFile         string            `toml:"lock_file"`
	ReadinessTimeout *Duration         `toml:"readiness_timeout"`
	HealthInterval   *Duration         `toml:"health_interval"`
	Timeout          *Duration         `toml:"timeout"`
	DrainTimeout     *Duration         `toml:"drain_timeout"`
	StopGrace        *Duration         `toml:"stop_grace"`
	Limits           *rawLimits        `toml:"limits"`
	Requests         *rawRequests      `toml:"requests"`
}

func (r rawGateway) resolve(base string) (Gateway, error) {
	g := Gateway{
		Listen:               or(r.Listen, DefaultListen),
		StateDir:             or(r.StateDir, DefaultStateDir),
		Auth:                 or(r.Auth, true),
		AdminListen:          or(r.AdminListen, ""),
		APIUsers:             r.APIUsers,
		UserRange:            DefaultUserRange,
		MaxConnsPerClient:    or(r.MaxConnsPerClient, DefaultMaxConnsPerClient),
		ReadTimeout:          dur(r.ReadTimeout, DefaultTimeout),
		WriteTimeout:         dur(r.WriteTimeout, DefaultTimeout),
		ReadHeaderTimeout:    dur(r.ReadHeaderTimeout, 10*time.Second),
		UpstreamTimeout:      dur(r.UpstreamTimeout, DefaultTimeout),
		MaxBodyBytes:         or(r.MaxBodyBytes, DefaultMaxBodyBytes),
		ScaleFromZeroTimeout: dur(r.ScaleFromZeroTimeout, 30*time.Second),
		MaxHeldRequests:      or(r.MaxHeldRequests, 1000),
		ScaleInterval:        dur(r.ScaleInterval, time.Second),
		ScaleDownWindow:      dur(r.ScaleDownWindow, 30*time.Second),
	}
	g.StateDir = absUnder(base, g.StateDir)
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if g.Listen == "" {
		add(errors.New("listen: must not be empty"))
	}
	switch {
	case r.AdminListen != nil && g.AdminListen == "":
		add(errors.New("admin_listen: must not be empty (leave it out to serve everything on listen)"))
	case g.AdminListen != "" && g.AdminListen == g.Listen:
		add(errors.New("admin_listen: must differ from listen"))
	}
	if g.MaxBodyBytes <= 0 {
		add(errors.New("max_body_bytes: must be positive"))
	}
	if g.MaxHeldRequests < 0 {
		add(errors.New("max_held_requests: must not be negative"))
	}
	if g.ScaleInterval <= 0 {
		add(errors.New("scale_interval: must be positive"))
	}
	if g.MaxConnsPerClient < 0 {
		add(errors.New("max_conns_per_client: must not be negative (0 lifts the cap)"))
	}
	for _, v := range r.TrustedProxies {
		p, err := parsePrefix(v)
		if err != nil {
			add(fmt.Errorf("trusted_proxies: %q is not an address or a CIDR prefix (like 10.0.0.0/8 or 192.0.2.7)", v))
			continue
		}
		g.TrustedProxies = append(g.TrustedProxies, p)
	}
	for _, u := range g.APIUsers {
		if u == "" || strings.TrimSpace(u) != u {
			add(fmt.Errorf("api_users: %q is not an account name", u))
		}
	}
	if r.UserRange != nil {
		var err error
		g.UserRange, err = parseIDRange(*r.UserRange)
		add(err)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"read_timeout", g.ReadTimeout}, {"write_timeout", g.WriteTimeout}, {"read_header_timeout", g.ReadHeaderTimeout},
		{"upstream_timeout", g.UpstreamTimeout}, {"scale_from_zero_timeout", g.ScaleFromZeroTimeout}} {
		if d.v <= 0 {
			add(fmt.Errorf("%s: must be positive", d.key))
		}
	}
	defaults, err := scaleDefaults(r.ScaleDefaults)
	add(err)
	g.ScaleDefaults = defaults
	return g, errors.Join(errs...)
}

// parsePrefix reads a CIDR prefix, or an address as the prefix of that address alone.
func parsePrefix(v string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(v); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidName reports whether name is a DNS-1123 label, the only function names allowed:
// they appear in URLs, paths on disk and log attributes, so nothing else may slip through.
func ValidName(name string) error {
	if len(name) > 63 || !dns1123.MatchString(name) {
		return fmt.Errorf("invalid function name %q: want a DNS-1123 label (lower-case letters, digits and '-', at most 63, starting and ending alphanumeric)", name)
	}
	return nil
}

func (r rawFunction) resolve(name, base string, g Gateway) (*Function, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	f := &Function{
		Name:             name,
		Command:          r.Command,
		Fprocess:         r.Fprocess,
		Build:            r.Build,
		Workdir:          absUnder(base, cmp.Or(r.Workdir, ".")),
		Env:              r.Env,
		Labels:           r.Labels,
		Annotations:      r.Annotations,
		Hosts:            r.Hosts,
		Secrets:          r.Secrets,
		DependsOn:        r.DependsOn,
		User:             r.User,
		LockFile:         r.LockFile,
		ReadinessTimeout: dur(r.ReadinessTimeout, DefaultReadinessTimeout),
		HealthInterval:   dur(r.HealthInterval, DefaultHealthInterval),
		Timeout:          dur(r.Timeout, g.UpstreamTimeout),
		StopGrace:        dur(r.StopGrace, DefaultStopGrace),
	}
	f.DrainTimeout = dur(r.DrainTimeout, f.Timeout)
	var err error
	if f.Limits, err = r.Limits.resolve(); err != nil {
		return nil, err
	}
	if f.Requests, err = r.Requests.resolve(); err != nil {
		return nil, err
	}
	if err := f.Validate(g.ScaleDefaults); err != nil {
		return nil, err
	}
	return f, nil
}

// Validate fills derived fields and checks a spec, whether it came from the file or the
// API, and reports every problem it finds. The scaling policy starts from scaleDefaults
// (the gateway's), and the function's labels override it.
func (f *Function) Validate(scaleDefaults ScalePolicy) error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	add(ValidName(f.Name))
	switch {
	case len(f.Command) == 0 && f.Fprocess == "":
		add(errors.New("command or fprocess: one is required (command = [\"./server\"] for an HTTP workload, fprocess = \"sha512sum\" for a classic function)"))
	case len(f.Command) > 0 && f.Fprocess != "":
		add(errors.New("command and fprocess: set only one"))
	case len(f.Command) > 0 && f.Command[0] == "":
		add(errors.New("command: the program must not be empty"))
	}
	f.LockFile = cmp.Or(f.LockFile, DefaultLockFile)
	// Only /tmp is private to a replica, so a lock file anywhere else would be shared
	// between replicas and could not tell them apart.
	if base := filepath.Base(f.LockFile); filepath.Dir(f.LockFile) != "/tmp" || base == "tmp" || base == "." || base == ".." {
		add(fmt.Errorf("lock_file: %q must be a file directly in /tmp", f.LockFile))
	}
	switch {
	case f.Workdir == "":
		add(errors.New("workdir: must be set"))
	case !filepath.IsAbs(f.Workdir):
		add(fmt.Errorf("workdir: %q must be absolute", f.Workdir))
	}
	add(checkEnv(f.Env))
	for _, s := range f.Secrets {
		if err := ValidSecretName(s); err != nil {
			add(fmt.Errorf("secrets: %v", err))
		}
	}
	for i, h := range f.Hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" || strings.ContainsAny(h, "/ :") {
			add(fmt.Errorf("hosts: %q is not a host name (no scheme, port or path)", f.Hosts[i]))
			continue
		}
		f.Hosts[i] = h
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"readiness_timeout", f.ReadinessTimeout}, {"timeout", f.Timeout}, {"drain_timeout", f.DrainTimeout}, {"stop_grace", f.StopGrace}} {
		if d.v <= 0 {
			add(fmt.Errorf("%s: must be positive", d.key))
		}
	}
	if f.HealthInterval < 0 {
		add(errors.New("health_interval: must not be negative"))
	}
	add(f.Limits.validate())
	p, err := ParseScalePolicy(scaleDefaults, f.Labels)
	if err != nil {
		add(fmt.Errorf("labels: %w", err))
	}
	f.Scale = p
	if f.MaxInflight, err = parseMaxInflight(f.Labels); err != nil {
		add(fmt.Errorf("labels: %w", err))
	}
	return errors.Join(errs...)
}

// checkEnv refuses variable names that no environment can hold.
func checkEnv(env map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("env: invalid variable name %q", k)
		}
	}
	return nil
}

func checkHosts(fns map[string]*Function) error {
	owner := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(fns)) {
		for _, h := range fns[name].Hosts {
			if other, ok := owner[h]; ok {
				return fmt.Errorf("host %q is claimed by both functions.%s and functions.%s", h, other, name)
			}
			owner[h] = name
		}
	}
	return nil
}

func absUnder(base, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(base, p)
}

func or[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func dur(p *Duration, def time.Duration) time.Duration {
	if p == nil {
		return def
	}
	return time.Duration(*p)
}

// Duration is a TOML duration: a Go duration string ("65s", "5m") or whole seconds.
type Duration time.Duration

// UnmarshalTOML implements toml.Unmarshaler.
func (d *Duration) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		*d = Duration(time.Duration(v) * time.Second)
		return nil
	case string:
		x, err := parseDuration(v)
		*d = Duration(x)
		return err
	default:
		return fmt.Errorf("want a duration such as \"30s\" or a number of seconds, not %s", describeValue(v))
	}
}
