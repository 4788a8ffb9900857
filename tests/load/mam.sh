#!/usr/bin/env bash
# What a XEP-0313 query for the latest page costs with a large archive (not part of CI; the
# figures are in docs/benchmarks.md).
#
#   tests/load/mam.sh [FILL] [QUERIES]     # default 100000 messages, 500 queries of 50
#
# A release server with modules sasl2, ping, disco and mam; `tessera-load mam` fills one
# account's archive through a real session, then times queries for the latest 50.
set -euo pipefail

FILL="${1:-100000}"
QUERIES="${2:-500}"
MODULES='"sasl2", "ping", "disco", "mam"'
# The filler sends as fast as it can: above the default 128 KiB/s per connection.
C2S_EXTRA="receive_rate = 104857600
receive_burst = 104857600"
# shellcheck source=server.sh
source "$(dirname "$0")/server.sh"

"$BIN/tessera-load" mam --server "$DIRECT" --create 2 --tessera-config "$CONF" \
    --server-pid "$SERVER" --fill "$FILL" --queries "$QUERIES" --page 50
