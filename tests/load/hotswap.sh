#!/usr/bin/env bash
# Hot swap under load (issue 8), release builds, loopback only (not part of CI).
#
#   tests/load/hotswap.sh
#
# Builds the host, mod_sasl2, mod_sasl2_fast, mod_password_reset and tessera-load in release,
# and a second mod_sasl2_fast with TESSERA_BUILD_ID=build-2 in target/hotswap-build-2-release.
# Starts `tessera run` from a temporary config (modules sasl2, sasl2_fast, password_reset;
# plugin_dir = a temporary folder with copies of the three libraries; RUST_LOG=warn), opens
# 1000 idle sessions with `tessera-load idle`, then runs FAST (HT-SHA-256-NONE) and
# SCRAM-SHA-256 logins at concurrency 2 each while mod_sasl2_fast is reloaded 20 times
# (alternating build-2 / build-1: copy beside the plugin file, rename over it,
# `tessera module reload sasl2_fast`) and mod_password_reset is unloaded and loaded once.
# Prints the JSON line of each load run on stdout and a summary on stderr. About a minute
# after the builds; exits non-zero on any login error, dropped session or failed command.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
RELOADS=20
IDLE=1000
LOGIN_SECS=30 # the login runs: reloads start ~4 s in and take ~20 s
IDLE_HOLD=45  # the idle sessions are held this long once all are open (outlasts the logins)

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
modules_enabled = ["sasl2", "sasl2_fast", "password_reset"]

[c2s]
listen = ["127.0.0.1:$PORT"]
direct_tls = ["127.0.0.1:$((PORT + 1))"]

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

# 1000 idle sessions, all open before the logins and reloads start.
load idle --count "$IDLE" --checkpoints "$IDLE" --duration "$IDLE_HOLD" --create 10 \
    --prefix idle > "$DIR/idle.json" 2> "$DIR/idle.err" &
PIDS+=($!)
for _ in $(seq 600); do
    grep -q "idle: $IDLE sessions open" "$DIR/idle.err" && break
    kill -0 "${PIDS[0]}" 2>/dev/null || break
    sleep 0.1
done
grep -q "idle: $IDLE sessions open" "$DIR/idle.err" || { cat "$DIR/idle.err" >&2; exit 1; }

load logins --mechanism fast-none --concurrency 2 --duration "$LOGIN_SECS" --create 2 \
    --prefix fast > "$DIR/fast.json" 2> "$DIR/fast.err" &
PIDS+=($!)
load logins --mechanism scram-sha-256 --concurrency 2 --duration "$LOGIN_SECS" --create 2 \
    --prefix scram > "$DIR/scram.json" 2> "$DIR/scram.err" &
PIDS+=($!)
sleep 4 # accounts created, FAST tokens fetched, both runs measuring

RSS_BEFORE=$(rss)
TIMES=()
START=$(now_ms)
for i in $(seq "$RELOADS"); do
    if [ $((i % 2)) -eq 1 ]; then SRC="$BUILD2"; else SRC="$BUILD1"; fi
    cp "$SRC" "$DIR/plugins/libmod_sasl2_fast.so.tmp"
    mv "$DIR/plugins/libmod_sasl2_fast.so.tmp" "$DIR/plugins/libmod_sasl2_fast.so"
    t0=$(now_ms)
    admin module reload sasl2_fast > "$DIR/reload.out"
    TIMES+=($(( $(now_ms) - t0 )))
    if [ "$i" -eq $((RELOADS / 2)) ]; then
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
cat "$DIR/idle.json" "$DIR/fast.json" "$DIR/scram.json"

SLOWEST=$(printf '%s\n' "${TIMES[@]}" | sort -n | tail -1)
MEDIAN=$(printf '%s\n' "${TIMES[@]}" | sort -n | sed -n "$(( (RELOADS + 1) / 2 ))p")
line() {
    jq -r '"\(.mechanism) x\(.concurrency): \(.logins) logins, \(.logins_per_s)/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, max \(.latency_ms.max) ms, errors \(.errors_total)"' "$1"
}
{
    echo "hotswap: $RELOADS reloads of sasl2_fast + unload/load of password_reset in $SWAP_MS ms"
    echo "hotswap: $(line "$DIR/fast.json")"
    echo "hotswap: $(line "$DIR/scram.json")"
    jq -r '"hotswap: idle sessions: \(.sessions_opened) opened, \(.sessions_alive_at_end) alive at the end, errors \(.errors_total)"' "$DIR/idle.json"
    echo "hotswap: server VmRSS $RSS_BEFORE KiB before, $RSS_AFTER KiB after ($((RSS_AFTER - RSS_BEFORE)) KiB, $(( (RSS_AFTER - RSS_BEFORE) / RELOADS )) KiB per reload)"
    jq -r '[.[] | select(.name == "sasl2_fast")] as $f
        | "hotswap: sasl2_fast generations: \($f | length) (\([$f[] | .state] | group_by(.) | map("\(length) \(.[0])") | join(", "))), \([$f[].mapped_bytes] | add) bytes mapped; all modules: \(length) generations, \([.[].mapped_bytes] | add) bytes mapped"' "$DIR/modules.json"
    echo "hotswap: \`module reload\` median $MEDIAN ms, slowest $SLOWEST ms (all: ${TIMES[*]})"
} >&2

ERRS=$(jq -s 'map(.errors_total) | add' "$DIR/idle.json" "$DIR/fast.json" "$DIR/scram.json")
ALIVE=$(jq '.sessions_alive_at_end' "$DIR/idle.json")
[ "$ERRS" -eq 0 ] || { echo "hotswap: FAILED: $ERRS errors" >&2; STATUS=1; }
[ "$ALIVE" -eq "$IDLE" ] || { echo "hotswap: FAILED: $ALIVE of $IDLE sessions alive" >&2; STATUS=1; }
exit "$STATUS"
