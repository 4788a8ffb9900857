# Sourced by the load scripts: start and stop `tessera run` on loopback from a temporary config.
#
#   start_server BIN_DIR [EXTRA_TOP_LEVEL_TOML]   # modules from BIN_DIR: $MODULES, default
#                                                 # "sasl2", "sasl2_fast", "ping", "disco";
#                                                 # extra [c2s] keys: $C2S_EXTRA
#   stop_server                                   # kill it and remove its folder
#
# start_server sets DIR (temporary folder), CONF (its tessera.toml), SERVER (the server's pid),
# C2S (STARTTLS address), DIRECT (direct TLS address) and HTTPS (the HTTPS listener, with
# /xmpp-websocket), and returns once the server is ready
# (or exits with its log).

start_server() {
    local modules=${MODULES:-'"sasl2", "sasl2_fast", "ping", "disco"'}
    DIR="$(mktemp -d)"
    CONF="$DIR/tessera.toml"
    local port=$((20000 + RANDOM % 20000))
    C2S="127.0.0.1:$port"
    DIRECT="127.0.0.1:$((port + 1))"
    HTTPS="127.0.0.1:$((port + 2))"
    cat > "$CONF" <<EOT
domain = "localhost"
data_dir = "data"
plugin_dir = "$1"
modules_enabled = [$modules]
${2:-}

[c2s]
listen = ["$C2S"]
direct_tls = ["$DIRECT"]
max_connections_per_ip = 1000000   # the load tool connects from one address
${C2S_EXTRA:-}

[http]
listen = ["$HTTPS"]
EOT
    RUST_LOG=warn "$1/tessera" -c "$CONF" run > "$DIR/server.out" 2> "$DIR/server.err" &
    SERVER=$!
    for _ in $(seq 100); do
        grep -q '^tessera ready' "$DIR/server.out" 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$DIR/server.err" >&2
    exit 1
}

stop_server() {
    if [ -n "${SERVER:-}" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    SERVER=""
    if [ -n "${DIR:-}" ]; then rm -rf "$DIR"; fi
    DIR=""
}
