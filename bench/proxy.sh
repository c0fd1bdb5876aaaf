#!/usr/bin/env bash
# bench/proxy.sh: the cost of faasd's proxy hop, side by side with nginx.
#
# One hello-go replica is measured three ways, interleaved round by round so that the
# noise of a shared machine falls on all three alike:
#   direct  wrk → hello-go (started here, on its own port)
#   nginx   wrk → nginx (proxy_pass, upstream keepalive) → that same hello-go
#   faasd   wrk → bin/faasd → its own hello-go replica (min = max = 1)
# Each round runs a throughput pass (wrk -t2 -c16) and a latency pass (wrk -t1 -c1).
# Everything listens on 127.0.0.1. Run as root on Debian; installs wrk and nginx if
# missing. Prints a table; writes no result files.
#
# Environment (defaults in brackets):
#   ROUNDS [3]  DURATION [5] seconds per wrk run  WARMUP [1] seconds per target
#   THREADS [2] CONNS [16]   throughput pass      LAT_CONNS [1] latency pass
#   DIRECT_PORT [18081] NGINX_PORT [18082] FAASD_PORT [18080]
#   SKIP_BUILD [0]  KEEP [0] keep the work directory (logs, configs)
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
THREADS=${THREADS:-2}
CONNS=${CONNS:-16}
LAT_CONNS=${LAT_CONNS:-1}
DIRECT_PORT=${DIRECT_PORT:-18081}
NGINX_PORT=${NGINX_PORT:-18082}
FAASD_PORT=${FAASD_PORT:-18080}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELLO=$ROOT/bin/hello-go
FAASD=$ROOT/bin/faasd
TARGETS=(direct nginx faasd)

die() { echo "proxy.sh: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

[[ $(id -u) -eq 0 ]] || die "run as root (installs packages, faasd drops replicas to nobody)"
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
	log "building bin/faasd and bin/hello-go"
	make -C "$ROOT" --no-print-directory build examples >&2
fi
[[ -x $FAASD && -x $HELLO ]] || die "missing $FAASD or $HELLO (make build examples)"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$DIRECT_PORT" "$NGINX_PORT" "$FAASD_PORT"; do
	port_busy "$p" && die "port $p is in use (set DIRECT_PORT, NGINX_PORT, FAASD_PORT)"
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
	# Reverse order: faasd (stops its replica), nginx (QUIT = graceful), then hello-go.
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		local name=${PIDS[i]%%:*} pid=${PIDS[i]#*:}
		case $name in nginx) stop_pid "$pid" QUIT ;; *) stop_pid "$pid" TERM ;; esac
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

wait_http() { # url seconds: until a 200
	local url=$1 deadline=$((SECONDS + $2))
	until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true) == 200 ]]; do
		((SECONDS < deadline)) || die "no 200 from $url within $2 s"
		sleep 0.05
	done
}

# --- (a) hello-go, direct ------------------------------------------------------------
# hello-go writes /tmp/.lock literally; give it a private /tmp (as faasd does) so the
# host's is left alone. unshare execs, so $! is hello-go's pid.
mkdir -m 1777 "$WORK/direct-tmp"
if unshare --mount --propagation private true 2>/dev/null; then
	PORT=$DIRECT_PORT unshare --mount --propagation private -- \
		sh -c 'mount --bind "$1" /tmp && exec "$2"' sh "$WORK/direct-tmp" "$HELLO" \
		>"$WORK/hello-direct.log" 2>&1 &
else
	log "no mount namespace: the direct hello-go writes /tmp/.lock on the host"
	PORT=$DIRECT_PORT "$HELLO" >"$WORK/hello-direct.log" 2>&1 &
fi
PIDS+=("hello:$!")
wait_http "http://127.0.0.1:$DIRECT_PORT/" 10

# --- (b) nginx in front of it ----------------------------------------------------------
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx.log warn;
events { worker_connections 1024; }
http {
    access_log off;                 # faasd keeps no access log either
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path       $WORK/nginx/proxy;
    fastcgi_temp_path     $WORK/nginx/fastcgi;
    uwsgi_temp_path       $WORK/nginx/uwsgi;
    scgi_temp_path        $WORK/nginx/scgi;
    upstream hello {
        server 127.0.0.1:$DIRECT_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://hello;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
"$NGINX" -t -q -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" 2>>"$WORK/nginx.log" || die "nginx -t failed"
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >>"$WORK/nginx.log" 2>&1 &
PIDS+=("nginx:$!")
wait_http "http://127.0.0.1:$NGINX_PORT/" 10

# --- (c) faasd with its own hello-go replica --------------------------------------------
cat >"$WORK/faasd.toml" <<CONF
[gateway]
listen = "127.0.0.1:$FAASD_PORT"
state_dir = "$WORK/state"
auth = false

[functions.hello]
workdir = "$ROOT/examples/hello-go"
command = ["$HELLO"]
labels = { "com.openfaas.scale.min" = "1", "com.openfaas.scale.max" = "1" }
CONF
"$FAASD" serve -f "$WORK/faasd.toml" >"$WORK/faasd.log" 2>&1 &
PIDS+=("faasd:$!")
wait_http "http://127.0.0.1:$FAASD_PORT/healthz" 10
wait_http "http://127.0.0.1:$FAASD_PORT/function/hello/" 30

declare -A URL=(
	[direct]="http://127.0.0.1:$DIRECT_PORT/"
	[nginx]="http://127.0.0.1:$NGINX_PORT/"
	[faasd]="http://127.0.0.1:$FAASD_PORT/function/hello/"
)

# --- measuring -------------------------------------------------------------------------
# to_us VALUE: wrk's "123.45us" / "1.23ms" / "1.02s" in microseconds.
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1e6
		else if (u == "m") f = 6e7; else { print "NaN"; exit }
		printf "%.1f", n * f }'
}

# run_wrk TARGET PASS THREADS CONNS SECONDS: prints "rps p50_us p99_us".
run_wrk() {
	local target=$1 pass=$2 t=$3 c=$4 d=$5 out
	out=$(wrk -t"$t" -c"$c" -d"${d}s" --latency "${URL[$target]}" 2>&1) || die "wrk $target failed: $out"
	if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
		log "WARNING $target/$pass: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | tr '\n' ' ')"
	fi
	local rps p50 p99
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	[[ -n $rps && -n $p50 && -n $p99 ]] || die "cannot read wrk output for $target: $out"
	echo "$rps $(to_us "$p50") $(to_us "$p99")"
}

RESULTS=$WORK/results.txt # lines: pass target round rps p50_us p99_us
: >"$RESULTS"

log "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; wrk $(wrk -v 2>&1 | awk 'NR==1{print $2}'), $("$NGINX" -v 2>&1 | sed 's/.*: //'), faasd $("$FAASD" version | awk '{print $2}')"
if ((WARMUP > 0)); then
	for t in "${TARGETS[@]}"; do run_wrk "$t" warmup "$THREADS" "$CONNS" "$WARMUP" >/dev/null; done
fi
PASSES=("throughput $THREADS $CONNS" "latency 1 $LAT_CONNS")
for ((r = 1; r <= ROUNDS; r++)); do
	for p in "${PASSES[@]}"; do
		read -r pass t c <<<"$p"
		for target in "${TARGETS[@]}"; do
			line=$(run_wrk "$target" "$pass" "$t" "$c" "$DURATION")
			read -r rps p50 p99 <<<"$line"
			echo "$pass $target $r $rps $p50 $p99" >>"$RESULTS"
			printf '# round %d/%d %-10s -t%s -c%-3s %-6s %10.0f req/s  p50 %8.1f us  p99 %8.1f us\n' \
				"$r" "$ROUNDS" "$pass" "$t" "$c" "$target" "$rps" "$p50" "$p99" >&2
		done
	done
done

# --- report ----------------------------------------------------------------------------
# Median over rounds of each number, then ratios between the medians.
awk -v rounds="$ROUNDS" -v dur="$DURATION" -v tp="-t$THREADS -c$CONNS" -v lp="-t1 -c$LAT_CONNS" '
function median(list,   a, n, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
{ rps[$1,$2] = rps[$1,$2] " " $4; p50[$1,$2] = p50[$1,$2] " " $5; p99[$1,$2] = p99[$1,$2] " " $6 }
END {
	split("throughput latency", passes, " "); split("direct nginx faasd", targets, " ")
	printf "\nfaasd proxy benchmark: hello-go on 127.0.0.1, median of %d interleaved rounds x %d s\n", rounds, dur
	for (i = 1; i <= 2; i++) {
		p = passes[i]
		printf "\n%s pass (wrk %s --latency)\n", p, (p == "throughput" ? tp : lp)
		printf "  %-8s %12s %10s %10s\n", "target", "requests/s", "p50 us", "p99 us"
		for (j = 1; j <= 3; j++) {
			t = targets[j]
			R[p,t] = median(rps[p,t]); A[p,t] = median(p50[p,t]); B[p,t] = median(p99[p,t])
			printf "  %-8s %12.0f %10.1f %10.1f\n", t, R[p,t], A[p,t], B[p,t]
		}
		printf "  %-14s %6s %8s %8s %14s\n", "ratio", "req/s", "p50", "p99", "p50 added us"
		printf "  %-14s %6.2f %8.2f %8.2f %+14.1f\n", "faasd/direct", R[p,"faasd"]/R[p,"direct"], A[p,"faasd"]/A[p,"direct"], B[p,"faasd"]/B[p,"direct"], A[p,"faasd"]-A[p,"direct"]
		printf "  %-14s %6.2f %8.2f %8.2f %+14.1f\n", "faasd/nginx", R[p,"faasd"]/R[p,"nginx"], A[p,"faasd"]/A[p,"nginx"], B[p,"faasd"]/B[p,"nginx"], A[p,"faasd"]-A[p,"nginx"]
		printf "  %-14s %6.2f %8.2f %8.2f %+14.1f\n", "nginx/direct", R[p,"nginx"]/R[p,"direct"], A[p,"nginx"]/A[p,"direct"], B[p,"nginx"]/B[p,"direct"], A[p,"nginx"]-A[p,"direct"]
	}
	printf "\nreq/s ratio: higher is better (1.00 = as fast). Latency ratio: lower is better.\n"
}' "$RESULTS"
