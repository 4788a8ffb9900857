#!/usr/bin/env bash
# Stream management (XEP-0198, mod_smacks) on one release server (not part of CI;
# docs/benchmarks.md has the figures):
#
#   tests/load/smacks.sh [SECONDS] [ROUNDS] [IDLE]   # default 10 s per run, 3 rounds, 10000
#
# In alternating rounds at 4 clients, FAST HT-SHA-256-NONE logins: a full login (SASL2 +
# Bind 2), the same enabling stream management inline in Bind 2, and a resumption (the last
# connection dropped without a word, the session resumed inline in SASL2 instead of binding):
# server CPU per login and latency. Then IDLE idle authenticated sessions with stream
# management enabled: server memory per session. One JSON line per run on stdout.
set -euo pipefail

SECS="${1:-10}"
ROUNDS="${2:-3}"
IDLE="${3:-10000}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
(cd "$ROOT" && cargo build --release --quiet -p tessera-host -p tessera-load -p tessera-mod-sasl2 \
    -p tessera-mod-sasl2-fast -p tessera-mod-ping -p tessera-mod-disco -p tessera-mod-smacks)
BIN="$ROOT/target/release"
# shellcheck source=start.sh
source "$ROOT/tests/load/start.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
MODULES='"sasl2", "sasl2_fast", "ping", "disco", "smacks"'
start_server "$BIN"
trap stop_server EXIT

load() {
    "$BIN/tessera-load" "$1" --server "$DIRECT" --tessera-config "$CONF" \
        --server-pid "$SERVER" "${@:2}"
}

for _ in $(seq "$ROUNDS"); do
    for sm in off enable resume; do
        load logins --duration "$SECS" --create 4 --mechanism fast-none --concurrency 4 --sm "$sm"
    done
done
load idle --count "$IDLE" --checkpoints 1000,"$IDLE" --duration 5 --create 10 --sm
