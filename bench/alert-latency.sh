#!/usr/bin/env bash
# bench/alert-latency.sh: time from a backend's death to the dead-server alert firing.
#
#   bench/alert-latency.sh [RUNS]        (default 10)
#
# Runs the ignored test `kill_to_firing_ten_times` in crates/ballast/tests/alerts_health.rs:
# three demo backends behind a gateway (debug build, as the tests build it) with health checks
# every second and `fall = 2`, four clients sending requests in a loop, and a rule
# `min = { below = 3 }` on the upstream's `healthy_servers`. Each run SIGKILLs one backend,
# measures until `/api/v1/alerts` (polled every 20 ms) shows the alert firing critical, then
# revives the backend and waits for the alert to resolve. It prints each run's time and the
# median. The issue's target is a median of at most 3 s; the machine may be shared, so read
# the figures with its load in mind. Every process the test starts is killed when it ends.
#
# Under load the clients' failed requests eject the dead server at once (passive checks), so
# the time is mostly the wait for the gateway monitor's next run (every second).
# ALERT_LATENCY_PASSIVE=off turns passive checks off, leaving the health checks (two failed
# checks a second apart) to notice the death.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-10}
cd "$ROOT"
ALERT_LATENCY_RUNS=$RUNS cargo test -p ballast --test alerts_health -- \
    --ignored --exact kill_to_firing_ten_times --nocapture 2>&1 |
    grep -E '^(run |kill → firing over|test result|thread|error)'
