#!/usr/bin/env bash
# bench/proxy.sh: the cost of faasd's proxy hop, side by side with nginx.
#
# The same replica program (bench/backend: "Hello, world!" on GET, an echo of anything
# else) is measured three ways, interleaved round by round so that the noise of
# a shared machine falls on all alike:
#   direct  wrk → the backend (started here, on its own port)
#   nginx   wrk → nginx (proxy_pass, upstream keepalive) → that same backend
#   faasd   wrk → bin/faasd → its own replica of the backend (min = max = 1)
# Each round runs four passes:
#   throughput  wrk -t1 -c32, GET
#   latency     wrk -t1 -c1, GET: the hop's own cost, in µs over direct
#   echo        wrk -t1 -c1, POST of ECHO_MIB MiB echoed back: MiB/s each way
#   many        wrk -t1 -c32 over FUNCTIONS functions in turn, each 1/FUNCTIONS of the
#               load (nginx: one upstream and location per function, each with its own
#               backend process; faasd: one function each)
# Everything listens on 127.0.0.1. Run as root on Debian; installs wrk and nginx if
# missing. Prints a table; writes no result files.
#
# Environment (defaults in brackets):
#   ROUNDS [3]  DURATION [5] seconds per wrk run  WARMUP [1] seconds per target
#   THREADS [1] CONNS [32]   throughput and many passes   LAT_CONNS [1] latency pass
#   ECHO_MIB [10] ECHO_CONNS [1]   FUNCTIONS [100] (0 skips the many pass)
#   DIRECT_PORT [18081] NGINX_PORT [18082] FAASD_PORT [18080] MANY_PORT [18200] (first
#   of FUNCTIONS ports for nginx's backends)
#   FAASD [bin/faasd] the daemon to measure
#   BASELINE [none] another faasd build, measured as a fourth target "before" in the
#   same rounds (say, one built from an older commit), on BASELINE_PORT [18083]
#   SKIP_BUILD [0]  KEEP [0] keep the work directory (logs, configs, raw results)
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
THREADS=${THREADS:-1}
CONNS=${CONNS:-32}
LAT_CONNS=${LAT_CONNS:-1}
ECHO_MIB=${ECHO_MIB:-10}
ECHO_CONNS=${ECHO_CONNS:-1}
FUNCTIONS=${FUNCTIONS:-100}
DIRECT_PORT=${DIRECT_PORT:-18081}
NGINX_PORT=${NGINX_PORT:-18082}
FAASD_PORT=${FAASD_PORT:-18080}
MANY_PORT=${MANY_PORT:-18200}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FAASD=${FAASD:-$ROOT/bin/faasd}
BASELINE=${BASELINE:-}
BASELINE_PORT=${BASELINE_PORT:-18083}

die() { echo "proxy.sh: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

[[ $(id -u) -eq 0 ]] || die "run as root (installs packages, faasd drops replicas to unprivileged accounts)"
case $ROOT in /tmp/*) die "the repository is under /tmp, which replicas see as their private /tmp: move it";; esac

# --- tools ---------------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx)
if ((${#need[@]})); then
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends "${need[@]}" >&2; then
		apt-get update >&2
		apt-get install -y --no-install-recommends "${need[@]}" >&2
	fi
fi
NGINX=$(command -v nginx)

if [[ $SKIP_BUILD != 1 ]]; then
	log "building bin/faasd"
	make -C "$ROOT" --no-print-directory build >&2
fi
[[ -x $FAASD ]] || die "missing $FAASD (make build)"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
[[ -z $BASELINE || -x $BASELINE ]] || die "BASELINE=$BASELINE is not an executable"
for p in "$DIRECT_PORT" "$NGINX_PORT" "$FAASD_PORT" ${BASELINE:+"$BASELINE_PORT"}; do
	port_busy "$p" && die "port $p is in use (set DIRECT_PORT, NGINX_PORT, FAASD_PORT)"
done
for ((i = 0; i < FUNCTIONS; i++)); do
	port_busy $((MANY_PORT + i)) && die "port $((MANY_PORT + i)) is in use (set MANY_PORT)"
done

# --- work directory and cleanup -------------------------------------------------------
# Not under /tmp: faasd replicas see their own /tmp, and the state dir must be reachable.
WORK=$(mktemp -d /var/tmp/faasd-bench-proxy.XXXXXX)
chmod 755 "$WORK"
PIDS=()

stop_pid() { # pid signal: signal, wait up to 10 s, then SIGKILL
	local pid=$1 sig=$2 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill "-$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	log "pid $pid ignored SIG$sig: killing it"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# Reverse order: faasd (stops its replicas), nginx, then the backends.
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${PIDS[i]#*:}" TERM
	done
	if ((rc != 0)); then
		for f in "$WORK"/*.log; do
			[[ -s $f ]] && { echo "--- last lines of $f" >&2; tail -n 20 "$f" >&2; }
		done
	fi
	if [[ $KEEP == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The backend goes where the function user (nobody) can run it.
BACKEND=$WORK/backend
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$BACKEND" ./bench/backend) || die "cannot build bench/backend"
chmod 755 "$BACKEND"

wait_http() { # url seconds: until a 200
	local url=$1 deadline=$((SECONDS + $2))
	until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true) == 200 ]]; do
		((SECONDS < deadline)) || die "no 200 from $url within $2 s"
		sleep 0.05
	done
}

# start_backend NAME PORT: the backend on PORT with a private /tmp (as faasd gives its
# replicas), so that its /tmp/.lock does not land on the host. unshare execs, so $! is
# the backend's pid.
start_backend() {
	local name=$1 port=$2
	mkdir -m 1777 "$WORK/tmp-$name"
	if unshare --mount --propagation private true 2>/dev/null; then
		PORT=$port unshare --mount --propagation private -- \
			sh -c 'mount --bind "$1" /tmp && exec "$2"' sh "$WORK/tmp-$name" "$BACKEND" \
			>>"$WORK/backends.log" 2>&1 &
	else
		PORT=$port "$BACKEND" >>"$WORK/backends.log" 2>&1 &
	fi
	PIDS+=("backend:$!")
}

# --- (a) backends, direct ----------------------------------------------------------------
unshare --mount --propagation private true 2>/dev/null ||
	log "no mount namespace: the direct backends write /tmp/.lock on the host"
start_backend direct "$DIRECT_PORT"
for ((i = 0; i < FUNCTIONS; i++)); do start_backend "$(printf 'f%03d' "$i")" $((MANY_PORT + i)); done
wait_http "http://127.0.0.1:$DIRECT_PORT/" 10
for ((i = 0; i < FUNCTIONS; i++)); do wait_http "http://127.0.0.1:$((MANY_PORT + i))/" 10; done

# --- (b) nginx in front of them ------------------------------------------------------------
# Configured as a user who cares would: worker per core, keep-alive upstreams, no access
# log (faasd keeps none either). The echo location streams the request body, as faasd
# does, instead of spooling it to a file first (nginx's default).
mkdir -p "$WORK/nginx"
{
	cat <<CONF
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path       $WORK/nginx/proxy;
    fastcgi_temp_path     $WORK/nginx/fastcgi;
    uwsgi_temp_path       $WORK/nginx/uwsgi;
    scgi_temp_path        $WORK/nginx/scgi;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    upstream direct {
        server 127.0.0.1:$DIRECT_PORT;
        keepalive 64;
    }
CONF
	for ((i = 0; i < FUNCTIONS; i++)); do
		printf '    upstream f%03d { server 127.0.0.1:%d; keepalive 16; }\n' "$i" $((MANY_PORT + i))
	done
	cat <<CONF
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://direct;
        }
        location /echo {
            proxy_pass http://direct;
            client_max_body_size 0;
            proxy_request_buffering off;
        }
CONF
	for ((i = 0; i < FUNCTIONS; i++)); do
		printf '        location /function/f%03d/ { proxy_pass http://f%03d/; }\n' "$i" "$i"
	done
	echo "    }"
	echo "}"
} >"$WORK/nginx/nginx.conf"
"$NGINX" -t -q -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" 2>>"$WORK/nginx.log" || die "nginx -t failed"
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >>"$WORK/nginx.log" 2>&1 &
PIDS+=("nginx:$!")
wait_http "http://127.0.0.1:$NGINX_PORT/" 10

# --- (c) faasd with its own replicas ---------------------------------------------------------
{
	cat <<CONF
[gateway]
listen = "127.0.0.1:$FAASD_PORT"
state_dir = "$WORK/state"
auth = false

[functions.hello]
command = ["$BACKEND"]
labels = { "com.openfaas.scale.min" = "1", "com.openfaas.scale.max" = "1" }
CONF
	for ((i = 0; i < FUNCTIONS; i++)); do
		printf '\n[functions.f%03d]\ncommand = ["%s"]\nlabels = { "com.openfaas.scale.min" = "1", "com.openfaas.scale.max" = "1" }\n' "$i" "$BACKEND"
	done
} >"$WORK/template.toml"
# start_faasd NAME BINARY PORT: a daemon of its own (state, replicas) on PORT.
start_faasd() {
	local name=$1 bin=$2 port=$3
	sed -e "s|^listen = .*|listen = \"127.0.0.1:$port\"|" -e "s|^state_dir = .*|state_dir = \"$WORK/state-$name\"|" \
		"$WORK/template.toml" >"$WORK/$name.toml"
	"$bin" serve -f "$WORK/$name.toml" >"$WORK/$name.log" 2>&1 &
	PIDS+=("$name:$!")
	wait_http "http://127.0.0.1:$port/healthz" 10
	wait_http "http://127.0.0.1:$port/function/hello/" 30
	for ((i = 0; i < FUNCTIONS; i++)); do wait_http "$(printf 'http://127.0.0.1:%d/function/f%03d/' "$port" "$i")" 30; done
}
start_faasd faasd "$FAASD" "$FAASD_PORT"
[[ -n $BASELINE ]] && start_faasd before "$BASELINE" "$BASELINE_PORT"

# --- wrk scripts ---------------------------------------------------------------------------
cat >"$WORK/echo.lua" <<LUA
wrk.method = "POST"
wrk.body = string.rep("x", $ECHO_MIB * 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
LUA
cat >"$WORK/many.lua" <<LUA
-- Each function in turn: every one gets 1/$FUNCTIONS of the requests.
-- Built in init, once wrk has set the Host field.
local reqs, i = {}, 0
init = function(args)
  for n = 0, $FUNCTIONS - 1 do reqs[#reqs + 1] = wrk.format("GET", string.format("/function/f%03d/", n)) end
end
request = function() i = i % #reqs + 1; return reqs[i] end
LUA

declare -A URL=(
	[throughput/direct]="http://127.0.0.1:$DIRECT_PORT/"
	[throughput/nginx]="http://127.0.0.1:$NGINX_PORT/"
	[throughput/faasd]="http://127.0.0.1:$FAASD_PORT/function/hello/"
	[echo/direct]="http://127.0.0.1:$DIRECT_PORT/echo"
	[echo/nginx]="http://127.0.0.1:$NGINX_PORT/echo"
	[echo/faasd]="http://127.0.0.1:$FAASD_PORT/function/hello/echo"
	[many/nginx]="http://127.0.0.1:$NGINX_PORT/"
	[many/faasd]="http://127.0.0.1:$FAASD_PORT/"
)
URL[latency/direct]=${URL[throughput/direct]}
URL[latency/nginx]=${URL[throughput/nginx]}
URL[latency/faasd]=${URL[throughput/faasd]}
for pass in throughput latency echo many; do
	URL[$pass/before]=${URL[$pass/faasd]/:$FAASD_PORT\//:$BASELINE_PORT/}
done

# --- measuring -------------------------------------------------------------------------
# to_us VALUE: wrk's "123.45us" / "1.23ms" / "1.02s" in microseconds.
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1e6
		else if (u == "m") f = 6e7; else { print "NaN"; exit }
		printf "%.1f", n * f }'
}

# run_wrk PASS TARGET THREADS CONNS SECONDS: prints "rps p50_us p99_us".
run_wrk() {
	local pass=$1 target=$2 t=$3 c=$4 d=$5 out script=()
	case $pass in echo) script=(-s "$WORK/echo.lua") ;; many) script=(-s "$WORK/many.lua") ;; esac
	out=$(wrk -t"$t" -c"$c" -d"${d}s" --latency "${script[@]}" "${URL[$pass/$target]}" 2>&1) ||
		die "wrk $pass/$target failed: $out"
	if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
		log "WARNING $pass/$target: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | tr '\n' ' ')"
	fi
	local rps p50 p99
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	[[ -n $rps && -n $p50 && -n $p99 ]] || die "cannot read wrk output for $pass/$target: $out"
	echo "$rps $(to_us "$p50") $(to_us "$p99")"
}

RESULTS=$WORK/results.txt # lines: pass target round rps p50_us p99_us
: >"$RESULTS"
LOADS=()

log "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; wrk $(wrk -v 2>&1 | awk 'NR==1{print $2}'), $("$NGINX" -v 2>&1 | sed 's/.*: //'), faasd $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown)"
B=${BASELINE:+before}
PASSES=("throughput $THREADS $CONNS direct nginx faasd $B"
	"latency 1 $LAT_CONNS direct nginx faasd $B"
	"echo 1 $ECHO_CONNS direct nginx faasd $B")
((FUNCTIONS > 0)) && PASSES+=("many $THREADS $CONNS nginx faasd $B")
if ((WARMUP > 0)); then
	for p in "${PASSES[@]}"; do
		read -r pass t c targets <<<"$p"
		for target in $targets; do run_wrk "$pass" "$target" "$t" "$c" "$WARMUP" >/dev/null; done
	done
fi
for ((r = 1; r <= ROUNDS; r++)); do
	LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")
	for p in "${PASSES[@]}"; do
		read -r pass t c targets <<<"$p"
		for target in $targets; do
			line=$(run_wrk "$pass" "$target" "$t" "$c" "$DURATION")
			read -r rps p50 p99 <<<"$line"
			echo "$pass $target $r $rps $p50 $p99" >>"$RESULTS"
			printf '# round %d/%d %-10s -t%s -c%-3s %-6s %10.1f req/s  p50 %8.1f us  p99 %8.1f us\n' \
				"$r" "$ROUNDS" "$pass" "$t" "$c" "$target" "$rps" "$p50" "$p99" >&2
		done
	done
done
LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")

# --- report ----------------------------------------------------------------------------
# Median over rounds of each number, then ratios between the medians.
awk -v rounds="$ROUNDS" -v dur="$DURATION" -v mib="$ECHO_MIB" -v fns="$FUNCTIONS" -v loads="${LOADS[*]}" \
	-v tp="-t$THREADS -c$CONNS" -v lp="-t1 -c$LAT_CONNS" -v ep="-t1 -c$ECHO_CONNS" '
function median(list,   a, n, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
function med(p, t) { R[p,t] = median(rps[p,t]); A[p,t] = median(p50[p,t]); B[p,t] = median(p99[p,t]) }
function row(p, t) { printf "  %-8s %12.0f %10.1f %10.1f\n", t, R[p,t], A[p,t], B[p,t] }
function ratio(p, a, b) {
	printf "  %-14s %6.2f %8.2f %8.2f %+10.1f %+10.1f\n", a "/" b, R[p,a]/R[p,b], A[p,a]/A[p,b], B[p,a]/B[p,b], A[p,a]-A[p,b], B[p,a]-B[p,b]
}
{ rps[$1,$2] = rps[$1,$2] " " $4; p50[$1,$2] = p50[$1,$2] " " $5; p99[$1,$2] = p99[$1,$2] " " $6; seen[$1] = 1; seen[$1,$2] = 1 }
END {
	printf "\nfaasd proxy benchmark: bench/backend on 127.0.0.1, median of %d interleaved rounds x %d s\n", rounds, dur
	printf "load average (1 min) at each round start and at the end: %s; median %s\n", loads, median(loads)
	split("throughput latency", passes, " "); nt = split("direct nginx faasd before", targets, " ")
	if (!seen["throughput", "before"]) nt = 3
	for (i = 1; i <= 2; i++) {
		p = passes[i]
		printf "\n%s pass (wrk %s --latency, GET)\n", p, (p == "throughput" ? tp : lp)
		printf "  %-8s %12s %10s %10s\n", "target", "requests/s", "p50 us", "p99 us"
		for (j = 1; j <= nt; j++) { med(p, targets[j]); row(p, targets[j]) }
		printf "  %-14s %6s %8s %8s %10s %10s\n", "ratio", "req/s", "p50", "p99", "+p50 us", "+p99 us"
		ratio(p, "faasd", "direct"); ratio(p, "faasd", "nginx"); ratio(p, "nginx", "direct")
		if (nt == 4) { ratio(p, "before", "direct"); ratio(p, "before", "nginx"); ratio(p, "faasd", "before") }
	}
	p = "echo"
	printf "\necho pass (wrk %s, POST %d MiB, echoed back)\n", ep, mib
	printf "  %-8s %12s %10s %10s\n", "target", "MiB/s", "p50 ms", "p99 ms"
	for (j = 1; j <= nt; j++) {
		t = targets[j]; med(p, t)
		printf "  %-8s %12.0f %10.1f %10.1f\n", t, R[p,t] * mib, A[p,t] / 1000, B[p,t] / 1000
	}
	printf "  faasd/direct %.2f, faasd/nginx %.2f, nginx/direct %.2f (MiB/s)\n", R[p,"faasd"]/R[p,"direct"], R[p,"faasd"]/R[p,"nginx"], R[p,"nginx"]/R[p,"direct"]
	if (nt == 4) printf "  before/nginx %.2f, faasd/before %.2f (MiB/s)\n", R[p,"before"]/R[p,"nginx"], R[p,"faasd"]/R[p,"before"]
	if (seen["many"]) {
		p = "many"
		printf "\nmany pass (wrk %s --latency, GET, %d functions, 1/%d of the requests each)\n", tp, fns, fns
		printf "  %-8s %12s %10s %10s\n", "target", "requests/s", "p50 us", "p99 us"
		med(p, "nginx"); med(p, "faasd"); row(p, "nginx"); row(p, "faasd")
		if (nt == 4) { med(p, "before"); row(p, "before") }
		printf "  %-14s %6s %8s %8s %10s %10s\n", "ratio", "req/s", "p50", "p99", "+p50 us", "+p99 us"
		ratio(p, "faasd", "nginx")
		if (nt == 4) { ratio(p, "before", "nginx"); ratio(p, "faasd", "before") }
		printf "  faasd with %d functions / faasd with one: %.2f req/s\n", fns, R[p,"faasd"]/R["throughput","faasd"]
	}
	printf "\nreq/s and MiB/s ratios: higher is better (1.00 = as fast). Latency ratios: lower is better.\n"
}' "$RESULTS"
