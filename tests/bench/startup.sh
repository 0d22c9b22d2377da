#!/usr/bin/env bash
# Seconds from starting fieldsyncd to its listening, with the page cache dropped first (as after
# a reboot) or, with WARM=1, as it is. The start-up check reads the whole database
# (docs/reliability.md, "Faults"), so on a large district this is what a restart costs.
# Usage: [WARM=1] tests/bench/startup.sh DATA_DIR [FIELDSYNCD] [RUNS]
#   DATA_DIR: a stopped server's data folder (e.g. `fieldsync demo --data D --scale 400`); the
#   server starts and stops on it, so it is opened and closed like any restart.
#   Dropping the page cache needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data=$1
bin=${2:-$here/../../build/bin/fieldsyncd}
runs=${3:-2}
port_file=$(mktemp /tmp/fieldsync-startup-port-XXXXXX)
log=$(mktemp /tmp/fieldsync-startup-log-XXXXXX)
trap 'kill "$server" 2>/dev/null || true; rm -f "$port_file" "$log"' EXIT
for _ in $(seq "$runs"); do
    : >"$port_file"
    if [ -z "${WARM:-}" ]; then
        sync
        echo 3 >/proc/sys/vm/drop_caches
    fi
    start=$(date +%s%N)
    "$bin" --data "$data" --listen 127.0.0.1:0 --port-file "$port_file" >"$log" 2>&1 &
    server=$!
    until [ -s "$port_file" ]; do
        kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
        sleep 0.05
    done
    end=$(date +%s%N)
    echo "listening after $(((end - start) / 1000000)) ms ($([ -n "${WARM:-}" ] && echo warm || echo cold) cache)"
    kill -TERM "$server"
    wait "$server" || true
done
