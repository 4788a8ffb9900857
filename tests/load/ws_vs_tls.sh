#!/usr/bin/env bash
# A login over XMPP over WebSocket (RFC 7395) beside the same login over direct TLS, on one
# release server, in alternating rounds (not part of CI; docs/benchmarks.md has the figures).
#
#   tests/load/ws_vs_tls.sh [SECONDS] [ROUNDS]     # default 10 s per run, 3 rounds
#
# Each round runs FAST HT-SHA-256-NONE and SCRAM-SHA-256 at 4 clients over direct TLS and over
# WebSocket (the HTTPS listener's /xmpp-websocket), one JSON line per run on stdout.
set -euo pipefail

SECS="${1:-10}"
ROUNDS="${2:-3}"
# shellcheck source=server.sh
source "$(dirname "$0")/server.sh"

run() {
    local addr="$DIRECT"
    if [ "$1" = websocket ]; then addr="$HTTPS"; fi
    "$BIN/tessera-load" logins --server "$addr" --tls "$1" \
        --duration "$SECS" --create 4 --tessera-config "$CONF" \
        --server-pid "$SERVER" --mechanism "$2" --concurrency 4
}

for _ in $(seq "$ROUNDS"); do
    for mech in fast-none scram-sha-256; do
        run direct "$mech"
        run websocket "$mech"
    done
done
