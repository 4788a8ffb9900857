#!/usr/bin/env bash
# What SQLite's `PRAGMA synchronous` costs the store's writers (not part of CI): the same load
# against two release builds that differ only in that pragma (host/src/store/sqlite.rs), run
# alternately, ROUNDS times each, so that a busy shared machine hurts both alike.
#
#   tests/load/synchronous.sh NORMAL_DIR FULL_DIR [SECONDS] [ROUNDS]   # defaults 5 s, 2 rounds
#
# Each DIR holds `tessera`, `tessera-load`, `libmod_sasl2.so` and `libmod_sasl2_fast.so` from
# `cargo build --release -p tessera-host -p tessera-mod-sasl2 -p tessera-mod-sasl2-fast
# -p tessera-load`, built once as committed and once with the pragma set to the other value
# (docs/benchmarks.md, "Store durability: synchronous", has the exact steps). Every run starts a
# fresh server in a temporary data directory (on the file system of $TMPDIR: put it on the disk
# you care about) with `sasl2_fast_token_min_ttl = 0` unless said otherwise, so that every
# FAST login rotates its token, and measures at 4 clients:
#   * `fast-none`: FAST HT-SHA-256-NONE logins, each writing the store three times (the used
#     token moves to `current`, the old `new` slot is deleted, a new token is stored);
#   * `fast-none (min_ttl 86400)`: the same with the default rotation age, so that only each
#     client's first login writes (moving its token to `current`): the common case;
#   * `scram-sha-256`: SCRAM-SHA-256 logins, which only read the store (the control);
#   * `passwd`: password changes through the admin socket (`tessera user passwd`, 4 loops at
#     once), one UPDATE each, with the PBKDF2 of both verifiers.
# Prints one line per run: build, workload, rate, latency (p50/p99 of the load tool, or the mean
# per change for passwd).
set -euo pipefail

NORMAL="$(cd "$1" && pwd)"
FULL="$(cd "$2" && pwd)"
SECS="${3:-5}"
ROUNDS="${4:-2}"
# shellcheck source=start.sh
source "$(dirname "$0")/start.sh"
trap stop_server EXIT

# start BIN_DIR [MIN_TTL]: a fresh server from BIN_DIR, every FAST login rotating by default.
start() {
    start_server "$1" "sasl2_fast_token_min_ttl = ${2:-0}"
}

logins() { # BIN_DIR NAME MECHANISM [MIN_TTL]
    start "$1" "${4:-0}"
    "$1/tessera-load" logins --server "$DIRECT" --tls direct --duration "$SECS" --create 4 \
        --tessera-config "$CONF" --tessera-bin "$1/tessera" --server-pid "$SERVER" \
        --mechanism "$3" --concurrency 4 2>/dev/null |
        python3 -c 'import json,sys; r=json.load(sys.stdin); l=r["latency_ms"]
rate, p50, p99, rot, err = r["logins_per_s"], l["p50"], l["p99"], r["tokens_rotated"], r["errors_total"]
cpu = r.get("server_cpu_ms_per_login")
print(f"{sys.argv[1]:6} {sys.argv[2]:26} {rate:8.0f}/s  p50 {p50} ms  p99 {p99} ms  server CPU {cpu} ms/login  rotated {rot}  errors {err}")' \
            "$2" "$3${4:+ (min_ttl $4)}"
    stop_server
}

passwd() { # BIN_DIR NAME
    start "$1"
    for i in 1 2 3 4; do
        echo "first password" | "$1/tessera" -c "$CONF" user add "pw$i@localhost" > /dev/null
    done
    local t0 t1 end pids=()
    t0=$(date +%s.%N)
    end=$(($(date +%s) + SECS))
    for i in 1 2 3 4; do
        (
            n=0
            while [ "$(date +%s)" -lt "$end" ]; do
                echo "password $n" | "$1/tessera" -c "$CONF" user passwd "pw$i@localhost" > /dev/null
                n=$((n + 1))
            done
            echo "$n" > "$DIR/count$i"
        ) &
        pids+=($!)
    done
    wait "${pids[@]}"
    t1=$(date +%s.%N)
    python3 -c 'import sys
n=sum(int(open(f"{sys.argv[3]}/count{i}").read()) for i in range(1,5)); s=float(sys.argv[5])-float(sys.argv[4])
print(f"{sys.argv[1]:6} {sys.argv[2]:26} {n/s:8.1f}/s  {4*s*1000/n:.1f} ms per change per loop  ({n} changes)")' \
        "$2" passwd "$DIR" "$t0" "$t1"
    stop_server
}

for round in $(seq "$ROUNDS"); do
    echo "# round $round"
    for build in NORMAL FULL; do
        bin="${!build}"
        logins "$bin" "$build" fast-none
        logins "$bin" "$build" fast-none 86400
        logins "$bin" "$build" scram-sha-256
        passwd "$bin" "$build"
    done
done
