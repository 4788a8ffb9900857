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
start() { # release dir -> prints "pid folder direct-tls-port"
    local dir; dir="$(mktemp -d)"; local port=$((20000 + RANDOM % 20000))
    cat > "$dir/tessera.toml" <<EOT
domain = "localhost"
data_dir = "data"
plugin_dir = "$1"
modules_enabled = ["sasl2", "sasl2_fast"]
[c2s]
listen = ["127.0.0.1:$port"]
direct_tls = ["127.0.0.1:$((port + 1))"]
max_connections_per_ip = 1000000
[http]
listen = ["127.0.0.1:$((port + 2))"]
EOT
    RUST_LOG=warn "$1/tessera" -c "$dir/tessera.toml" run > "$dir/out" 2> "$dir/err" &
    local pid=$!
    for _ in $(seq 100); do grep -q '^tessera ready' "$dir/out" 2>/dev/null && break; sleep 0.1; done
    echo "$pid $dir $((port + 1))"
}
read -r OLD_PID OLD_DIR OLD_PORT < <(start "$OLD")
read -r NEW_PID NEW_DIR NEW_PORT < <(start "$NEW")
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
