#!/usr/bin/env bash
# Login benchmarks against a release build of Tessera on loopback (not part of CI).
#
#   tests/load/bench.sh [SECONDS]        # default 10 s per run
#
# Builds the host, mod_sasl2, mod_sasl2_fast and the load tool in release, starts `tessera run`
# with a temporary config (modules_enabled = ["sasl2", "sasl2_fast"], loopback ports,
# RUST_LOG=warn), and runs `tessera-load logins` over direct TLS: SCRAM-SHA-256 at concurrency
# 1, 4 and 16, then PLAIN, SCRAM-SHA-1, FAST HT-SHA-256-NONE, FAST HT-SHA-256-EXPR and
# SCRAM-SHA-256 again at concurrency 4 (same server, same run: FAST and SCRAM compare
# directly). Each run creates its accounts and deletes them afterwards.
# Prints one JSON line per run on stdout (the summaries go to stderr). The server and the tool
# share the machine: compare server CPU per login more than logins per second.
set -euo pipefail

SECS="${1:-10}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
cargo build --release --quiet -p tessera-host -p tessera-mod-sasl2 -p tessera-mod-sasl2-fast -p tessera-load
BIN="$ROOT/target/release"

DIR="$(mktemp -d)"
PORT=$((20000 + RANDOM % 20000))
cat > "$DIR/tessera.toml" <<EOF
domain = "localhost"
data_dir = "data"
plugin_dir = "$BIN"
modules_enabled = ["sasl2", "sasl2_fast"]

[c2s]
listen = ["127.0.0.1:$PORT"]
direct_tls = ["127.0.0.1:$((PORT + 1))"]

[http]
listen = ["127.0.0.1:$((PORT + 2))"]
EOF

RUST_LOG=warn "$BIN/tessera" -c "$DIR/tessera.toml" run > "$DIR/server.out" 2> "$DIR/server.err" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do
    grep -q '^tessera ready' "$DIR/server.out" 2>/dev/null && break
    sleep 0.1
done
grep -q '^tessera ready' "$DIR/server.out" || { cat "$DIR/server.err" >&2; exit 1; }

run() {
    "$BIN/tessera-load" logins --server "127.0.0.1:$((PORT + 1))" --tls direct \
        --duration "$SECS" --create "$2" --tessera-config "$DIR/tessera.toml" \
        --server-pid "$SERVER" --mechanism "$1" --concurrency "$2"
}

run scram-sha-256 1
run scram-sha-256 4
run scram-sha-256 16
run plain 4
run scram-sha-1 4
run fast-none 4
run fast-expr 4
run scram-sha-256 4
