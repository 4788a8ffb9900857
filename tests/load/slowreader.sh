#!/usr/bin/env bash
# What one session that stops reading costs the others (issue 19; not part of CI):
#
#   tests/load/slowreader.sh [FLOOD_MESSAGES]     # default 60000
#   THROTTLED=1 tests/load/slowreader.sh 8000     # the sender at the default receive rate
#
# Builds the host, sasl2, ping and the load tool in release, starts `tessera run` with the
# receive throttle lifted (the worst case: the sender floods as fast as the server reads), the
# default send buffer and a 2 s send timeout (so the reader is closed during the flood), and
# runs `tessera-load slow-reader`: 20 sessions ping the server every 20 ms for 5 s idle, then
# while a sender writes FLOOD_MESSAGES messages of 1000 bytes to a reader with a 16 KiB socket
# receive buffer that never reads (shed beyond half the reader's buffer, then bounced once the
# reader is closed). Prints one JSON line; the summary goes to stderr.
set -euo pipefail
FLOOD="${1:-60000}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
(cd "$ROOT" && cargo build --release --quiet -p tessera-host -p tessera-load -p tessera-mod-sasl2 \
    -p tessera-mod-ping)
BIN="$ROOT/target/release"
# shellcheck source=start.sh
source "$ROOT/tests/load/start.sh"
MODULES='"sasl2", "ping"'
C2S_EXTRA='send_timeout = 2'
if [ -z "${THROTTLED:-}" ]; then
    C2S_EXTRA="$C2S_EXTRA
receive_rate = 1073741824
receive_burst = 1073741824"
fi
start_server "$BIN"
trap stop_server EXIT
"$BIN/tessera-load" slow-reader --server "$DIRECT" --tls direct --flood "$FLOOD" \
    --pingers 20 --create 22 --tessera-config "$CONF" --tessera-bin "$BIN/tessera" \
    --server-pid "$SERVER"
