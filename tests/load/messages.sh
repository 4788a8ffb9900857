#!/usr/bin/env bash
# Chat benchmark against a release build of Tessera with the IM modules (not part of CI):
#
#   tests/load/messages.sh [SECONDS]        # default 10 s per run
#   MAM=1 tests/load/messages.sh [SECONDS]  # the same with mod_mam loaded (every message archived
#                                           # for its sender and its recipient, stamped)
#   SM=1 tests/load/messages.sh [SECONDS]   # with mod_smacks: every session enables XEP-0198
#                                           # (resumable) and acknowledges the server's <r/>
#
# Builds the host, the modules and the load tool in release, starts `tessera run` with
# sasl2, ping, disco, presence, roster, offline, carbons and csi, and runs `tessera-load
# messages` with 8 pairs (2 of them with the recipient offline) and carbons on: first as fast as
# the recipients take them (the peak), then open loop at half that rate (the latency at half
# the peak). Prints one JSON line per run; the summaries go to stderr.
set -euo pipefail
SECS="${1:-10}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
(cd "$ROOT" && cargo build --release --quiet -p tessera-host -p tessera-load -p tessera-mod-sasl2 \
    -p tessera-mod-ping -p tessera-mod-disco -p tessera-mod-presence -p tessera-mod-roster \
    -p tessera-mod-offline -p tessera-mod-carbons -p tessera-mod-csi -p tessera-mod-mam \
    -p tessera-mod-smacks)
BIN="$ROOT/target/release"
# shellcheck source=start.sh
source "$ROOT/tests/load/start.sh"
MODULES='"sasl2", "ping", "disco", "presence", "roster", "offline", "carbons", "csi"'
if [ "${MAM:-0}" = 1 ]; then MODULES="$MODULES, \"mam\""; fi
SM_FLAG=()
if [ "${SM:-0}" = 1 ]; then MODULES="$MODULES, \"smacks\""; SM_FLAG=(--sm); fi
# A capacity run: each sender writes far beyond the default receive throttle (128 KiB/s).
C2S_EXTRA='receive_rate = 1073741824
receive_burst = 1073741824'
start_server "$BIN"
trap stop_server EXIT
run() {
    "$BIN/tessera-load" messages --server "$DIRECT" --tls direct --duration "$SECS" \
        --pairs 8 --offline 2 --carbons --create 16 --tessera-config "$CONF" \
        --tessera-bin "$BIN/tessera" --server-pid "$SERVER" ${SM_FLAG[@]+"${SM_FLAG[@]}"} "$@"
}
run | tee "$DIR/peak.json"
PEAK="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["messages_per_s"])' "$DIR/peak.json")"
HALF="$(python3 -c 'import sys; print(round(float(sys.argv[1]) / 2))' "$PEAK")"
run --rate "$HALF"
