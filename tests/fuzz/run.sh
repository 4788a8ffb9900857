#!/usr/bin/env bash
# Runs every fuzz target of tests/fuzz for a bounded time (see tests/fuzz/README.md).
#
#   tests/fuzz/run.sh                 each target for 30 s (what tests/run.sh runs in CI)
#   tests/fuzz/run.sh 3600            each target for an hour (a long run)
#   tests/fuzz/run.sh 120 stream ht   only these targets
#
# It installs cargo-fuzz if missing, builds all targets once (`cargo +nightly fuzz build`, or
# `RUSTC_BOOTSTRAP=1 cargo fuzz build` on stable when there is no nightly toolchain), then runs
# each target with libFuzzer's -max_total_time. The corpus grows in tests/fuzz/corpus/<target>/
# (gitignored; seeds/<target>/ is read too); a crash, a timeout or an out-of-memory input is
# written to tests/fuzz/artifacts/<target>/. One line per target gives the executions done, and
# the last line is `fuzz: N passed, M failed`. The exit status is 0 only if no target failed.
#
# Environment: FUZZ_SANITIZER (default `none`: the code under test is safe Rust, and without
# ASan a target runs about twice as fast; `address` for the unsafe-heavy paths),
# FUZZ_TIMEOUT (seconds one input may take before it counts as a hang, default 10), FUZZ_RUNS
# (stop a target after this many executions even before SECONDS: the long run of the README is
# `FUZZ_RUNS=100000000 tests/fuzz/run.sh 86400`).
set -euo pipefail

FUZZ="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$FUZZ/../.." && pwd)"
ALL_TARGETS=(stream scram plain ht data_form config plugin_messages reset_form)

log() { printf '[tests/fuzz/run.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SECONDS_EACH="${1:-30}"
[[ "$SECONDS_EACH" =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive integer, not '$SECONDS_EACH'"
shift || true
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then TARGETS=("${ALL_TARGETS[@]}"); fi
for t in "${TARGETS[@]}"; do
    [[ -f "$FUZZ/fuzz_targets/$t.rs" ]] || die "no fuzz target '$t' (have: ${ALL_TARGETS[*]})"
done
SANITIZER="${FUZZ_SANITIZER:-none}"
TIMEOUT="${FUZZ_TIMEOUT:-10}"
RUNS=()
if [[ -n "${FUZZ_RUNS:-}" ]]; then
    [[ "$FUZZ_RUNS" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_RUNS must be a positive integer"
    RUNS=(-runs="$FUZZ_RUNS")
fi

command -v cargo >/dev/null || die "cargo not found"
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

# cargo-fuzz is made for nightly: use the nightly toolchain when there is one. Without it, the
# stable one with RUSTC_BOOTSTRAP=1; that works with FUZZ_SANITIZER=none only (cargo-fuzz 0.13
# passes -Zsanitizer, which stable rustc refuses even then; see README.md).
CARGO=(cargo)
if command -v rustup >/dev/null && rustup run nightly rustc --version >/dev/null 2>&1; then
    CARGO=(cargo +nightly)
    log "toolchain: $(rustup run nightly rustc --version)"
else
    [[ "$SANITIZER" == none ]] || die "FUZZ_SANITIZER=$SANITIZER needs the nightly toolchain"
    export RUSTC_BOOTSTRAP=1
    log "toolchain: $(rustc --version) with RUSTC_BOOTSTRAP=1 (no nightly toolchain)"
fi

# The fuzz workspace takes the versions of the root lock file (its own Cargo.lock is a copy,
# gitignored, refreshed when the root one changes), so it builds the code with the dependencies
# the server ships with.
mkdir -p "$FUZZ/target"
lock_sum="$(sha256sum "$ROOT/Cargo.lock" | cut -d' ' -f1)"
if [[ ! -f "$FUZZ/Cargo.lock" || "$(cat "$FUZZ/target/.root-lock-sha256" 2>/dev/null)" != "$lock_sum" ]]; then
    cp "$ROOT/Cargo.lock" "$FUZZ/Cargo.lock"
    echo "$lock_sum" >"$FUZZ/target/.root-lock-sha256"
fi

TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
log "cargo fuzz build (sanitizer: $SANITIZER)"
"${CARGO[@]}" fuzz build --fuzz-dir "$FUZZ" --sanitizer "$SANITIZER" --target "$TRIPLE" \
    || die "the fuzz targets do not build"
BIN="$FUZZ/target/$TRIPLE/release"

LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT
passed=0
failed=()
for t in "${TARGETS[@]}"; do
    corpus="$FUZZ/corpus/$t"
    artifacts="$FUZZ/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    log "$t: ${SECONDS_EACH} s"
    set +e
    "$BIN/$t" "$corpus" "$FUZZ/seeds/$t" \
        -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -print_final_stats=1 "${RUNS[@]}" \
        -artifact_prefix="$artifacts/" >"$LOGS/$t.log" 2>&1
    status=$?
    set -e
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOGS/$t.log" | tail -n 1)"
    if [[ -z "$execs" ]]; then
        execs="$(sed -n 's/^#\([0-9][0-9]*\).*DONE.*/\1/p' "$LOGS/$t.log" | tail -n 1)"
    fi
    execs="${execs:-0}"
    rate="$(sed -n 's/^#[0-9][0-9]*[[:space:]]*DONE.*exec\/s: \([0-9][0-9]*\).*/\1/p' "$LOGS/$t.log" | tail -n 1)"
    corpus_size="$(find "$corpus" -type f | wc -l)"
    if [[ "$status" == 0 ]]; then
        passed=$((passed + 1))
        took="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$LOGS/$t.log" | tail -n 1)"
        echo "fuzz: $t: ok, $execs executions in ${took:-$SECONDS_EACH} s (${rate:-?}/s), corpus $corpus_size inputs"
    else
        failed+=("$t")
        echo "fuzz: $t: FAILED (exit $status) after $execs executions; the input is in tests/fuzz/artifacts/$t/"
        grep -E '^(==[0-9]+== ?ERROR|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)' \
            "$LOGS/$t.log" | head -n 20 || true
        tail -n 40 "$LOGS/$t.log"
        echo "fuzz: reproduce with: $BIN/$t tests/fuzz/artifacts/$t/<file>"
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: failing targets: ${failed[*]}"
fi
echo "fuzz: $passed passed, ${#failed[@]} failed"
[[ ${#failed[@]} -eq 0 ]]
