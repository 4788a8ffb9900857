# Sourced by the benchmark scripts: builds the release binaries, then starts `tessera run` on
# loopback from a temporary config (modules sasl2, sasl2_fast, ping, disco; RUST_LOG=warn) and stops it
# (and removes the folder) when the calling script exits.
#
# Sets ROOT, BIN (target/release), DIR (temporary folder), CONF (its tessera.toml), SERVER
# (the server's pid), C2S (STARTTLS address) and DIRECT (direct TLS address).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
cargo build --release --quiet -p tessera-host -p tessera-mod-sasl2 -p tessera-mod-sasl2-fast \
    -p tessera-mod-ping -p tessera-mod-disco -p tessera-mod-mam -p tessera-load
BIN="$ROOT/target/release"

# shellcheck source=start.sh
source "$ROOT/tests/load/start.sh"
# The idle mode holds more sessions than the default limit of 1024 descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
trap stop_server EXIT
start_server "$BIN"
