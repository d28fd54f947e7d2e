#!/usr/bin/env bash
# bench/compare.sh: baseline throughput and latency of Ballast, HAProxy and nginx.
#
# All three proxies run in front of the same three backends, one after another. With one worker
# (the default) each proxy is pinned to CPU 0; with two (`--workers 2`, or `--workers 1,2` for
# both in the same run) it has two workers and both CPUs, as a default install would. The load
# generator (wrk) and the backends (one nginx) share CPU 1. The script runs everything on
# 127.0.0.1 and stops every process it started when it exits.
# bench/README.md explains the method and how the three configurations correspond.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/compare.sh [options]

  --duration D      measured run per proxy, wrk syntax: 10s, 1m (default 10s)
  --connections N   concurrent client connections (default 64)
  --rounds R        run the whole sequence R times, interleaved, report medians (default 3)
  --warmup D        warm-up run before each measured run (default 2s)
  --workers LIST    worker threads (processes for nginx) per proxy: 1, 2, or 1,2 for both in
                    the same run, interleaved (default 1). 1 pins the proxy to CPU 0; more
                    lets it use CPUs 0 to N-1
  --only LIST       comma-separated subset of ballast,ballast-policies,ballast-nostore,
                    ballast-nomonitor,ballast-monitoring,haproxy,nginx (default:
                    ballast,haproxy,nginx). ballast-nomonitor is Ballast with no monitor at
                    all ([alerting] default_rules = false); ballast-monitoring is the same with
                    20 monitors of 8 kinds and 50 rules. ballast-policies is Ballast
                    with every resilience policy on (retry budget, breaker, flood guard, sorry
                    page, concurrency limit with priority, cache, waiting room);
                    ballast-nostore is Ballast with the operations store off ([store] url =
                    "off"; plain ballast keeps its default SQLite store beside its config)
  --out FILE        also write the Markdown report to FILE
  --build           always run `cargo build --release -p ballast` first
  --no-build        never build; fail if the Ballast binary is missing
  --keep            keep the work directory (configs, logs, raw wrk output)
  -h, --help        show this help

environment:
  BALLAST_BIN       Ballast binary (default: <repo>/target/release/ballast; never built if set)
EOF
}

DURATION=10s
CONNS=64
ROUNDS=3
WARMUP=2s
WORKERS=1
ONLY=ballast,haproxy,nginx
OUT=
BUILD=auto
KEEP=0

need_arg() { [[ $# -ge 2 && -n $2 ]] || { echo "compare.sh: $1 needs a value" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --duration) need_arg "$@"; DURATION=$2; shift 2 ;;
        --connections) need_arg "$@"; CONNS=$2; shift 2 ;;
        --rounds) need_arg "$@"; ROUNDS=$2; shift 2 ;;
        --warmup) need_arg "$@"; WARMUP=$2; shift 2 ;;
        --workers) need_arg "$@"; WORKERS=$2; shift 2 ;;
        --only) need_arg "$@"; ONLY=$2; shift 2 ;;
        --out) need_arg "$@"; OUT=$2; shift 2 ;;
        --build) BUILD=always; shift ;;
        --no-build) BUILD=never; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "compare.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

say() { printf '[compare] %s\n' "$*" >&2; }
die() { printf '[compare] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Arguments and prerequisites

# "10s" / "2m" / "1h" -> seconds; anything else is refused (wrk would read a bare number as s).
to_seconds() {
    [[ $1 =~ ^([0-9]+)([smh])$ ]] || return 1
    local n=${BASH_REMATCH[1]}
    case ${BASH_REMATCH[2]} in s) echo "$n" ;; m) echo $((n * 60)) ;; h) echo $((n * 3600)) ;; esac
}
DURATION_S=$(to_seconds "$DURATION") || die "--duration '$DURATION': write a number with a unit, e.g. 10s or 1m"
WARMUP_S=$(to_seconds "$WARMUP") || die "--warmup '$WARMUP': write a number with a unit, e.g. 2s"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "--connections '$CONNS': expected a positive integer"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds '$ROUNDS': expected a positive integer"
((DURATION_S > 0)) || die "--duration must be at least 1s"
IFS=, read -r -a WORKER_COUNTS <<<"$WORKERS"
for n in "${WORKER_COUNTS[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "--workers '$WORKERS': expected counts such as 1, 2 or 1,2"
    ((n <= $(nproc --all))) || die "--workers $n: this machine has $(nproc --all) CPUs"
done
# The worker count the configurations below are written for (set per run).
THREADS=1

PROXIES=()
IFS=, read -r -a _only <<<"$ONLY"
for p in ballast ballast-policies ballast-nostore ballast-nomonitor ballast-monitoring haproxy nginx; do # fixed order, whatever the order in --only
    for q in "${_only[@]}"; do [[ $q == "$p" ]] && PROXIES+=("$p") && break; done
done
for q in "${_only[@]}"; do
    case $q in ballast | ballast-policies | ballast-nostore | ballast-nomonitor | ballast-monitoring | haproxy | nginx) ;; *) die "--only: unknown proxy '$q' (expected ballast, ballast-policies, ballast-nostore, ballast-nomonitor, ballast-monitoring, haproxy, nginx)" ;; esac
done
((${#PROXIES[@]} > 0)) || die "--only: no proxy selected"
wants() { local p; for p in "${PROXIES[@]}"; do [[ $p == "$1" ]] && return 0; done; return 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/peer-configs.sh
source "$ROOT/bench/peer-configs.sh"

for tool in taskset wrk curl nginx; do
    command -v "$tool" >/dev/null || die "'$tool' not found (apt-get install -y haproxy nginx wrk)"
done
wants haproxy && { command -v haproxy >/dev/null || die "'haproxy' not found (apt-get install -y haproxy)"; }
(($(nproc --all) >= 2)) || die "needs at least 2 CPUs (proxies on CPU 0, load generator and backends on CPU 1)"
taskset -c 1 true 2>/dev/null || die "cannot pin to CPU 1 (taskset -c 1 failed; check the allowed CPU set)"

if wants ballast || wants ballast-policies || wants ballast-nostore || wants ballast-nomonitor || wants ballast-monitoring; then
    if [[ -n ${BALLAST_BIN:-} ]]; then
        [[ -x $BALLAST_BIN ]] || die "BALLAST_BIN=$BALLAST_BIN is not an executable file"
    else
        BALLAST_BIN=$ROOT/target/release/ballast
        if [[ $BUILD == always || ($BUILD == auto && ! -x $BALLAST_BIN) ]]; then
            say "building Ballast: cargo build --release -p ballast (several minutes on a small machine)"
            (cd "$ROOT" && cargo build --release -p ballast) || die "cargo build --release -p ballast failed"
        fi
        [[ -x $BALLAST_BIN ]] || die "Ballast binary not found at $BALLAST_BIN; build it with
    cargo build --release -p ballast
or run this script with --build (or --only haproxy,nginx to measure the peers alone)"
    fi
fi

# ---------------------------------------------------------------------------------------------
# Ports, work directory, process bookkeeping and cleanup

BACKEND_PORTS=(19101 19102 19103)
BACKENDS=("${BACKEND_PORTS[@]/#/127.0.0.1:}")
ADMIN_PORT=19900
declare -A PORT=([direct]=19101 [ballast]=18080 [haproxy]=18081 [nginx]=18082 [ballast-policies]=18083 [ballast-nostore]=18084 [ballast-nomonitor]=18085 [ballast-monitoring]=18086)
ADMIN_PORT_POLICIES=19901
ADMIN_PORT_NOSTORE=19902
ADMIN_PORT_NOMONITOR=19903
ADMIN_PORT_MONITORING=19904

W=$(mktemp -d /tmp/ballast-bench.XXXXXX)
chmod 755 "$W" # nginx workers run as nobody and must reach their temp directories
RESULTS=$W/results.txt
: >"$RESULTS"

declare -A PIDS=()

# Stops one started process: SIGTERM, up to 10 s grace, then SIGKILL for it and its children.
stop_proc() {
    local name=$1 pid=${PIDS[$1]:-} i kids
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kids=$(ps -o pid= --ppid "$pid" 2>/dev/null | tr -d ' ' || true)
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name (pid $pid) ignored SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
    fi
    wait "$pid" 2>/dev/null || true
    unset "PIDS[$name]"
}

cleanup() {
    local rc=$? name
    trap - EXIT INT TERM
    for name in "${!PIDS[@]}"; do stop_proc "$name"; done
    if ((KEEP)) || ((rc != 0)); then
        say "work directory kept: $W"
    else
        rm -rf "$W"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for p in "${BACKEND_PORTS[@]}" "${PORT[ballast]}" "${PORT[haproxy]}" "${PORT[nginx]}" "${PORT[ballast-policies]}" "${PORT[ballast-nostore]}" "${PORT[ballast-nomonitor]}" "${PORT[ballast-monitoring]}" "$ADMIN_PORT" "$ADMIN_PORT_POLICIES" "$ADMIN_PORT_NOSTORE" "$ADMIN_PORT_NOMONITOR" "$ADMIN_PORT_MONITORING"; do
    port_busy "$p" && die "port 127.0.0.1:$p is already in use; stop whatever listens there first"
done

# start NAME CPU CMD...: runs CMD in the background pinned to CPU, output to $W/NAME.out.
start() {
    local name=$1 cpu=$2
    shift 2
    taskset -c "$cpu" "$@" >"$W/$name.out" 2>&1 &
    PIDS[$name]=$!
}

show_log() {
    local f shown=0
    for f in "$W/$1.out" "$W/$1-error.log"; do
        [[ -s $f ]] || continue
        printf -- '----- %s (last 40 lines) -----\n' "$f" >&2
        tail -n 40 "$f" >&2
        shown=1
    done
    ((shown)) || say "$1 printed nothing (stdout and stderr: $W/$1.out)"
}

# wait_ready NAME URL: 200 six times in a row (covers all three servers twice) within 30 s.
wait_ready() {
    local name=$1 url=$2 ok=0 code deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
            show_log "$name"
            die "$name exited during start-up (log above)"
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)
        if [[ $code == 200 ]]; then
            ((++ok >= 6)) && return 0
        else
            ok=0
            sleep 0.2
        fi
    done
    show_log "$name"
    die "$name did not answer 200 on $url within 30 s (last status: ${code:-none}; log above)"
}

# CPU time (clock ticks) used so far by a process and its direct children (nginx workers):
# prints "user system".
cpu_ticks() {
    local pid=$1 user=0 sys=0 p u s
    for p in "$pid" $(ps -o pid= --ppid "$pid" 2>/dev/null || true); do
        # fields after the ")" of the command name: utime and stime are the 12th and 13th
        read -r u s < <(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12, $13}') || true
        user=$((user + ${u:-0}))
        sys=$((sys + ${s:-0}))
    done
    echo "$user $sys"
}
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------------------------------------
# Configurations

BODY='ok\n'

write_backend_conf() {
    local port servers=
    for port in "${BACKEND_PORTS[@]}"; do
        servers+="
    server {
        listen 127.0.0.1:$port;
        location = /healthz { return 200 \"healthy\\n\"; }
        location / { return 200 \"$BODY\"; }
    }"
    done
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
    client_body_temp_path $W/backend-tmp/body;
    proxy_temp_path $W/backend-tmp/proxy;
    fastcgi_temp_path $W/backend-tmp/fastcgi;
    uwsgi_temp_path $W/backend-tmp/uwsgi;
    scgi_temp_path $W/backend-tmp/scgi;
$servers
}
EOF
    mkdir -p "$W/backend-tmp"
}

write_haproxy_conf() {
    haproxy_config "$W" "${PORT[haproxy]}" "$THREADS" "${BACKENDS[@]}" >"$W/haproxy.cfg"
}

write_nginx_conf() {
    nginx_config "$W" "${PORT[nginx]}" "$THREADS" "${BACKENDS[@]}" >"$W/nginx.conf"
}

write_ballast_conf() {
    cat >"$W/ballast.toml" <<EOF
[admin]
listen = "127.0.0.1:$ADMIN_PORT"

[log]
access = "$W/ballast-access.log"

[runtime]
threads = $THREADS

[[listener]]
name = "web"
listen = "127.0.0.1:${PORT[ballast]}"

[[route]]
upstream = "app"

[[upstream]]
name = "app"
balance = "round-robin"
health = { path = "/healthz", interval = "2s", timeout = "1s", rise = 2, fall = 3 }
servers = [
  { addr = "127.0.0.1:${BACKEND_PORTS[0]}" },
  { addr = "127.0.0.1:${BACKEND_PORTS[1]}" },
  { addr = "127.0.0.1:${BACKEND_PORTS[2]}" },
]
EOF
}

# The plain gateway without its operations store (by default a SQLite file beside the config,
# which the plain `ballast` run keeps): the same in every other respect, so that the ratio
# ballast ÷ ballast-nostore prices the store (its event sink) on the request path.
write_ballast_nostore_conf() {
    write_ballast_conf
    sed -e "s|127.0.0.1:$ADMIN_PORT\"|127.0.0.1:$ADMIN_PORT_NOSTORE\"|" \
        -e "s|127.0.0.1:${PORT[ballast]}\"|127.0.0.1:${PORT[ballast-nostore]}\"|" \
        -e "s|$W/ballast-access.log|$W/ballast-nostore-access.log|" \
        "$W/ballast.toml" >"$W/ballast-nostore.toml"
    printf '\n[store]\nurl = "off"\n' >>"$W/ballast-nostore.toml"
}

# The plain gateway with no monitoring at all (the default rule pack and its built-in gateway
# monitor off), and the same with 20 monitors of 8 kinds and 50 rules: the ratio
# ballast-monitoring ÷ ballast-nomonitor prices monitoring on the request path.
write_ballast_nomonitor_conf() {
    write_ballast_conf
    sed -e "s|127.0.0.1:$ADMIN_PORT\"|127.0.0.1:$ADMIN_PORT_NOMONITOR\"|" \
        -e "s|127.0.0.1:${PORT[ballast]}\"|127.0.0.1:${PORT[ballast-nomonitor]}\"|" \
        -e "s|$W/ballast-access.log|$W/ballast-nomonitor-access.log|" \
        "$W/ballast.toml" >"$W/ballast-nomonitor.toml"
    printf '\n[alerting]\ndefault_rules = false\n' >>"$W/ballast-nomonitor.toml"
}

write_ballast_monitoring_conf() {
    write_ballast_conf
    local f=$W/ballast-monitoring.toml i b rules=0
    sed -e "s|127.0.0.1:$ADMIN_PORT\"|127.0.0.1:$ADMIN_PORT_MONITORING\"|" \
        -e "s|127.0.0.1:${PORT[ballast]}\"|127.0.0.1:${PORT[ballast-monitoring]}\"|" \
        -e "s|$W/ballast-access.log|$W/ballast-monitoring-access.log|" \
        "$W/ballast.toml" >"$f"
    printf '\n[alerting]\ndefault_rules = false\n' >>"$f"
    rule() { # rule NAME MONITOR VALUE LEVELS
        printf '\n[[rule]]\nname = "%s"\nmonitor = "%s"\nvalue = "%s"\n%s\n' "$1" "$2" "$3" "$4" >>"$f"
        rules=$((rules + 1))
    }
    # 4 gateway monitors (1 s, windows 5 s to 60 s) with 6 rules each: 24 rules
    for i in 5 10 30 60; do
        printf '\n[[monitor]]\nname = "gw%s"\nkind = "gateway"\ninterval = "1s"\nwindow = "%ss"\n' "$i" "$i" >>"$f"
        rule "gw$i-5xx" "gw$i" error_ratio 'warn = { above = "1%", recover = "0.5%" }
crit = { above = "5%", recover = "2%" }'
        rule "gw$i-p99" "gw$i" p99_ms 'warn = { above = 250, recover = 200 }'
        rule "gw$i-healthy" "gw$i" healthy_servers 'min = { below = 1 }'
        rule "gw$i-degraded" "gw$i" servers_down 'warn = { above = 0 }'
        rule "gw$i-rps" "gw$i" requests_per_s 'min = { below = 1, severity = "warning" }'
        rule "gw$i-retries" "gw$i" retries_per_s 'warn = { above = 100 }'
    done
    # host: 4 rules; nginx by its exact name: 1 rule
    printf '\n[[monitor]]\nname = "host"\nkind = "host"\ninterval = "5s"\n' >>"$f"
    rule disk host disk_used 'warn = { above = "70%" }
crit = { above = "90%" }'
    rule inodes host inodes_used 'warn = { above = "70%" }'
    rule fds host fds_used 'warn = { above = "70%" }'
    rule load host running_per_core 'warn = { above = 1.5 }'
    printf '\n[[monitor]]\nname = "nginx"\nkind = "process"\nprocess = "nginx"\ninterval = "5s"\n' >>"$f"
    rule nginx-count nginx count 'min = { below = 1 }'
    # 3 tcp, 3 http, 2 process (by command line), 2 dns, 2 heartbeat, 1 journey, 1 tcp to the
    # admin: 14 monitors, 21 rules
    for b in 0 1 2; do
        printf '\n[[monitor]]\nname = "tcp%s"\nkind = "tcp"\ntarget = "127.0.0.1:%s"\ninterval = "2s"\n' "$b" "${BACKEND_PORTS[$b]}" >>"$f"
        rule "tcp$b-up" "tcp$b" up 'min = { below = 1 }'
        printf '\n[[monitor]]\nname = "http%s"\nkind = "http"\nurl = "http://127.0.0.1:%s/healthz"\ninterval = "2s"\n' "$b" "${BACKEND_PORTS[$b]}" >>"$f"
        rule "http$b-up" "http$b" up 'min = { below = 1 }'
        rule "http$b-slow" "http$b" latency_ms 'warn = { above = 500 }'
    done
    for i in 1 2; do
        printf '\n[[monitor]]\nname = "proc%s"\nkind = "process"\ncmdline = "nginx"\ninterval = "5s"\n' "$i" >>"$f"
        rule "proc$i-count" "proc$i" count 'min = { below = 1 }'
        rule "proc$i-rss" "proc$i" rss_bytes 'warn = { above = 1e10 }'
        printf '\n[[monitor]]\nname = "dns%s"\nkind = "dns"\nhost = "localhost"\ninterval = "5s"\n' "$i" >>"$f"
        rule "dns$i-up" "dns$i" up 'min = { below = 1 }'
        printf '\n[[monitor]]\nname = "job%s"\nkind = "heartbeat"\nperiod = "1h"\n' "$i" >>"$f"
        rule "job$i-late" "job$i" late 'crit = { above = 0 }'
        rule "job$i-failed" "job$i" failed 'crit = { above = 0 }'
    done
    printf '\n[[monitor]]\nname = "journey"\nkind = "journey"\ninterval = "2s"\nsteps = [{ name = "a", url = "http://127.0.0.1:%s/healthz" }, { name = "b", url = "http://127.0.0.1:%s/healthz" }]\n' "${BACKEND_PORTS[0]}" "${BACKEND_PORTS[1]}" >>"$f"
    rule journey-failed journey failed_step 'warn = { above = 0 }'
    printf '\n[[monitor]]\nname = "admin"\nkind = "tcp"\ntarget = "127.0.0.1:%s"\ninterval = "2s"\n' "$ADMIN_PORT_MONITORING" >>"$f"
    rule admin-up admin up 'min = { below = 1 }'
    local monitors
    monitors=$(grep -c '^\[\[monitor\]\]' "$f")
    [[ $monitors == 20 && $rules == 50 ]] || die "the monitoring config has $monitors monitors and $rules rules, not 20 and 50"
}

# The same gateway with every resilience policy switched on: retry budget and back-off (the
# route default), a circuit breaker, the flood guard (one wrk client: never blocked), a sorry
# page, admission control (an adaptive concurrency limit with a priority class), the response
# cache (the backends' answers carry no freshness, so every request is a lookup and a miss) and
# a waiting room that never fills, entered with a session cookie taken before the run (every
# request carries it and has it verified, as a returning visitor's would). Compared with plain
# `ballast` it prices the policies on the hot path.
write_ballast_policies_conf() {
    cat >"$W/ballast-policies.toml" <<EOF
[admin]
listen = "127.0.0.1:$ADMIN_PORT_POLICIES"

[log]
access = "$W/ballast-policies-access.log"

[runtime]
threads = $THREADS

[[listener]]
name = "web"
listen = "127.0.0.1:${PORT[ballast-policies]}"

[[route]]
upstream = "app"
retry = { attempts = 3, on = ["connect-failure", "reset", "timeout", "502", "503"], budget = "10%" }
flood = { max_per_second = 10000000, factor = 10 }
sorry = { retry_after = "10s" }
priority = "high"
cache = {}
waiting_room = { capacity = 1000 }

[[upstream]]
name = "app"
balance = "round-robin"
health = { path = "/healthz", interval = "2s", timeout = "1s", rise = 2, fall = 3 }
breaker = { consecutive_failures = 5, error_ratio = "50%" }
limit = {}
servers = [
  { addr = "127.0.0.1:${BACKEND_PORTS[0]}" },
  { addr = "127.0.0.1:${BACKEND_PORTS[1]}" },
  { addr = "127.0.0.1:${BACKEND_PORTS[2]}" },
]
EOF
}

start_proxy() {
    # One worker: CPU 0 only. More: CPUs 0 to N-1, as the default (unpinned) install has.
    local cpus=0
    ((THREADS > 1)) && cpus="0-$((THREADS - 1))"
    case $1 in
        ballast) start ballast "$cpus" "$BALLAST_BIN" run --config "$W/ballast.toml" ;;
        ballast-policies) start ballast-policies "$cpus" "$BALLAST_BIN" run --config "$W/ballast-policies.toml" ;;
        ballast-nostore) start ballast-nostore "$cpus" "$BALLAST_BIN" run --config "$W/ballast-nostore.toml" ;;
        ballast-nomonitor) start ballast-nomonitor "$cpus" "$BALLAST_BIN" run --config "$W/ballast-nomonitor.toml" ;;
        ballast-monitoring) start ballast-monitoring "$cpus" "$BALLAST_BIN" run --config "$W/ballast-monitoring.toml" ;;
        haproxy) start haproxy "$cpus" haproxy -db -f "$W/haproxy.cfg" ;;
        nginx) start nginx "$cpus" nginx -p "$W" -c "$W/nginx.conf" -e "$W/nginx-error.log" -g 'daemon off;' ;;
    esac
}

access_log_of() {
    case $1 in
        ballast) echo "$W/ballast-access.log" ;;
        ballast-policies) echo "$W/ballast-policies-access.log" ;;
        ballast-nostore) echo "$W/ballast-nostore-access.log" ;;
        ballast-nomonitor) echo "$W/ballast-nomonitor-access.log" ;;
        ballast-monitoring) echo "$W/ballast-monitoring-access.log" ;;
        haproxy) echo "$W/haproxy.out" ;; # stdout carries the httplog lines
        nginx) echo "$W/nginx-access.log" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Load

# Prints "rps p50_ms p99_ms errors" from wrk --latency output.
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
            if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
            if (v ~ /h$/)  return substr(v, 1, length(v) - 1) * 3600000
            return -1
        }
        /^Requests\/sec:/                  { rps = $2 }
        /Latency Distribution/             { dist = 1; next }
        dist && $1 == "50%"                { p50 = ms($2) }
        dist && $1 == "99%"                { p99 = ms($2); dist = 0 }
        /Non-2xx or 3xx responses:/        { err += $NF }
        /Socket errors:/ {
            for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { v = $i; sub(",", "", v); err += v }
        }
        END {
            if (rps == "" || p50 == "" || p99 == "") exit 1
            printf "%s %.3f %.3f %d\n", rps, p50, p99, err
        }'
}

# measure ROUND NAME PORT PID KEY: warm-up, then the measured run; appends a line to $RESULTS
# under KEY (the name and the worker count, e.g. ballast@2).
measure() {
    local round=$1 name=$2 pid=$4 key=$5 url="http://127.0.0.1:$3/" raw c0 c1 t0 t1 cpu parsed rps p50 p99 err
    raw=$W/wrk-$key-r$round.txt
    local hdr=()
    if [[ $name == ballast-policies ]]; then
        # A returning visitor: the waiting room's session cookie, taken once, sent by every
        # request (a browser would do the same).
        local cookie
        cookie=$(curl -s -D - -o /dev/null "$url" | tr -d '\r' |
            awk 'tolower($1) == "set-cookie:" && $2 ~ /^ballast_wr=/ { sub(";.*", "", $2); print $2 }')
        [[ -n $cookie ]] || die "no waiting-room cookie from $name ($url)"
        hdr=(-H "Cookie: $cookie")
    fi
    taskset -c 1 timeout $((WARMUP_S + 30)) wrk -t1 -c"$CONNS" -d"$WARMUP" "${hdr[@]}" "$url" >/dev/null 2>&1 ||
        die "wrk warm-up against $name ($url) failed"
    c0=$(cpu_ticks "$pid")
    t0=$(date +%s.%N)
    taskset -c 1 timeout $((DURATION_S + 30)) wrk -t1 -c"$CONNS" -d"$DURATION" --latency "${hdr[@]}" "$url" >"$raw" 2>&1 ||
        { cat "$raw" >&2; die "wrk against $name ($url) failed"; }
    t1=$(date +%s.%N)
    c1=$(cpu_ticks "$pid")
    parsed=$(parse_wrk <"$raw") || { cat "$raw" >&2; die "could not parse wrk output for $name"; }
    read -r rps p50 p99 err <<<"$parsed"
    # share of one core, and CPU microseconds per request split into user and kernel time
    cpu=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" -v rps="$rps" '
        BEGIN {
            split(a, x, " "); split(b, y, " "); secs = t1 - t0; n = rps * secs
            u = (y[1] - x[1]) / hz; s = (y[2] - x[2]) / hz
            printf "%.0f %.2f %.2f", 100 * (u + s) / secs, 1e6 * u / n, 1e6 * s / n
        }')
    echo "$round $key $parsed $cpu" >>"$RESULTS"
    read -r cpu usr_us sys_us <<<"$cpu"
    say "round $round  $(printf '%-10s' "$key") ${rps} req/s  p50 ${p50} ms  p99 ${p99} ms  errors ${err}  cpu ${cpu}% (${usr_us} µs user + ${sys_us} µs kernel per request)"
}

# ---------------------------------------------------------------------------------------------
# Run

# The proxies' configurations for the current worker count ($THREADS).
write_configs() {
    wants haproxy && write_haproxy_conf
    wants nginx && write_nginx_conf
    wants ballast && write_ballast_conf
    wants ballast-policies && write_ballast_policies_conf
    wants ballast-nostore && write_ballast_nostore_conf
    wants ballast-nomonitor && write_ballast_nomonitor_conf
    wants ballast-monitoring && write_ballast_monitoring_conf
    return 0
}

write_backend_conf

say "work directory: $W"
say "backends: one nginx worker on CPU 1, ports ${BACKEND_PORTS[*]}"
start backend 1 nginx -p "$W" -c "$W/backend.conf" -e "$W/backend-error.log" -g 'daemon off;'
for p in "${BACKEND_PORTS[@]}"; do wait_ready backend "http://127.0.0.1:$p/healthz"; done

for ((r = 1; r <= ROUNDS; r++)); do
    measure "$r" direct "${PORT[direct]}" "${PIDS[backend]}" direct
    # Odd rounds run the proxies in the listed order, even rounds in reverse, so that no proxy
    # always runs first (or last) after the backends warm up or the machine's load shifts.
    ORDER=("${PROXIES[@]}")
    if ((r % 2 == 0)); then
        ORDER=()
        for ((i = ${#PROXIES[@]} - 1; i >= 0; i--)); do ORDER+=("${PROXIES[i]}"); done
    fi
    for THREADS in "${WORKER_COUNTS[@]}"; do
        write_configs
        for name in "${ORDER[@]}"; do
            log_file=$(access_log_of "$name")
            start_proxy "$name"
            wait_ready "$name" "http://127.0.0.1:${PORT[$name]}/"
            measure "$r" "$name" "${PORT[$name]}" "${PIDS[$name]}" "$name@$THREADS"
            if [[ $name == ballast && $r == 1 ]]; then
                if curl -sf --max-time 2 -o "$W/ballast-metrics.txt" "http://127.0.0.1:$ADMIN_PORT/metrics"; then
                    if command -v promtool >/dev/null && ! promtool check metrics <"$W/ballast-metrics.txt" >"$W/promtool.txt" 2>&1; then
                        say "warning: promtool check metrics found problems in Ballast's /metrics (see $W/promtool.txt)"
                    fi
                else
                    say "warning: Ballast admin http://127.0.0.1:$ADMIN_PORT/metrics did not answer"
                fi
            fi
            stop_proc "$name"
            (($(wc -l <"$log_file" 2>/dev/null || echo 0) >= 100)) ||
                say "warning: $name wrote (almost) no access log lines to $log_file"
            # a fresh log for every run, so that the check above sees this run's lines only
            if ((KEEP)); then mv "$log_file" "$W/$name-$THREADS-access-r$r.log"; else rm -f "$log_file"; fi
        done
    done
done

# ---------------------------------------------------------------------------------------------
# Report

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# col KEY C: the median of column C of KEY's rounds; column 10 is requests per proxy CPU-second
# (1e6 / the CPU µs per request, user + kernel), computed per round.
col() {
    awk -v n="$1" -v c="$2" '$2 == n { if (c == 10) { if ($8 + $9 > 0) print 1e6 / ($8 + $9) } else print $c }' "$RESULTS" | median
}
total_errors() { awk -v n="$1" '$2 == n { s += $6 } END { print s + 0 }' "$RESULTS"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }

declare -A LABEL=(
    [direct]="direct to backend (reference)"
    [ballast]="Ballast $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
    [haproxy]="HAProxy $(haproxy -v 2>/dev/null | awk 'NR == 1 { print $3 }')"
    [nginx]="nginx $(nginx -v 2>&1 | sed 's|.*nginx/||')"
    [ballast-policies]="Ballast, every policy on"
    [ballast-nostore]="Ballast, operations store off"
    [ballast-nomonitor]="Ballast, no monitoring"
    [ballast-monitoring]="Ballast, 20 monitors and 50 rules"
)

# table N: the results at N workers, ratios against Ballast at N workers.
table() {
    local n=$1 name key b_rps="" b_p99="" b_eff="" rps p50 p99 eff rr pr er cpu per
    if wants ballast; then
        b_rps=$(col "ballast@$n" 3); b_p99=$(col "ballast@$n" 5); b_eff=$(col "ballast@$n" 10)
    fi
    if ((n == 1)); then
        echo "### One worker, pinned to CPU 0"
    else
        echo "### $n workers on CPUs 0-$((n - 1)) (as a default install runs)"
    fi
    echo
    echo "| target | req/s | p50 ms | p99 ms | errors | proxy CPU | CPU µs/request (user + kernel) | req per proxy CPU-second | Ballast ÷ this: req/s | p99 | req per CPU-s |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for name in direct "${PROXIES[@]}"; do
        key="$name@$n"
        [[ $name == direct ]] && key=direct
        rps=$(col "$key" 3); p50=$(col "$key" 4); p99=$(col "$key" 5); eff=$(col "$key" 10)
        if [[ $name == direct || $name == ballast || -z $b_rps ]]; then
            rr="—"; pr="—"; er="—"
        else
            rr=$(ratio "$b_rps" "$rps"); pr=$(ratio "$b_p99" "$p99"); er=$(ratio "$b_eff" "$eff")
        fi
        cpu=$(printf '%.0f%%' "$(col "$key" 7)")
        per=$(printf '%.2f + %.2f' "$(col "$key" 8)" "$(col "$key" 9)")
        eff=$(printf '%.0f' "$eff")
        [[ $name == direct ]] && { cpu="—"; per="—"; eff="—"; }
        printf '| %s | %.0f | %.3f | %.3f | %s | %s | %s | %s | %s | %s | %s |\n' \
            "${LABEL[$name]}" "$rps" "$p50" "$p99" "$(total_errors "$key")" "$cpu" "$per" "$eff" "$rr" "$pr" "$er"
    done
    echo
}

report() {
    echo "## Baseline: Ballast vs HAProxy vs nginx"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc --all) CPUs."
    echo "wrk -t1 -c$CONNS -d$DURATION --latency (after a $WARMUP warm-up), median of $ROUNDS round(s)."
    echo "wrk and the backends share CPU 1 (pinned); the proxies' CPUs are given per table."
    echo
    local n
    for n in "${WORKER_COUNTS[@]}"; do table "$n"; done
    echo "req/s, req per CPU-second: a ratio above 1 favours Ballast; p99: below 1 does. Errors are"
    echo "non-2xx/3xx answers plus socket errors, summed over all rounds. Proxy CPU is the share of"
    echo "one core the proxy used while measured. CPU µs per request is the proxy's user and kernel"
    echo "CPU time divided by the requests served (user: its own code; kernel: mostly its system"
    echo "calls); req per proxy CPU-second is its inverse, the efficiency figure that does not"
    echo "depend on whether the proxy or the load generator was the limit."
    echo
    echo "<details><summary>Per-round results</summary>"
    echo
    echo "| round | target@workers | req/s | p50 ms | p99 ms | errors | proxy CPU | µs user | µs kernel |"
    echo "|--:|---|--:|--:|--:|--:|--:|--:|--:|"
    awk '{ printf "| %s | %s | %.0f | %.3f | %.3f | %d | %s%% | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$RESULTS"
    echo
    echo "</details>"
}

if [[ -n $OUT ]]; then
    report | tee "$OUT"
else
    report
fi
