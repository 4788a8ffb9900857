#!/usr/bin/env bash
# The other load modes against a release build of Tessera on loopback (not part of CI):
#
#   tests/load/modes.sh [IDLE_SESSIONS] [SOAK_SECONDS]     # defaults 10000 and 60
#
# Starts a server like bench.sh (server.sh), then runs, one after the other:
#   idle    IDLE_SESSIONS authenticated sessions (checkpoints at 1,000 and 10,000), held 5 s:
#           server RSS per session;
#   fanout  1,000 sessions of one account with a FAST token each; the password is changed with
#           `tessera user passwd`: time until every session got <reset/> and every token is
#           refused;
#   mixed   SOAK_SECONDS of 500 held sessions pinging every second, 2 SCRAM and 2 FAST login
#           workers, and a password change every 5 s resetting 50 sessions.
# Prints one JSON line per run on stdout (summaries on stderr).
set -euo pipefail

IDLE="${1:-10000}"
SOAK="${2:-60}"
# shellcheck source=server.sh
source "$(dirname "$0")/server.sh"

load() {
    "$BIN/tessera-load" "$1" --server "$DIRECT" --tessera-config "$CONF" "${@:2}"
}

load idle --count "$IDLE" --checkpoints 1000,10000 --duration 5 --create 10 --server-pid "$SERVER"
load fanout --count 1000 --tokens
load mixed --duration "$SOAK" --idle 500 --scram 2 --fast 2 --password-every 5 --fanout 50 \
    --create 8 --server-pid "$SERVER"
