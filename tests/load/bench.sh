#!/usr/bin/env bash
# Login benchmarks against a release build of Tessera on loopback (not part of CI).
#
#   tests/load/bench.sh [SECONDS]        # default 10 s per run
#
# Builds the host, mod_sasl2, mod_sasl2_fast and the load tool in release, starts `tessera run`
# with a temporary config (modules_enabled = ["sasl2", "sasl2_fast", "ping", "disco"], loopback ports,
# RUST_LOG=warn), and runs `tessera-load logins` over direct TLS: SCRAM-SHA-256 at concurrency
# 1, 4 and 16, then PLAIN, SCRAM-SHA-1, FAST HT-SHA-256-NONE, FAST HT-SHA-256-EXPR and
# SCRAM-SHA-256 again at concurrency 4 (same server, same run: FAST and SCRAM compare
# directly), then FAST HT-SHA-256-NONE at concurrency 16 (the peak rate), and paced (open
# loop, --rate) at half that rate, for the latency at half the peak rate. Each run creates its
# accounts and deletes them afterwards.
# Prints one JSON line per run on stdout (the summaries go to stderr). The server and the tool
# share the machine: compare server CPU per login more than logins per second.
set -euo pipefail

SECS="${1:-10}"
# shellcheck source=server.sh
source "$(dirname "$0")/server.sh"

run() {
    "$BIN/tessera-load" logins --server "$DIRECT" --tls direct \
        --duration "$SECS" --create "$2" --tessera-config "$CONF" \
        --server-pid "$SERVER" --mechanism "$1" --concurrency "$2" "${@:3}"
}

run scram-sha-256 1
run scram-sha-256 4
run scram-sha-256 16
run plain 4
run scram-sha-1 4
run fast-none 4
run fast-expr 4
run scram-sha-256 4
run fast-none 16 | tee "$DIR/fast-peak.json"
PEAK="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["logins_per_s"])' "$DIR/fast-peak.json")"
HALF="$(python3 -c 'import sys; print(round(float(sys.argv[1]) / 2))' "$PEAK")"
run fast-none 16 --rate "$HALF"
