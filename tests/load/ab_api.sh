#!/usr/bin/env bash
# A/B login cost of two builds on one machine, interleaved (not part of CI):
#
#   tests/load/ab_api.sh OLD_RELEASE_DIR [NEW_RELEASE_DIR]
#
# OLD_RELEASE_DIR holds `tessera`, `libmod_sasl2.so` and `libmod_sasl2_fast.so` of the build to
# compare against (e.g. a worktree of another commit built with
# `cargo build --release -p tessera-host -p tessera-mod-sasl2 -p tessera-mod-sasl2-fast`);
# NEW_RELEASE_DIR defaults to this checkout's target/release (built here). Both servers run at
# once (modules sasl2 and sasl2_fast); three rounds of FAST HT-SHA-256-NONE and SCRAM-SHA-256
# at 4 clients, 10 s each, alternate between them. Prints: build, mechanism, logins/s, server
# CPU ms per login, tool CPU ms per login, errors. On a shared machine compare the two builds'
# server CPU within one run, not across runs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OLD="$(cd "$1" && pwd)"
if [[ $# -ge 2 ]]; then
    NEW="$(cd "$2" && pwd)"
else
    (cd "$ROOT" && cargo build --release --quiet -p tessera-host -p tessera-mod-sasl2 \
        -p tessera-mod-sasl2-fast -p tessera-load)
    NEW="$ROOT/target/release"
fi
LOAD="$ROOT/target/release/tessera-load"
# shellcheck source=start.sh
source "$ROOT/tests/load/start.sh"
# Both builds with the modules they share; start_server's variables are kept per server.
MODULES='"sasl2", "sasl2_fast"'
start_server "$OLD"; OLD_PID=$SERVER; OLD_DIR=$DIR; OLD_PORT=${DIRECT##*:}
start_server "$NEW"; NEW_PID=$SERVER; NEW_DIR=$DIR; NEW_PORT=${DIRECT##*:}
trap 'kill $OLD_PID $NEW_PID 2>/dev/null; rm -rf "$OLD_DIR" "$NEW_DIR"' EXIT
run() { # label release-dir pid folder port mechanism
    "$LOAD" logins --server "127.0.0.1:$5" --tls direct --duration 10 --create 4 \
        --tessera-config "$4/tessera.toml" --tessera-bin "$2/tessera" --server-pid "$3" \
        --mechanism "$6" --concurrency 4 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print('$1', '$6', d['logins_per_s'], d['server_cpu_ms_per_login'], d['tool_cpu_ms_per_login'], d['errors_total'])"
}
for round in 1 2 3; do
    for mech in fast-none scram-sha-256; do
        run old "$OLD" "$OLD_PID" "$OLD_DIR" "$OLD_PORT" "$mech"
        run new "$NEW" "$NEW_PID" "$NEW_DIR" "$NEW_PORT" "$mech"
    done
done
