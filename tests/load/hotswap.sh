#!/usr/bin/env bash
# Hot swap under load (issue 8), release builds, loopback only (not part of CI).
#
#   tests/load/hotswap.sh              # 20 reloads during the load
#   CONTROL=1 tests/load/hotswap.sh    # the same load, the module commands left out
#
# Builds the host, mod_sasl2, mod_sasl2_fast, mod_password_reset and tessera-load in release,
# and a second mod_sasl2_fast with TESSERA_BUILD_ID=build-2 in target/hotswap-build-2-release.
# Starts `tessera run` from a temporary config (modules sasl2, sasl2_fast, password_reset;
# plugin_dir = a temporary folder with copies of the three libraries; RUST_LOG=warn) and runs
# `tessera-load mixed` for 30 s: 1000 held sessions each pinging the server every second, FAST
# (HT-SHA-256-NONE) and SCRAM-SHA-256 logins with 2 workers each, and a password change every
# 3 s that must reset 20 sessions of another account. Meanwhile mod_sasl2_fast is reloaded 20
# times (alternating build-2 / build-1: copy beside the plugin file, rename over it,
# `tessera module reload sasl2_fast`) and mod_password_reset is unloaded and loaded once.
# Prints the JSON line of the run on stdout and a summary on stderr. About a minute after the
# builds; exits non-zero on any error (login, ping, reset), dropped session or failed command.
# Needs jq (Debian package jq) for the summary.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
RELOADS=20
IDLE=1000
SECS=30 # the mixed run: reloads start once its 1000 sessions are open and take ~20 s
CONTROL="${CONTROL:-0}"

cargo build --release --quiet -p tessera-host -p tessera-mod-sasl2 -p tessera-mod-sasl2-fast \
    -p tessera-mod-password-reset -p tessera-load
TESSERA_BUILD_ID=build-2 cargo build --release --quiet -p tessera-mod-sasl2-fast \
    --target-dir "$ROOT/target/hotswap-build-2-release"
BIN="$ROOT/target/release"
BUILD1="$BIN/libmod_sasl2_fast.so"
BUILD2="$ROOT/target/hotswap-build-2-release/release/libmod_sasl2_fast.so"

DIR="$(mktemp -d)"
PIDS=()
SERVER=""
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    rm -rf "$DIR"
}
trap cleanup EXIT

mkdir "$DIR/plugins"
for m in sasl2 sasl2_fast password_reset; do cp "$BIN/libmod_$m.so" "$DIR/plugins/"; done
PORT=$((20000 + RANDOM % 20000))
CONF="$DIR/tessera.toml"
cat > "$CONF" <<EOF
domain = "localhost"
data_dir = "data"
plugin_dir = "$DIR/plugins"
modules_enabled = ["sasl2", "sasl2_fast", "password_reset", "ping"]

[c2s]
listen = ["127.0.0.1:$PORT"]
direct_tls = ["127.0.0.1:$((PORT + 1))"]
max_connections_per_ip = 1000000   # the load tool connects from one address

[http]
listen = ["127.0.0.1:$((PORT + 2))"]
public_url = "https://localhost:$((PORT + 2))"
EOF

RUST_LOG=warn "$BIN/tessera" -c "$CONF" run > "$DIR/server.out" 2> "$DIR/server.err" &
SERVER=$!
for _ in $(seq 100); do
    grep -q '^tessera ready' "$DIR/server.out" 2>/dev/null && break
    sleep 0.1
done
grep -q '^tessera ready' "$DIR/server.out" || { cat "$DIR/server.err" >&2; exit 1; }

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER/status"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
admin() { "$BIN/tessera" -c "$CONF" "$@"; }
load() {
    "$BIN/tessera-load" "$1" --server "127.0.0.1:$((PORT + 1))" --tls direct \
        --tessera-config "$CONF" --tessera-bin "$BIN/tessera" --server-pid "$SERVER" "${@:2}"
}

load mixed --duration "$SECS" --idle "$IDLE" --ping-every 1 --scram 2 --fast 2 \
    --password-every 3 --fanout 20 --create 12 > "$DIR/mixed.json" 2> "$DIR/mixed.err" &
PIDS+=($!)
for _ in $(seq 600); do
    grep -q "mixed: warm-up done" "$DIR/mixed.err" && break
    kill -0 "${PIDS[0]}" 2>/dev/null || break
    sleep 0.1
done
grep -q "mixed: warm-up done" "$DIR/mixed.err" || { cat "$DIR/mixed.err" >&2; exit 1; }
sleep 5 # the held sessions open (16 at a time) and start pinging

RSS_BEFORE=$(rss)
TIMES=()
START=$(now_ms)
for i in $(seq "$RELOADS"); do
    if [ $((i % 2)) -eq 1 ]; then SRC="$BUILD2"; else SRC="$BUILD1"; fi
    cp "$SRC" "$DIR/plugins/libmod_sasl2_fast.so.tmp"
    mv "$DIR/plugins/libmod_sasl2_fast.so.tmp" "$DIR/plugins/libmod_sasl2_fast.so"
    t0=$(now_ms)
    if [ "$CONTROL" = 1 ]; then true; else admin module reload sasl2_fast > "$DIR/reload.out"; fi
    TIMES+=($(( $(now_ms) - t0 )))
    if [ "$i" -eq $((RELOADS / 2)) ] && [ "$CONTROL" != 1 ]; then
        admin module unload password_reset >&2
        admin module load password_reset >&2
    fi
    sleep 0.7
done
SWAP_MS=$(( $(now_ms) - START ))
RSS_AFTER=$(rss)
admin module list > "$DIR/modules.json"

STATUS=0
for p in "${PIDS[@]}"; do wait "$p" || STATUS=1; done
PIDS=()
cat "$DIR/mixed.json"

SLOWEST=$(printf '%s\n' "${TIMES[@]}" | sort -n | tail -1)
MEDIAN=$(printf '%s\n' "${TIMES[@]}" | sort -n | sed -n "$(( (RELOADS + 1) / 2 ))p")
part() {
    jq -r --arg p "$1" '.[$p] as $x | "\($p) x\($x.workers): \($x.logins) logins, \($x.logins_per_s)/s, p50 \($x.latency_ms.p50) ms, p99 \($x.latency_ms.p99) ms, max \($x.latency_ms.max) ms"' "$DIR/mixed.json"
}
{
    if [ "$CONTROL" = 1 ]; then echo "hotswap: CONTROL run, no module commands"; fi
    echo "hotswap: $RELOADS reloads of sasl2_fast + unload/load of password_reset in $SWAP_MS ms"
    echo "hotswap: $(part fast)"
    echo "hotswap: $(part scram)"
    jq -r '"hotswap: held sessions: \(.idle.alive_at_end) of \(.idle.sessions) alive at the end, \(.idle.pings) pings, p99 \(.idle.ping_latency_ms.p99) ms, max \(.idle.ping_latency_ms.max) ms"' "$DIR/mixed.json"
    jq -r '"hotswap: password changes: \(.password_changes.changes), all \(.password_changes.sessions) sessions reset within \(.password_changes.all_reset_ms_max) ms; errors: \(.errors_total) \(.errors)"' "$DIR/mixed.json"
    echo "hotswap: server VmRSS $RSS_BEFORE KiB before, $RSS_AFTER KiB after ($((RSS_AFTER - RSS_BEFORE)) KiB, $(( (RSS_AFTER - RSS_BEFORE) / RELOADS )) KiB per reload)"
    jq -r '[.[] | select(.name == "sasl2_fast")] as $f
        | "hotswap: sasl2_fast generations: \($f | length) (\([$f[] | .state] | group_by(.) | map("\(length) \(.[0])") | join(", "))), \([$f[].mapped_bytes] | add) bytes mapped; all modules: \(length) generations, \([.[].mapped_bytes] | add) bytes mapped"' "$DIR/modules.json"
    echo "hotswap: \`module reload\` median $MEDIAN ms, slowest $SLOWEST ms (all: ${TIMES[*]})"
} >&2

ERRS=$(jq '.errors_total' "$DIR/mixed.json")
ALIVE=$(jq '.idle.alive_at_end' "$DIR/mixed.json")
[ "$ERRS" -eq 0 ] || { echo "hotswap: FAILED: $ERRS errors" >&2; STATUS=1; }
[ "$ALIVE" -eq "$IDLE" ] || { echo "hotswap: FAILED: $ALIVE of $IDLE sessions alive" >&2; STATUS=1; }
exit "$STATUS"
