# Sourced by the benchmark scripts: builds the release binaries, then starts `tessera run` on
# loopback from a temporary config (modules sasl2 and sasl2_fast, RUST_LOG=warn) and stops it
# (and removes the folder) when the calling script exits.
#
# Sets ROOT, BIN (target/release), DIR (temporary folder), CONF (its tessera.toml), SERVER
# (the server's pid), C2S (STARTTLS address) and DIRECT (direct TLS address).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
cargo build --release --quiet -p tessera-host -p tessera-mod-sasl2 -p tessera-mod-sasl2-fast -p tessera-load
BIN="$ROOT/target/release"

DIR="$(mktemp -d)"
CONF="$DIR/tessera.toml"
PORT=$((20000 + RANDOM % 20000))
C2S="127.0.0.1:$PORT"
DIRECT="127.0.0.1:$((PORT + 1))"
cat > "$CONF" <<EOT
domain = "localhost"
data_dir = "data"
plugin_dir = "$BIN"
modules_enabled = ["sasl2", "sasl2_fast"]

[c2s]
listen = ["$C2S"]
direct_tls = ["$DIRECT"]
max_connections_per_ip = 1000000   # the load tool connects from one address

[http]
listen = ["127.0.0.1:$((PORT + 2))"]
EOT

# The idle mode holds more sessions than the default limit of 1024 descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
RUST_LOG=warn "$BIN/tessera" -c "$CONF" run > "$DIR/server.out" 2> "$DIR/server.err" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do
    grep -q '^tessera ready' "$DIR/server.out" 2>/dev/null && break
    sleep 0.1
done
grep -q '^tessera ready' "$DIR/server.out" || { cat "$DIR/server.err" >&2; exit 1; }
