#!/usr/bin/env bash
# Side-by-side benchmark: Tessera vs ejabberd 24.12 vs Prosody 13 on loopback (not part of CI;
# Debian bookworm, run as root). Logins by default; MODE=messages for chat (below).
#
#   sudo tests/load/compare.sh [SECONDS]          # default 10 s per run
#   MODE=messages tests/load/compare.sh           # chat between 8 pairs with each other in their
#                                                 # rosters (2 recipients offline, carbons on a
#                                                 # second sender session): the peak, then open
#                                                 # loop at half the peak; each server with its
#                                                 # roster, offline and carbons modules
#   BIN=/path/to/release tests/load/compare.sh    # use tessera, tessera-load and the plugin .so
#                                                 # files from BIN instead of building target/release
#   SERVERS="tessera prosody" tests/load/compare.sh   # only some of the three
#   TLS=starttls tests/load/compare.sh            # STARTTLS instead of direct TLS for all three
#   EJABBERD_ERL_OPTIONS="+sbwt none +sbwtdcpu none +sbwtdio none" tests/load/compare.sh
#                                                 # extra erl flags (here: no scheduler busy-wait)
#
# What it does:
#   - installs ejabberd, prosody, prosody-modules and lua-unbound from bookworm-backports if they
#     are missing (adding the backports source if needed), and stops daemons the packages started;
#   - makes one temporary directory for everything: a self-signed ECDSA P-256 certificate
#     (openssl, used by all three servers), configs, data, logs, accounts; picks free loopback
#     ports; nothing under /etc is touched beyond the package install;
#   - runs one server at a time (Tessera with mod_sasl2 + mod_sasl2_fast, ejabberd with
#     mod_auth_fast, Prosody with mod_sasl2, mod_sasl2_bind2, mod_sasl2_fast), registers 4
#     accounts on it and runs `tessera-load logins` with 4 clients for SECONDS each:
#       SCRAM-SHA-256, FAST HT-SHA-256-NONE, FAST HT-SHA-256-EXPR (where the server offers it),
#     over direct TLS (XEP-0368; all three support it, each is also given a STARTTLS port for
#     TLS=starttls; the table says which per row),
#     with the account JID as stream `from` (ejabberd offers SASL2 and Prosody FAST only then);
#   - prints a markdown table (logins/s, latency p50/p99 in ms from TCP connect to the post-auth
#     features, server CPU ms per login from /proc of the server process) and the raw JSON lines.
# Every login is a new TCP + TLS connection, SASL2 + Bind 2, post-auth features, stream close.
# Server and tool share the machine: compare server CPU per login more than logins per second.
# ejabberd waits ~100 ms before it answers the client's stream close, which caps its
# logins/s at concurrency 4 (the close is inside the rate, outside the latency); its CPU
# figure includes the Erlang schedulers' busy-wait (see EJABBERD_ERL_OPTIONS above).
set -euo pipefail

SECS="${1:-10}"
CONCURRENCY=4
MODE="${MODE:-logins}"
PAIRS=8
case "$MODE" in logins | messages) ;; *) echo "compare.sh: MODE=logins|messages" >&2; exit 1 ;; esac
SERVERS="${SERVERS:-tessera ejabberd prosody}"
TLS="${TLS:-direct}"
case "$TLS" in direct | starttls) ;; *) echo "compare.sh: TLS=direct|starttls" >&2; exit 1 ;; esac
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"

[ "$(id -u)" = 0 ] || { echo "compare.sh: run as root (apt-get, runuser)" >&2; exit 1; }

# --- binaries ------------------------------------------------------------------------------
if [ -z "${BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet -p tessera-host -p tessera-mod-sasl2 \
        -p tessera-mod-sasl2-fast -p tessera-load -p tessera-mod-ping -p tessera-mod-disco \
        -p tessera-mod-presence -p tessera-mod-roster -p tessera-mod-offline -p tessera-mod-carbons)
    BIN="$ROOT/target/release"
fi
NEED=tessera-load
case " $SERVERS " in *" tessera "*) NEED+=" tessera libmod_sasl2.so libmod_sasl2_fast.so" ;; esac
[ "$MODE" = messages ] && case " $SERVERS " in *" tessera "*)
    NEED+=" libmod_presence.so libmod_roster.so libmod_offline.so libmod_carbons.so" ;; esac
for f in $NEED; do
    [ -e "$BIN/$f" ] || { echo "compare.sh: $BIN/$f missing" >&2; exit 1; }
done

# --- peer packages -------------------------------------------------------------------------
PACKAGES="ejabberd prosody prosody-modules lua-unbound openssl jq"
installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}\n' "$@" 2>/dev/null | grep -c '^installed$')" = "$#" ]
}
if ! installed $PACKAGES; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        cat > /etc/apt/sources.list.d/bookworm-backports.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t bookworm-backports $PACKAGES
fi
version() { dpkg-query -W -f='${Version}' "$1" | sed 's/-[^-]*$//; s/^[0-9]*://'; }

# Daemons the packages may have started with the system config (ours use --config/--ctl-config).
stop_package_daemons() {
    local pids
    pids="$(pgrep -u ejabberd -f 'beam.*name ejabberd@' || true) \
          $(pgrep -u prosody -f 'bin/prosody' | while read -r p; do
                grep -qa -- '--config' "/proc/$p/cmdline" || echo "$p"; done || true)"
    [ -n "${pids// /}" ] || return 0
    echo "compare.sh: stopping the packages' own ejabberd/prosody daemons: $pids" >&2
    for svc in ejabberd prosody; do
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
            systemctl stop "$svc" 2>/dev/null || true
        fi
    done
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    sleep 2
    for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
}
stop_package_daemons

# --- temporary directory, cleanup ----------------------------------------------------------
DIR="$(mktemp -d /tmp/tessera-compare.XXXXXX)"
chmod 755 "$DIR" # the ejabberd and prosody users must reach their subdirectories
RESULTS="$DIR/results.jsonl"
: > "$RESULTS"
EPMD_BEFORE="$(pgrep -x epmd || true)"
SERVER_PID=""    # the process whose CPU is measured
SERVER_JOB=""    # what we started (ejabberdctl / runuser / tessera), waited for on stop
STOP_SERVER=""   # function that stops the current server

stop_server() {
    local i
    if [ -n "$STOP_SERVER" ]; then "$STOP_SERVER"; fi
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "$SERVER_JOB" ]; then
        kill "$SERVER_JOB" 2>/dev/null || true
        wait "$SERVER_JOB" 2>/dev/null || true
    fi
    SERVER_PID="" SERVER_JOB="" STOP_SERVER=""
}
cleanup() {
    set +e
    stop_server
    # epmd is not needed (ejabberd runs with ERL_DIST_PORT), but kill any that appeared.
    for p in $(pgrep -x epmd); do
        case " $EPMD_BEFORE " in *" $p "*) ;; *) kill "$p" 2>/dev/null ;; esac
    done
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

USED_PORTS=" "
# free_port VAR: a loopback TCP port nothing listens on (and not handed out before).
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        case "$USED_PORTS" in *" $p "*) continue ;; esac
        ss -Hltn "sport = :$p" | grep -q . && continue
        USED_PORTS+="$p "
        printf -v "$1" '%s' "$p"
        return
    done
}

# wait_port PORT SECONDS: until something accepts on 127.0.0.1:PORT.
wait_port() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        [ -n "$SERVER_JOB" ] && ! kill -0 "$SERVER_JOB" 2>/dev/null && return 1
        sleep 0.1
    done
    return 1
}

# One certificate for all three servers: self-signed ECDSA P-256 for "localhost".
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null

# accounts NAME: write $DIR/NAME.accounts (user@localhost:password), one line per client
# (two per pair in MODE=messages).
accounts() {
    local i n=$CONCURRENCY
    [ "$MODE" = messages ] && n=$((2 * PAIRS))
    : > "$DIR/$1.accounts"
    for ((i = 0; i < n; i++)); do
        echo "load$i@localhost:$(openssl rand -hex 12)" >> "$DIR/$1.accounts"
    done
}
account_lines() { tr ':' ' ' < "$DIR/$1.accounts" | sed 's/@localhost / /'; } # "user password"

# --- the load runs -------------------------------------------------------------------------
# bench NAME VERSION STARTTLS_PORT DIRECT_TLS_PORT: the login runs against the server started
# last, over $TLS.
bench() {
    local name="$1" ver="$2" port="$4" tls="$TLS" mech out err
    [ "$TLS" = starttls ] && port="$3"
    if [ "$MODE" = messages ]; then
        bench_messages "$name" "$ver" "$port" "$tls"
        return
    fi
    for mech in scram-sha-256 fast-none fast-expr; do
        echo "== $name $ver: $mech, $tls TLS, $CONCURRENCY clients, $SECS s" >&2
        out="$DIR/run.out" err="$DIR/run.err"
        if "$BIN/tessera-load" logins --server "127.0.0.1:$port" --tls "$tls" --send-from true \
            --concurrency "$CONCURRENCY" --duration "$SECS" --mechanism "$mech" \
            --accounts "$DIR/$name.accounts" --server-pid "$SERVER_PID" > "$out" 2> "$err"; then
            cat "$err" >&2
            jq -c --arg s "$name" --arg v "$ver" '{peer: $s, version: $v} + .' "$out" >> "$RESULTS"
        else
            cat "$err" >&2
            jq -nc --arg s "$name" --arg v "$ver" --arg m "$mech" --arg t "$tls" \
                --arg e "$(tail -n 1 "$err")" \
                '{peer: $s, version: $v, mechanism: $m, tls: $t, failed: $e}' >> "$RESULTS"
        fi
    done
}

# bench_messages NAME VERSION PORT TLS: the peak, then open loop at half the peak.
bench_messages() {
    local name="$1" ver="$2" port="$3" tls="$4" out="$DIR/run.out" err="$DIR/run.err" rate=""
    for run in peak half; do
        echo "== $name $ver: messages ($run), $PAIRS pairs, $tls TLS, $SECS s" >&2
        if "$BIN/tessera-load" messages --server "127.0.0.1:$port" --tls "$tls" --send-from true \
            --pairs "$PAIRS" --offline 2 --carbons --duration "$SECS" ${rate:+--rate "$rate"} \
            --accounts "$DIR/$name.accounts" --server-pid "$SERVER_PID" > "$out" 2> "$err"; then
            cat "$err" >&2
            jq -c --arg s "$name" --arg v "$ver" --arg r "$run" '{peer: $s, version: $v, run: $r} + .' \
                "$out" >> "$RESULTS"
            rate="$(jq -r '.messages_per_s / 2 | round' "$out")"
        else
            cat "$err" >&2
            jq -nc --arg s "$name" --arg v "$ver" --arg r "$run" --arg e "$(tail -n 1 "$err")" \
                '{peer: $s, version: $v, run: $r, failed: $e}' >> "$RESULTS"
            return
        fi
    done
}

# --- Tessera -------------------------------------------------------------------------------
run_tessera() {
    local d="$DIR/tessera" c2s tls http ver
    local TESSERA_MODULES='"sasl2", "sasl2_fast", "ping", "disco"'
    [ "$MODE" = messages ] && TESSERA_MODULES+=', "presence", "roster", "offline", "carbons"'
    mkdir -p "$d"
    free_port c2s; free_port tls; free_port http
    cat > "$d/tessera.toml" <<EOF
domain = "localhost"
data_dir = "data"
plugin_dir = "$BIN"
modules_enabled = [$TESSERA_MODULES]

[c2s]
listen = ["127.0.0.1:$c2s"]
direct_tls = ["127.0.0.1:$tls"]
max_connections_per_ip = 1000000   # the load tool connects from one address
# A capacity run: no receive throttle, as ejabberd's listener (no shaper) and Prosody (no
# mod_limits) run here.
receive_rate = 1073741824
receive_burst = 1073741824

[http]
listen = ["127.0.0.1:$http"]

[tls]
cert = "$DIR/cert.pem"
key = "$DIR/key.pem"
EOF
    RUST_LOG=warn "$BIN/tessera" -c "$d/tessera.toml" run > "$d/server.out" 2> "$d/server.err" &
    SERVER_JOB=$! SERVER_PID=$!
    for _ in $(seq 100); do
        grep -q '^tessera ready' "$d/server.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -q '^tessera ready' "$d/server.out" || { cat "$d/server.err" >&2; return 1; }
    accounts tessera
    local user pw
    while read -r user pw; do
        echo "$pw" | RUST_LOG=warn "$BIN/tessera" -c "$d/tessera.toml" user add "$user@localhost" \
            >/dev/null || return 1
    done < <(account_lines tessera)
    ver="$("$BIN/tessera" --version | awk '{print $2}')"
    bench tessera "$ver" "$c2s" "$tls"
    stop_server
}

# --- ejabberd ------------------------------------------------------------------------------
EJ_ARGS=()
ejabberdctl_() { ejabberdctl "${EJ_ARGS[@]}" "$@"; }
stop_ejabberd() { ejabberdctl_ stop >/dev/null 2>&1 || true; }
run_ejabberd() {
    local d="$DIR/ejabberd" start tls dist node user pw
    mkdir -p "$d/db" "$d/log"
    free_port start; free_port tls; free_port dist
    node="tcmp$$@localhost"
    cat "$DIR/cert.pem" "$DIR/key.pem" > "$d/server.pem"
    cp /etc/ejabberd/inetrc "$d/inetrc" 2>/dev/null || echo '{file, hosts, "/etc/hosts"}.' > "$d/inetrc"
    cat > "$d/ejabberdctl.cfg" <<EOF
ERLANG_NODE=$node
EJABBERD_CONFIG_PATH=$d/ejabberd.yml
ERL_EPMD_ADDRESS=127.0.0.1
INET_DIST_INTERFACE=127.0.0.1
ERL_DIST_PORT=$dist
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 ${EJABBERD_ERL_OPTIONS:-}"
EJABBERD_BYPASS_WARNINGS=true
EOF
    cat > "$d/ejabberd.yml" <<EOF
loglevel: warning
hosts: [localhost]
certfiles: ["$d/server.pem"]
listen:
  - {port: $start, ip: "127.0.0.1", module: ejabberd_c2s, starttls_required: true, access: c2s}
  - {port: $tls, ip: "127.0.0.1", module: ejabberd_c2s, tls: true, access: c2s}
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
disable_sasl_mechanisms: ["digest-md5", "x-oauth2"]
access_rules:
  c2s: {allow: all}
api_permissions:
  "console commands": {from: [ejabberd_ctl], who: all, what: "*"}
modules:
  mod_auth_fast: {}
  mod_disco: {}
  mod_ping: {}
$( [ "$MODE" = messages ] && printf '  mod_roster: {}\n  mod_offline: {}\n  mod_carboncopy: {}\n' )
EOF
    chown -R ejabberd:ejabberd "$d"
    chmod 600 "$d/server.pem"
    EJ_ARGS=(--config-dir "$d" --ctl-config "$d/ejabberdctl.cfg" --spool "$d/db" --logs "$d/log")
    ejabberdctl_ foreground > "$d/server.out" 2>&1 &
    SERVER_JOB=$! STOP_SERVER=stop_ejabberd
    if ! wait_port "$tls" 60; then
        cat "$d/server.out" "$d/log/ejabberd.log" >&2 2>/dev/null; return 1
    fi
    SERVER_PID="$(pgrep -u ejabberd -f "beam.*name $node" | head -n 1)"
    [ -n "$SERVER_PID" ] || { echo "compare.sh: no beam process for $node" >&2; return 1; }
    ejabberdctl_ started || return 1
    accounts ejabberd
    while read -r user pw; do
        ejabberdctl_ register "$user" localhost "$pw" < /dev/null >/dev/null || return 1
    done < <(account_lines ejabberd)
    bench ejabberd "$(version ejabberd)" "$start" "$tls"
    stop_server
}

# --- Prosody -------------------------------------------------------------------------------
run_prosody() {
    local d="$DIR/prosody" start tls user pw
    mkdir -p "$d/data" "$d/certs"
    free_port start; free_port tls
    cp "$DIR/cert.pem" "$DIR/key.pem" "$d/"
    cat > "$d/prosody.cfg.lua" <<EOF
-- Generated by tests/load/compare.sh
data_path = "$d/data"
log = { { levels = { min = "warn" }, to = "file", filename = "$d/prosody.log" } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $start }
c2s_direct_tls_ports = { $tls }
s2s_ports = { }
http_ports = { }
https_ports = { }
network_settings = { nagle = false }
ssl = { certificate = "$d/cert.pem", key = "$d/key.pem" }
c2s_require_encryption = true
authentication = "internal_hashed"
password_hash = "SHA-256"
storage = "internal"
allow_registration = false
modules_enabled = { "tls", "saslauth", "disco", "ping", "sasl2", "sasl2_bind2", "sasl2_fast"$( [ "$MODE" = messages ] && printf ', "roster", "carbons"' ) }
modules_disabled = { "s2s"$( [ "$MODE" = messages ] || printf ', "offline"' ) }
VirtualHost "localhost"
EOF
    chown -R prosody:prosody "$d"
    chmod 600 "$d/key.pem"
    runuser -u prosody -- prosody --config "$d/prosody.cfg.lua" -F > "$d/server.out" 2>&1 &
    SERVER_JOB=$!
    if ! wait_port "$tls" 30; then
        cat "$d/server.out" "$d/prosody.log" >&2 2>/dev/null; return 1
    fi
    SERVER_PID="$(pgrep -P "$SERVER_JOB" | head -n 1)"
    [ -n "$SERVER_PID" ] || SERVER_PID="$SERVER_JOB" # runuser exec'd directly
    accounts prosody
    while read -r user pw; do
        runuser -u prosody -- prosodyctl --config "$d/prosody.cfg.lua" register "$user" localhost "$pw" \
            < /dev/null >> "$d/prosodyctl.out" 2>&1 || { cat "$d/prosodyctl.out" >&2; return 1; }
    done < <(account_lines prosody)
    bench prosody "$(version prosody)" "$start" "$tls"
    stop_server
}

# One server at a time (set -e does not apply inside run_*: each checks its own steps).
for s in $SERVERS; do
    "run_$s" || { echo "compare.sh: $s failed to start or to register accounts; skipped" >&2; stop_server; }
done

# --- report --------------------------------------------------------------------------------
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc)" \
    "($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1))," \
    "$(free -g | awk '/^Mem:/{print $2}') GiB, $(. /etc/os-release && echo "$PRETTY_NAME")," \
    "${SECS} s per run, $CONCURRENCY clients, loopback"
echo
if [ "$MODE" = messages ]; then
    echo "| server | version | run | messages/s | p50 ms | p99 ms | server CPU ms/message | stored / delivered at login | carbons | errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    jq -r '
      if .failed then "| \(.peer) | \(.version) | \(.run) | n/a | | | | | | \(.failed | gsub("\\|"; "/")) |"
      else "| \(.peer) | \(.version) | \(.run) | \(.messages_per_s | round) | \(.latency_ms.p50) | " +
        "\(.latency_ms.p99) | \(.server_cpu_ms_per_message) | \(.messages_stored_offline) / " +
        "\(.offline_delivered_at_login) | \(.carbons_received) | \(.errors_total) |" end' "$RESULTS"
    echo
    echo "Raw JSON lines:"
    cat "$RESULTS"
    exit 0
fi
echo "| server | version | TLS | mechanism | logins/s | p50 ms | p99 ms | server CPU ms/login | errors |"
echo "|---|---|---|---|---|---|---|---|---|"
jq -r '
  def mech: {"scram-sha-256": "SCRAM-SHA-256", "fast-none": "FAST HT-SHA-256-NONE",
             "fast-expr": "FAST HT-SHA-256-EXPR"}[.mechanism] // .mechanism;
  if .failed then
    "| \(.peer) | \(.version) | \(.tls) | \(mech) | n/a | | | | \(.failed | gsub("\\|"; "/")) |"
  else
    "| \(.peer) | \(.version) | \(.tls) (\(.tls_version)) | \(mech) | \(.logins_per_s | round) | " +
    "\(.latency_ms.p50) | \(.latency_ms.p99) | \(.server_cpu_ms_per_login) | \(.errors_total) |"
  end' "$RESULTS"
echo
echo "Raw JSON lines:"
cat "$RESULTS"
