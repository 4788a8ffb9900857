#!/usr/bin/env bash
# Tests for the helper functions of tests/run.sh, against sample apt source folders (no apt, no
# network, no root): which mirror the bookworm-backports suite is taken from.
#
#   bash tests/run_sh_tests.sh      (tests/run.sh runs it before the cargo gates)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Sourcing defines the functions and returns before run.sh installs or runs anything.
# shellcheck source=tests/run.sh
source "$HERE/run.sh"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0

# A fresh, empty apt folder (with sources.list.d/) for one case; prints its path.
apt_dir() {
    local dir
    dir="$(mktemp -d "$WORK/apt.XXXXXX")"
    mkdir "$dir/sources.list.d"
    printf '%s\n' "$dir"
}

# expect NAME WANT DIR: debian_bookworm_uri DIR prints exactly WANT (and succeeds).
expect() {
    local name="$1" want="$2" dir="$3" got
    if ! got="$(debian_bookworm_uri "$dir")"; then
        got="<exit status $?>"
    fi
    if [[ "$got" == "$want" ]]; then
        passed=$((passed + 1))
        printf 'ok - %s\n' "$name"
    else
        failed=$((failed + 1))
        printf 'not ok - %s\n    want: %q\n    got:  %q\n' "$name" "$want" "$got"
    fi
}

# --- deb822 ---------------------------------------------------------------------------------------
d="$(apt_dir)"
cat >"$d/sources.list.d/debian.sources" <<'EOF'
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example.lan/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example.lan/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
expect "deb822: the Debian image's own layout, behind a mirror" http://mirror.example.lan/debian "$d"

d="$(apt_dir)"
cat >"$d/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://disabled.example.lan/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src
URIs: http://src-only.example.lan/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://contrib-only.example.lan/debian
Suites: bookworm
Components: contrib non-free

types: deb deb-src
uris: cdrom:/media/cdrom/ https://first.example.lan/debian/
  https://second.example.lan/debian
suites: bookworm-updates
  bookworm
components: main contrib
signed-by:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPJ+Urr
 -----END PGP PUBLIC KEY BLOCK-----
EOF
expect "deb822: disabled, deb-src, other-component and cdrom entries are skipped; folded fields and lower-case keys are read" \
    https://first.example.lan/debian/ "$d"

d="$(apt_dir)"
cat >"$d/sources.list.d/nodesource.sources" <<'EOF'
Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
EOF
cat >"$d/sources.list.d/security.sources" <<'EOF'
Types: deb
URIs: http://security.example.lan/debian-security
Suites: bookworm-security
Components: main
EOF
expect "deb822: no bookworm main suite prints nothing" "" "$d"

# --- one-line format ------------------------------------------------------------------------------
d="$(apt_dir)"
cat >"$d/sources.list" <<'EOF'
# deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1 20240210-11:28]/ bookworm contrib main
deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1 20240210-11:28]/ bookworm contrib main
#deb http://commented.example.lan/debian bookworm main
deb-src http://src.example.lan/debian bookworm main
deb http://security.example.lan/debian-security bookworm-security main
deb http://contrib.example.lan/debian bookworm contrib
deb http://ftp.example.lan/debian/ bookworm main non-free-firmware # the mirror
deb http://later.example.lan/debian bookworm main
EOF
expect "one-line: comments, cdrom, deb-src, other suites and components are skipped; the first match wins" \
    http://ftp.example.lan/debian/ "$d"

d="$(apt_dir)"
cat >"$d/sources.list.d/mirror.list" <<'EOF'
	deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://opts.example.lan/debian bookworm main
EOF
expect "one-line: an options block and leading whitespace" http://opts.example.lan/debian "$d"

d="$(apt_dir)"
cat >"$d/sources.list.d/mirror.list" <<'EOF'
deb [ arch=amd64 trusted=no ] http://spaced.example.lan/debian bookworm contrib main
EOF
expect "one-line: an options block with spaces inside the brackets" http://spaced.example.lan/debian "$d"

# --- which file wins ------------------------------------------------------------------------------
d="$(apt_dir)"
echo "deb http://list.example.lan/debian bookworm main" >"$d/sources.list"
printf 'Types: deb\nURIs: http://d.example.lan/debian\nSuites: bookworm\nComponents: main\n' \
    >"$d/sources.list.d/a.sources"
expect "sources.list is read before sources.list.d" http://list.example.lan/debian "$d"

d="$(apt_dir)"
printf 'Types: deb\nURIs: http://b.example.lan/debian\nSuites: bookworm\nComponents: main\n' \
    >"$d/sources.list.d/b.sources"
echo "deb http://a.example.lan/debian bookworm main" >"$d/sources.list.d/a.list"
echo "deb http://0.example.lan/debian bookworm main" >"$d/sources.list.d/0.list.disabled"
echo "deb http://1.example.lan/debian bookworm main" >"$d/sources.list.d/1.sources.save"
expect "sources.list.d in name order, other extensions ignored" http://a.example.lan/debian "$d"

d="$(apt_dir)"
printf 'Types: deb\nURIs: http://first.example.lan/debian\nSuites: bookworm-updates\nComponents: main\n' \
    >"$d/sources.list.d/a.sources"
printf 'Types: deb\nURIs: http://second.example.lan/debian\nSuites: bookworm\nComponents: main\n' \
    >"$d/sources.list.d/b.sources"
expect "a stanza ends with its file" http://second.example.lan/debian "$d"

expect "an empty apt folder prints nothing" "" "$(apt_dir)"
expect "a missing apt folder prints nothing" "" "$WORK/does-not-exist"

# --- the stanza run.sh writes ---------------------------------------------------------------------
d="$(apt_dir)"
echo "deb http://local.example.lan/debian bookworm main" >"$d/sources.list"
stanza="$(backports_sources "$d" 2>/dev/null)"
expect_stanza() {
    local name="$1" want="$2" got="$3"
    if grep -qxF "URIs: $want" <<<"$got" && grep -qxF "Suites: bookworm-backports" <<<"$got"; then
        passed=$((passed + 1))
        printf 'ok - %s\n' "$name"
    else
        failed=$((failed + 1))
        printf 'not ok - %s\n    want URIs: %s\n    got:\n%s\n' "$name" "$want" "$got"
    fi
}
expect_stanza "backports come from the machine's mirror" http://local.example.lan/debian "$stanza"
stanza="$(backports_sources "$(apt_dir)" 2>/dev/null)"
expect_stanza "backports fall back to Debian's default mirror" http://deb.debian.org/debian "$stanza"

echo "run_sh_tests: $passed passed, $failed failed"
[[ "$failed" == 0 ]]
