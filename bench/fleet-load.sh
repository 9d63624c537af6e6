#!/bin/bash
# Fleet-server throughput and memory (docs/benchmarks.md, "Fleet server"): builds update-server
# and the load generator bench/fleet-load, then runs the scenarios against a fresh server with
# mutual TLS and SQLite on 127.0.0.1. The load generator shares the machine with the server.
#
#   bash bench/fleet-load.sh [SCENARIO...]     (keepalive events handshakes resumed fleet idle push)
#
# Sizes: CONCURRENCY (256), SECONDS (10), FLEET (20000), IDLE (5000), PUSH (5000).
# SERVER_LOG sets the server's RUST_LOG (default warn: no line per request).
# The release profile here skips fat LTO (BENCH_FULL_RELEASE=1 builds exactly as shipped).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_FULL_RELEASE:-0}" != 1 ]; then
    export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
fi
cargo build --release -q -p update-server -p fleet-load
ulimit -n "$(ulimit -Hn)"
echo "# $(date -u +%F) $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
exec target/release/fleet-load target/release/update-server "$@"
