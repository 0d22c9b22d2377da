#!/usr/bin/env bash
# A month opened during a burst of pushes, on a district ten times a full one: push-new against a
# fieldsyncd whose database has every record of a year but not the current month's person-based
# figures, so that the burst's first visit opens the month. Run it with slices (the default) and
# at once (month_slice_persons 0) and compare the pushes' p95/p99 (docs/benchmarks.md, "Opening a
# month at ten times a district").
# With TREND=1 the district admin also asks, 0.5 s into the burst, for the 12-month trend of
# the year before the demo's (months nobody opened: each is counted over every person).
# Usage: [TREND=1] tests/bench/month_open.sh DEMO_DB SLICE_PERSONS [BUILD_DIR] [bench options...]
#   DEMO_DB: made once by `fieldsync demo --data D --scale 400` (about 4 minutes, 2.7 GB);
#   it is copied, never changed. Needs about three times its size free under /tmp.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$1
slice=$2
build=${3:-$here/../../build}
shift $(($# < 3 ? $# : 3))
bin=$build/bin
run=$(mktemp -d /tmp/fieldsync-month-open-XXXXXX)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$run"' EXIT

cp "$src" "$run/fieldsync.db"
# The month of the bench's visits: yesterday in China (UTC+8).
month=$(date -u -d "@$(($(date +%s) + 8 * 3600 - 86400))" +%Y-%m)
python3 - "$run/fieldsync.db" "$month" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("DELETE FROM rollup_months WHERE month = ?", (sys.argv[2],))
# Its person-based figures too, so that opening it again gives the same figures (rollups check).
db.execute("DELETE FROM rollups WHERE month = ? AND (indicator LIKE 'four_ones_%' OR "
           "indicator LIKE 'graduates%')", (sys.argv[2],))
db.commit()
EOF
code=$("$bin/fieldsync" tablets code --data "$run" --username admin --no-qr | sed -n 's/.*admin: //p')
cat "$run/fieldsync.db" >/dev/null # a warm page cache, as on a server that has been running
FIELDSYNC_STARTUP_CHECK=off "$bin/fieldsyncd" --data "$run" --listen 127.0.0.1:0 \
    --port-file "$run/port" --month-slice-persons "$slice" --log-requests false \
    >"$run/server.out" 2>&1 &
server=$!
for _ in $(seq 1 600); do
    [ -f "$run/port" ] && break
    sleep 0.1
done
url=https://127.0.0.1:$(cat "$run/port")
if [ "${TREND:-0}" = 1 ]; then
    curl -sSk -c "$run/cookies" -H 'Content-Type: application/json' \
        -d '{"username":"admin","password":"demo-admin-2026"}' "$url/v1/session" >/dev/null
    year=$(($(date -u +%Y) - 2))
    (
        sleep 0.5
        curl -sSk -b "$run/cookies" -o /dev/null -w "trend of $year: HTTP %{http_code} in %{time_total} s\n" \
            "$url/v1/rollups/trend?from=$year-01&to=$year-12"
    ) &
    reader=$!
fi
"$bin/fieldsync" bench --scenario push-new --server "$url" --admin-code "$code" --insecure \
    --server-pid "$server" "$@"
[ -z "${reader:-}" ] || wait "$reader" # the trend's answer
start=$(date +%s)
while [ "$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(
    'SELECT count(*) FROM rollup_months WHERE month = ?', (sys.argv[2],)).fetchone()[0])" \
    "$run/fieldsync.db" "$month")" != 1 ]; do
    sleep 0.5
    if [ $(($(date +%s) - start)) -gt 300 ]; then
        echo "month $month still not open 300 s after the bench" >&2
        exit 1
    fi
done
echo "month $month open $(($(date +%s) - start)) s after the bench ended"
