#!/usr/bin/env bash
# Installs what the password-reset end-to-end tests (tests/e2e/password_reset.rs) need, on a
# Debian bookworm machine, as root or with sudo:
#   - Debian's `chromium` (headless browser; never a browser download from the internet);
#   - the npm packages of tests/web (playwright-core only, from package-lock.json, `npm ci`);
#   - a Python venv at tests/web/.venv with aiosmtpd (the loopback SMTP server the tests start).
# Every step checks first and is skipped when already satisfied, so a rerun takes about a second.
#
#   tests/web/install.sh
set -euo pipefail

WEB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
AIOSMTPD_VERSION=1.4.6

log() { printf '[tests/web/install.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

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

# --- Debian chromium ---------------------------------------------------------------------------
if [[ -x /usr/bin/chromium ]] && dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q 'ok installed'; then
    log "chromium $(dpkg-query -W -f='${Version}' chromium) already installed"
else
    apt_update_once
    log "installing chromium (Debian)"
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium >/dev/null
    [[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium missing after install"
    log "chromium $(dpkg-query -W -f='${Version}' chromium) installed"
fi

# --- playwright-core (npm) ---------------------------------------------------------------------
command -v node >/dev/null || die "node not found (the machine image ships Node.js >= 20)"
command -v npm >/dev/null || die "npm not found"
lock_sum="$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)"
stamp="$WEB/node_modules/.tessera-lock-sha256"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_sum" && -d "$WEB/node_modules/playwright-core" ]]; then
    log "tests/web/node_modules up to date"
else
    log "npm ci in tests/web"
    (cd "$WEB" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$lock_sum" >"$stamp"
fi

# --- aiosmtpd in a venv ------------------------------------------------------------------------
VENV="$WEB/.venv"
if [[ -x "$VENV/bin/python" ]] \
    && "$VENV/bin/python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$AIOSMTPD_VERSION')" 2>/dev/null; then
    log "tests/web/.venv has aiosmtpd $AIOSMTPD_VERSION"
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
    log "creating tests/web/.venv with $($PY --version)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
fi
log "done"
