#!/usr/bin/env bash
# bench/remedy-restart.sh: time from a backend's death to that backend serving again after
# an automatic restart, over ten runs.
#
#   bench/remedy-restart.sh
#
# Runs the ignored test `kill_to_serving_again_ten_times` in
# crates/ballast/tests/remedy_restart.rs: a demo backend run as a service (a start script
# that starts it detached, writes a pid file and returns once it listens) behind a gateway
# (debug build, as the tests build it) with health checks every 500 ms and `fall = 2`, a rule
# on the server's `healthy` value, and a `restart` remedy whose command is the start script.
# Each run SIGKILLs the backend and measures until it answers a request itself again. It
# prints each run and the median. The issue's target is a median of at most 10 s. The
# machine may be shared: read the figures with its load in mind. Every process the test
# starts is killed when it ends.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cargo test -p ballast --test remedy_restart -- \
    --ignored --exact kill_to_serving_again_ten_times --nocapture 2>&1 |
    grep -E '^(round |kill|test result|thread|error)'
