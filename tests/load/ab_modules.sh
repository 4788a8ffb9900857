#!/usr/bin/env bash
# A/B login cost of two module sets of one build, interleaved (not part of CI):
#
#   tests/load/ab_modules.sh [EXTRA_MODULES]   # default: "client_management", "scram_upgrade"
#
# Builds the release binaries, starts two servers at once: A with modules sasl2 and sasl2_fast,
# B with those and EXTRA_MODULES (a TOML list body, e.g. '"client_management"'). Three rounds
# of FAST HT-SHA-256-NONE and SCRAM-SHA-256 at 4 clients, 10 s each, alternate between them;
# every login sends a SASL2 user-agent. Prints: server, mechanism, logins/s, server CPU ms per
# login, tool CPU ms per login, errors. On a shared machine compare A and B within one run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EXTRA="${1:-\"client_management\", \"scram_upgrade\"}"
(cd "$ROOT" && cargo build --release --quiet -p tessera-host -p tessera-mod-sasl2 \
    -p tessera-mod-sasl2-fast -p tessera-mod-client-management -p tessera-mod-scram-upgrade \
    -p tessera-load)
BIN="$ROOT/target/release"
LOAD="$BIN/tessera-load"
# shellcheck source=start.sh
source "$ROOT/tests/load/start.sh"
MODULES='"sasl2", "sasl2_fast"'
start_server "$BIN"; A_PID=$SERVER; A_DIR=$DIR; A_PORT=${DIRECT##*:}
MODULES="\"sasl2\", \"sasl2_fast\", $EXTRA"
start_server "$BIN"; B_PID=$SERVER; B_DIR=$DIR; B_PORT=${DIRECT##*:}
trap 'kill $A_PID $B_PID 2>/dev/null; rm -rf "$A_DIR" "$B_DIR"' EXIT
run() { # label pid folder port mechanism
    "$LOAD" logins --server "127.0.0.1:$4" --tls direct --duration 10 --create 4 \
        --tessera-config "$3/tessera.toml" --tessera-bin "$BIN/tessera" --server-pid "$2" \
        --mechanism "$5" --concurrency 4 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print('$1', '$5', d['logins_per_s'], d['server_cpu_ms_per_login'], d['tool_cpu_ms_per_login'], d['errors_total'])"
}
for round in 1 2 3; do
    for mech in fast-none scram-sha-256; do
        run A "$A_PID" "$A_DIR" "$A_PORT" "$mech"
        run B "$B_PID" "$B_DIR" "$B_PORT" "$mech"
    done
done
