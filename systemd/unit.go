package systemd

import (
	"strings"
	"text/template"
)

// Where `faasd install` puts things, below an optional root.
const (
	UnitName   = "faasd.service"
	UnitPath   = "/etc/systemd/system/" + UnitName
	BinaryPath = "/usr/local/bin/faasd"
	ConfigDir  = "/etc/faasd"
	ConfigPath = ConfigDir + "/faasd.toml"
	StateDir   = "/var/lib/faasd"
)

// Unit is the service unit of the daemon.
//
// Hardening that the daemon's work rules out, and why:
//   - ProtectControlGroups: the daemon writes the cgroups of its delegated subtree.
//   - PrivateDevices, ProtectClock, DevicePolicy: they restrict device access for the
//     whole unit, functions included, which may use a GPU or /dev/fuse.
//   - PrivateTmp: services see the host's /tmp by design (a database's socket), and
//     every replica gets a private /tmp of its own anyway.
//   - ProtectHome, ProtectSystem=strict: a function's workdir may be anywhere (a checkout
//     in a home directory), and functions may write to it.
//   - RestrictNamespaces: the daemon makes a mount namespace per replica, and functions
//     are arbitrary programs (a browser sandboxes itself in namespaces).
//   - MemoryDenyWriteExecute: JIT compilers (Node.js, the JVM, LuaJIT) need it.
//   - SystemCallFilter beyond a few groups no program needs (@mount, @privileged): the
//     daemon mounts and changes users, and functions are arbitrary programs.
//   - ProcSubset=pid: runtimes read /proc/meminfo and /proc/cpuinfo to size themselves.
//   - User=, DynamicUser: mounting, cgroups and each function's own user need root.
//   - PrivateNetwork, IPAddressDeny: the gateway and functions serve the network.
//   - UMask=0077: the daemon creates directories that functions' and services' users
//     must traverse; it sets their modes itself, under the usual umask.
func Unit(binary, config string) string {
	var b strings.Builder
	if err := unitTemplate.Execute(&b, struct{ Binary, Config string }{binary, config}); err != nil {
		panic(err) // the template is a constant
	}
	return b.String()
}

var unitTemplate = template.Must(template.New("unit").Parse(`# Written by faasd install; faasd uninstall removes it.
[Unit]
Description=faasd: functions and microservices as supervised processes behind one port
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={{.Binary}} serve -f {{.Config}}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2s
# READY=1 waits for the services (a database's first start) and each function's first
# replica.
TimeoutStartSec=5min
# A stop drains requests (30s), then replicas, then services (60s each at most).
TimeoutStopSec=3min
# The daemon tells systemd it is alive every 15s while its gateway answers.
WatchdogSec=30s
# Replicas and services run in cgroups of their own below the unit's, which the daemon
# manages. On stop, SIGTERM goes to the daemon alone, which stops them in order;
# whatever is left when TimeoutStopSec runs out gets SIGKILL.
Delegate=yes
KillMode=mixed
LimitNOFILE=1048576
StateDirectory=faasd
StateDirectoryMode=0700
ConfigurationDirectory=faasd

# Hardening that still lets the daemon mount a private /tmp per replica, manage
# cgroups, and run each function as its own user.
CapabilityBoundingSet=CAP_SYS_ADMIN CAP_SETUID CAP_SETGID CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_KILL CAP_NET_BIND_SERVICE CAP_SYS_RESOURCE
NoNewPrivileges=yes
ProtectSystem=full
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
# System calls no function needs: setting clocks, loading modules, rebooting, swap, raw
# I/O ports. They fail with EPERM instead of killing the caller.
SystemCallFilter=~@clock @cpu-emulation @module @obsolete @raw-io @reboot @swap
SystemCallErrorNumber=EPERM
KeyringMode=private

[Install]
WantedBy=multi-user.target
`))

// DefaultConfig is the faasd.toml `faasd install` writes when there is none.
const DefaultConfig = `# faasd's configuration. Reload after a change: systemctl reload faasd
# (the daemon also notices the file change). Functions deployed through the API
# (faasd deploy, faas-cli deploy) are kept in the state directory, not here.

[gateway]
listen = "127.0.0.1:8080"
state_dir = "` + StateDir + `"

# A function: any HTTP server that listens on $PORT.
# [functions.hello]
# workdir = "/srv/hello"
# command = ["./server"]
# limits = { memory = "128Mi", cpu = "500m" }
`
