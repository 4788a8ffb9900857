#!/usr/bin/env bash
# Profile the server during a login run (not part of CI; needs Debian's linux-perf):
#
#   tests/load/profile.sh [MECHANISM] [SECONDS]     # defaults fast-none and 8
#
# Starts a release server like bench.sh (server.sh), runs `tessera-load logins` with 4 clients,
# records the server with `perf record -g --call-graph dwarf` for SECONDS-3 seconds in the
# middle of the run, and prints the shares by library and the heaviest call paths.
# The data stays in target/profile.perf.data for `perf report -i`.
set -euo pipefail

MECH="${1:-fast-none}"
SECS="${2:-8}"
# shellcheck source=server.sh
source "$(dirname "$0")/server.sh"
DATA="$ROOT/target/profile.perf.data"

(sleep 2; perf record -F 2000 -g --call-graph dwarf,16384 -p "$SERVER" -o "$DATA" \
    -- sleep $((SECS - 3)) 2>/dev/null) &
PERF=$!
"$BIN/tessera-load" logins --server "$DIRECT" --duration "$SECS" --create 4 --concurrency 4 \
    --tessera-config "$CONF" --server-pid "$SERVER" --mechanism "$MECH"
wait "$PERF"
perf report -i "$DATA" --no-children --sort dso -g none 2>/dev/null | grep '%' | head -8
perf report -i "$DATA" --children --sort symbol -g none 2>/dev/null | grep '%' \
    | grep -E 'accept_tls|Core::element|on_header|features::features|do_syscall_64|bus::|serde_json::de::from_trait' \
    | head -12
