#!/usr/bin/env bash
# Instructions per proxied request (callgrind `Ir`), a figure that does not depend on how busy
# the machine is, unlike requests/s.
#
#   bench/ir-per-request.sh [BALLAST_BIN] [REQUESTS] [CONNECTIONS]
#
# Same set-up as bench/compare.sh (three nginx backends answering `ok\n`, round-robin, health
# checks, access log to a file, one runtime thread). IR_PROXY=haproxy or IR_PROXY=nginx
# measures that peer instead, configured as compare.sh configures it (one thread; nginx with
# its master process off, so that the one process callgrind follows is the worker), for the
# same request mix. The proxy runs under callgrind; after a
# warm-up the counters are zeroed, exactly REQUESTS keep-alive GETs are sent over CONNECTIONS
# connections (bench/keepalive_client.py), and the counters are dumped. The same is done over
# an idle period to price the timers (health checks, log flushes), which is subtracted pro
# rata. IR_KEEP=FILE keeps the load period's callgrind profile; IR_ROUTE_EXTRA adds lines to
# the route (e.g. 'cache = {}') and IR_UPSTREAM_EXTRA to the upstream (e.g. 'limit = {}') to
# price a policy (with a waiting room, every request carries the room's session cookie);
# IR_EXTRA adds whole tables at the end (e.g. $'[store]\nurl = "off"' to price the store).
# Needs nginx, valgrind, curl and python3; uses ports 19101-19103, 18080 and 19900.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/target/release/ballast}
N=${2:-20000}
C=${3:-16}
IDLE_S=5

W=$(mktemp -d /tmp/ballast-ir.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ -f $W/backend.pid ]] && kill -TERM "$(cat "$W/backend.pid")" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

servers=
for port in 19101 19102 19103; do
    servers+="
    server {
        listen 127.0.0.1:$port;
        location = /healthz { return 200 \"healthy\\n\"; }
        location / { return 200 \"ok\\n\"; }
    }"
done
mkdir -p "$W/tmp"
cat >"$W/backend.conf" <<EOF
worker_processes 1;
pid $W/backend.pid;
error_log $W/backend-error.log warn;
events { worker_connections 4096; }
http {
    default_type text/plain;
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $W/tmp/body;
    proxy_temp_path $W/tmp/proxy;
    fastcgi_temp_path $W/tmp/fastcgi;
    uwsgi_temp_path $W/tmp/uwsgi;
    scgi_temp_path $W/tmp/scgi;
$servers
}
EOF
PROXY=${IR_PROXY:-ballast}
case $PROXY in ballast | haproxy | nginx) ;; *) echo "IR_PROXY must be ballast, haproxy or nginx" >&2; exit 2 ;; esac

# shellcheck source=bench/peer-configs.sh
source "$ROOT/bench/peer-configs.sh"
haproxy_config "$W" 18080 1 127.0.0.1:19101 127.0.0.1:19102 127.0.0.1:19103 >"$W/haproxy.cfg"
nginx_config "$W" 18080 1 127.0.0.1:19101 127.0.0.1:19102 127.0.0.1:19103 >"$W/nginx.conf"

cat >"$W/ballast.toml" <<EOF
[admin]
listen = "127.0.0.1:19900"

[log]
access = "$W/access.log"

[runtime]
threads = 1

[[listener]]
name = "web"
listen = "127.0.0.1:18080"

[[route]]
upstream = "app"
${IR_ROUTE_EXTRA:-}

[[upstream]]
name = "app"
balance = "round-robin"
health = { path = "/healthz", interval = "2s", timeout = "1s", rise = 2, fall = 3 }
${IR_UPSTREAM_EXTRA:-}
servers = [
  { addr = "127.0.0.1:19101" },
  { addr = "127.0.0.1:19102" },
  { addr = "127.0.0.1:19103" },
]
${IR_EXTRA:-}
EOF

nginx -c "$W/backend.conf" -p "$W" -e "$W/backend-error.log"
case $PROXY in
    ballast) cmd=("$BIN" run --config "$W/ballast.toml") ;;
    haproxy) cmd=(haproxy -db -f "$W/haproxy.cfg") ;;
    nginx) cmd=(nginx -c "$W/nginx.conf" -p "$W" -e "$W/nginx-error.log" -g 'daemon off; master_process off;') ;;
esac
valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" "${cmd[@]}" >"$W/ballast.out" 2>&1 &
VG=$!
PIDS+=("$VG")

ok=0
for _ in $(seq 600); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:18080/ || true)
    if [[ $code == 200 ]]; then ((++ok >= 6)) && break; else ok=0; sleep 0.2; fi
done
((ok >= 6)) || { tail -n 40 "$W/ballast.out" >&2; echo "$PROXY did not come up" >&2; exit 1; }

if [[ ${IR_ROUTE_EXTRA:-} == *waiting_room* ]]; then
    # A returning visitor, as in compare.sh: the room's session cookie on every request.
    cookie=$(curl -s -D - -o /dev/null http://127.0.0.1:18080/ | tr -d '\r' |
        awk 'tolower($1) == "set-cookie:" && $2 ~ /^ballast_wr=/ { sub(";.*", "", $2); print $2 }')
    [[ -n $cookie ]] || { echo "no waiting-room cookie" >&2; exit 1; }
    export KEEPALIVE_HEADER="Cookie: $cookie"
fi
python3 "$ROOT/bench/keepalive_client.py" 127.0.0.1:18080 2000 "$C" # warm-up

total() { grep -h '^summary:\|^totals:' "$1" | head -n1 | awk '{print $2}'; }

callgrind_control -z "$VG" >/dev/null 2>&1
sleep "$IDLE_S"
callgrind_control -d "$VG" >/dev/null 2>&1
idle_ir=$(total "$(ls -t "$W"/cg.out.* | head -n1)")

callgrind_control -z "$VG" >/dev/null 2>&1
t0=$(date +%s.%N)
python3 "$ROOT/bench/keepalive_client.py" 127.0.0.1:18080 "$N" "$C"
t1=$(date +%s.%N)
callgrind_control -d "$VG" >/dev/null 2>&1
load_ir=$(total "$(ls -t "$W"/cg.out.* | head -n1)")
[[ -n ${IR_KEEP:-} ]] && cp "$(ls -t "$W"/cg.out.* | head -n1)" "$IR_KEEP"

python3 - "$load_ir" "$idle_ir" "$IDLE_S" "$t0" "$t1" "$N" <<'EOF'
import sys
load, idle, idle_s, t0, t1, n = (float(x) for x in sys.argv[1:])
secs = t1 - t0
net = load - idle * secs / idle_s
print(f"load: {load:,.0f} Ir over {secs:.1f} s; idle: {idle:,.0f} Ir per {idle_s:.0f} s")
print(f"Ir per request: {load / n:,.0f} gross, {net / n:,.0f} net of idle")
EOF
echo "($PROXY)"
