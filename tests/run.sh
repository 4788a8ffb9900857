#!/usr/bin/env bash
# Tessera's one test command: `./tests/run.sh`.
#
# On a fresh Debian bookworm machine (as root, or with sudo) it installs what the tests need, then
# runs `cargo test --workspace` and exits with its status. Every install step checks first and is
# skipped when already satisfied, so reruns go straight to the tests; the tests are never skipped.
#
#   ./tests/run.sh                  install, then `cargo test --workspace`, then each fuzz target
#                                   for 30 s (tests/fuzz/run.sh 30; see tests/fuzz/README.md)
#   ./tests/run.sh --install-only   install only
#   ./tests/run.sh ARGS…            install, then `cargo test ARGS…` (e.g. -p tessera-tests --test interop)
#
# What it installs (see tests/interop/ and shared docs "test-infrastructure"):
#   - go-sendxmpp >= 0.14 from Debian bookworm-backports (the suite is added if missing);
#   - the npm packages of tests/interop (package-lock.json; @xmpp/client 0.14.0) with `npm ci`;
#   - a Python venv at tests/interop/.venv with tests/interop/requirements.txt (slixmpp).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INTEROP="$ROOT/tests/interop"
cd "$ROOT"

log() { printf '[tests/run.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Print the URI of the Debian `bookworm` suite with the `main` component from the apt sources in the
# folder $1 (default /etc/apt): sources.list and sources.list.d/*.list (one-line format) and
# sources.list.d/*.sources (deb822), in the order apt reads them; the first match wins. Prints
# nothing when there is none. Disabled (`Enabled: no`), commented-out, deb-src and cdrom: entries
# are skipped. So the backports suite comes from the mirror this machine already uses.
# (tests/run_sh_tests.sh checks it against sample files.)
debian_bookworm_uri() {
    local etc="${1:-/etc/apt}" f
    local files=()
    if [[ -f "$etc/sources.list" ]]; then files+=("$etc/sources.list"); fi
    for f in "$etc"/sources.list.d/*; do
        if [[ -f "$f" && ( "$f" == *.list || "$f" == *.sources ) ]]; then files+=("$f"); fi
    done
    if [[ ${#files[@]} -eq 0 ]]; then return 0; fi
    awk '
        function has(list, word,   n, w, i) {
            n = split(list, w, /[ \t]+/)
            for (i = 1; i <= n; i++) if (w[i] == word) return 1
            return 0
        }
        function found(uri) { print uri; done = 1; exit }
        function stanza(   n, u, i) {
            if (has(types, "deb") && tolower(enabled) != "no" && has(suites, "bookworm") \
                && has(components, "main")) {
                n = split(uris, u, /[ \t]+/)
                for (i = 1; i <= n; i++) if (u[i] != "" && u[i] !~ /^cdrom:/) found(u[i])
            }
            types = uris = suites = components = enabled = key = ""
        }
        function field(k, v) {
            if (k == "types") types = types " " v
            else if (k == "uris") uris = uris " " v
            else if (k == "suites") suites = suites " " v
            else if (k == "components") components = components " " v
            else if (k == "enabled") enabled = v
        }
        function oneline(line,   n, t, i, j) {
            sub(/#.*/, "", line)
            gsub(/^[ \t]+|[ \t]+$/, "", line)
            n = split(line, t, /[ \t]+/)
            if (n < 4 || t[1] != "deb") return
            i = 2
            if (t[i] ~ /^\[/) { while (i <= n && t[i] !~ /\]$/) i++; i++ }
            if (i + 2 > n || t[i] ~ /^cdrom:/ || t[i + 1] != "bookworm") return
            for (j = i + 2; j <= n; j++) if (t[j] == "main") found(t[i])
        }
        FNR == 1 { stanza() }
        FILENAME !~ /\.sources$/ { oneline($0); next }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { stanza(); next }
        /^[ \t]/ { if (key != "") { line = $0; sub(/^[ \t]+/, "", line); field(key, line) } next }
        {
            key = tolower($0); sub(/:.*/, "", key)
            line = $0; sub(/^[^:]*:[ \t]*/, "", line); sub(/[ \t]+$/, "", line)
            field(key, line)
        }
        END { if (!done) stanza() }
    ' "${files[@]}"
}

# Print the deb822 stanza for bookworm-backports, from the mirror of the apt sources in the folder
# $1 (default /etc/apt), or from Debian's default mirror when they have no bookworm main suite.
backports_sources() {
    local mirror
    mirror="$(debian_bookworm_uri "${1:-/etc/apt}")"
    if [[ -z "$mirror" ]]; then
        mirror=http://deb.debian.org/debian
        log "no Debian bookworm main suite in the apt sources; using $mirror"
    fi
    log "bookworm-backports from $mirror"
    cat <<EOF
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

# Sourced (by tests/run_sh_tests.sh): define the functions only.
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then return 0; fi

INSTALL_ONLY=0
if [[ "${1:-}" == "--install-only" ]]; then
    INSTALL_ONLY=1
    shift
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || die "not root and no sudo: cannot install packages"
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

APT_UPDATED=0
apt_update_once() {
    if [[ "$APT_UPDATED" == 0 ]]; then
        log "apt-get update"
        "${SUDO[@]}" apt-get update -q >/dev/null
        APT_UPDATED=1
    fi
}

# --- Debian bookworm-backports + go-sendxmpp (SASL2 / SCRAM-*-PLUS / Bind 2 client) -------------
BACKPORTS=/etc/apt/sources.list.d/bookworm-backports.sources
installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

gsx="$(installed_version go-sendxmpp)"
if [[ -n "$gsx" ]] && dpkg --compare-versions "$gsx" ge 0.14; then
    log "go-sendxmpp $gsx already installed"
else
    if [[ ! -f "$BACKPORTS" ]] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        log "adding Debian bookworm-backports to the apt sources"
        backports_sources | "${SUDO[@]}" tee "$BACKPORTS" >/dev/null
    fi
    apt_update_once
    log "installing go-sendxmpp from bookworm-backports"
    "${SUDO[@]}" apt-get install -y -q -t bookworm-backports go-sendxmpp >/dev/null
    gsx="$(installed_version go-sendxmpp)"
    dpkg --compare-versions "$gsx" ge 0.14 || die "go-sendxmpp $gsx is older than 0.14"
    log "go-sendxmpp $gsx installed"
fi

# --- util-linux tools of the e2e tests: setpriv (a client as another user, which needs root) and
# prlimit (a server under a small descriptor limit) --------------------------------------------
for tool in setpriv prlimit; do
    if ! command -v "$tool" >/dev/null; then
        apt_update_once
        log "installing util-linux ($tool)"
        "${SUDO[@]}" apt-get install -y -q util-linux >/dev/null
    fi
    command -v "$tool" >/dev/null || die "$tool not found after installing util-linux"
done
[[ "$(id -u)" == 0 ]] || log "WARNING: not root: the admin-socket test that runs a client as another user will fail"
getent passwd nobody >/dev/null || die "no user 'nobody': the admin-socket test runs a client as it"

# --- Node.js (>= 20.10, required by @xmpp/client 0.14) and the npm packages ----------------------
command -v node >/dev/null || die "node not found: the tests need Node.js >= 20.10 (the machine image ships it)"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=10)?0:1)' \
    || die "node $(node --version) is too old: @xmpp/client 0.14 needs >= 20.10"
command -v npm >/dev/null || die "npm not found"

# `npm ci` always reinstalls from scratch; skip it when node_modules was made from this very lock.
lock_sum="$(sha256sum "$INTEROP/package-lock.json" | cut -d' ' -f1)"
stamp="$INTEROP/node_modules/.tessera-lock-sha256"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_sum" && -d "$INTEROP/node_modules/@xmpp/client" ]]; then
    log "tests/interop/node_modules up to date ($(node --version))"
else
    log "npm ci in tests/interop"
    (cd "$INTEROP" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$lock_sum" >"$stamp"
fi

# --- Python venv with slixmpp (legacy RFC 6120 SASL client) --------------------------------------
VENV="$INTEROP/.venv"
req_sum="$(sha256sum "$INTEROP/requirements.txt" | cut -d' ' -f1)"
stamp="$VENV/.tessera-requirements-sha256"
if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$req_sum" ]] \
    && "$VENV/bin/python" -c 'import slixmpp' 2>/dev/null; then
    log "tests/interop/.venv up to date"
else
    PY=python3
    if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        if ! /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; then
            apt_update_once
            log "installing python3-venv"
            "${SUDO[@]}" apt-get install -y -q python3-venv >/dev/null
        fi
        PY=/usr/bin/python3
    fi
    log "creating tests/interop/.venv with $($PY --version)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$INTEROP/requirements.txt"
    echo "$req_sum" >"$stamp"
fi
log "slixmpp $("$VENV/bin/python" -c 'import slixmpp; print(slixmpp.__version__)')"

# Browser, SMTP server and their drivers for the password-reset tests (tests/web).
if [[ -x "$ROOT/tests/web/install.sh" ]]; then
    "$ROOT/tests/web/install.sh"
fi

if [[ "$INSTALL_ONLY" == 1 ]]; then
    log "install done (--install-only)"
    exit 0
fi

# --- The tests ------------------------------------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found"
FULL_RUN=0
if [[ $# -eq 0 ]]; then
    FULL_RUN=1
    # The full run also holds the code to its gates.
    log "tests/run_sh_tests.sh"
    bash "$ROOT/tests/run_sh_tests.sh" || die "tests/run_sh_tests.sh failed"
    log "cargo fmt --all --check"
    cargo fmt --all --check || die "code is not formatted (cargo fmt --all)"
    log "cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings || die "clippy found problems"
    set -- --workspace
fi
log "cargo test $*"
set +e
cargo test "$@"
status=$?
set -e
log "cargo test exited with $status"
if [[ "$status" == 0 && "$FULL_RUN" == 1 ]]; then
    # Smoke-run every fuzz target for 30 s; its last line is `fuzz: N passed, M failed`.
    log "tests/fuzz/run.sh 30"
    set +e
    bash "$ROOT/tests/fuzz/run.sh" 30
    status=$?
    set -e
    log "tests/fuzz/run.sh exited with $status"
fi
exit "$status"
