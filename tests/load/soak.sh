#!/usr/bin/env bash
# The soak run of issue 12 (not part of CI): `tessera-load mixed` against a release build for
# MINUTES (default 30), sampling the server every INTERVAL seconds (default 10):
#
#   tests/load/soak.sh [MINUTES] [INTERVAL]
#
# Load: 500 held sessions pinging every second, 1 SCRAM and 1 FAST login worker, a password
# change every 5 s resetting 50 sessions (which then log in again). Samples: resident memory,
# open descriptors and threads (from /proc), and from `tessera status` the runtime's live tasks,
# sessions, connections and SASL exchanges in progress. Writes docs/soak/soak.csv and plots it
# to docs/soak/soak.png (gnuplot, installed from Debian if missing); prints the load tool's JSON
# line and a first/last/max summary of each series.
set -euo pipefail

MINUTES="${1:-30}"
INTERVAL="${2:-10}"
# shellcheck source=server.sh
source "$(dirname "$0")/server.sh"
OUT="$ROOT/docs/soak"
mkdir -p "$OUT"
CSV="$OUT/soak.csv"

sample() {
    local t="$1" status rss threads fds
    status="$("$BIN/tessera" -c "$CONF" status 2>/dev/null || echo '{}')"
    rss="$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER/status")"
    threads="$(awk '/^Threads:/ {print $2}' "/proc/$SERVER/status")"
    fds="$(find "/proc/$SERVER/fd" -mindepth 1 -maxdepth 1 | wc -l)"
    python3 -c '
import json, sys
s = json.loads(sys.argv[1] or "{}")
c = s.get("connections", {})
print(",".join(str(v) for v in [sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5],
      s.get("tasks", ""), s.get("sessions", ""), c.get("c2s", ""), s.get("exchanges", "")]))
' "$status" "$t" "$rss" "$fds" "$threads"
}

echo "seconds,rss_kib,fds,threads,tasks,sessions,c2s_connections,exchanges" > "$CSV"
DURATION=$((MINUTES * 60))
"$BIN/tessera-load" mixed --server "$DIRECT" --tessera-config "$CONF" --duration "$DURATION" \
    --idle 500 --scram 1 --fast 1 --password-every 5 --fanout 50 --create 8 \
    --server-pid "$SERVER" > "$DIR/mixed.json" 2> "$DIR/mixed.err" &
LOAD=$!
START=$(date +%s)
while kill -0 "$LOAD" 2>/dev/null; do
    sample "$(( $(date +%s) - START ))" >> "$CSV"
    sleep "$INTERVAL"
done
wait "$LOAD" || { cat "$DIR/mixed.err" >&2; exit 1; }
sleep 2
sample "$(( $(date +%s) - START ))" >> "$CSV"
cat "$DIR/mixed.json"

python3 - "$CSV" "$DURATION" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
duration = int(sys.argv[2])
for key in ["rss_kib", "fds", "threads", "tasks", "sessions", "exchanges"]:
    vals = [int(r[key]) for r in rows if r[key] not in ("", None)]
    if vals:
        # Under load, after the first minute (the warm-up opens the sessions); the last row is
        # after the load ended.
        steady = [int(r[key]) for r in rows
                  if r[key] and 60 <= int(r["seconds"]) <= duration] or vals
        print(f"{key}: start {vals[0]}; under load from 60 s: first {steady[0]}, last {steady[-1]}, "
              f"min {min(steady)}, max {max(steady)}; after the load {vals[-1]}")
PY

command -v gnuplot >/dev/null || {
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null
}
gnuplot <<GP
set datafile separator ","
set terminal pngcairo size 1200,800 font ",10"
set output "$OUT/soak.png"
set multiplot layout 2,2 title "Tessera soak: tessera-load mixed, ${MINUTES} min (500 pinging sessions, SCRAM + FAST logins, password change every 5 s)"
set xlabel "seconds"
set key top left
set title "resident memory (MiB)"
plot "$CSV" using 1:(\$2/1024) skip 1 with lines title "RSS"
set title "open descriptors"
plot "$CSV" using 1:3 skip 1 with lines title "fds"
set title "runtime tasks and threads"
plot "$CSV" using 1:5 skip 1 with lines title "tasks", "$CSV" using 1:4 skip 1 with lines title "threads"
set title "sessions and SASL exchanges in progress"
plot "$CSV" using 1:6 skip 1 with lines title "sessions", "$CSV" using 1:8 skip 1 with lines title "exchanges"
unset multiplot
GP
echo "plot: $OUT/soak.png"
