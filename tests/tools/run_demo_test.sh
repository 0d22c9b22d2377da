#!/usr/bin/env bash
# The README's main command: tools/run ends in tools/lib/run-demo.sh, which creates the demo
# district on a fresh data folder, adds the demo logins and an enrolment code, and runs
# fieldsyncd. Checked here on a fresh folder and then again on the same folder (a second start
# must not trip over what the first one made): the server answers over TLS with the generated
# certificate, the three demo logins exist, and SIGINT stops it cleanly.
#   run_demo_test.sh BIN_DIR SOURCE_ROOT
set -euo pipefail
bin=$1
root=$2
dir=$(mktemp -d /tmp/fieldsync-run-demo-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

start_and_check() { # attempt
    rm -f "$dir/port"
    FIELDSYNC_BIN_DIR=$bin FIELDSYNC_DEMO_DIR=$dir/demo FIELDSYNC_LISTEN=127.0.0.1:0 \
        FIELDSYNC_PORT_FILE=$dir/port "$root/tools/lib/run-demo.sh" >"$dir/run$1.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do # up to 5 minutes (a sanitizer build is slow), not a speed check
        [ -s "$dir/port" ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "run-demo.sh (start $1) exited before listening:" >&2
            cat "$dir/run$1.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    [ -s "$dir/port" ] || { echo "start $1: no port after 5 minutes" >&2; cat "$dir/run$1.log" >&2; exit 1; }
    local port health
    port=$(cat "$dir/port")
    health=$(curl -sS --cacert "$dir/demo/dev-cert.pem" "https://127.0.0.1:$port/v1/healthz")
    case "$health" in
    *'"status":"ok"'*) ;;
    *) echo "start $1: healthz answered: $health" >&2; exit 1 ;;
    esac
    local users
    users=$("$bin/fieldsync" users list --data "$dir/demo")
    for u in admin head worker; do
        grep -q "^$u " <<<"$users" || { echo "start $1: no demo login $u" >&2; exit 1; }
    done
    grep -q "enrolment code\|Logins" "$dir/run$1.log" || { echo "start $1: no instructions printed" >&2; cat "$dir/run$1.log" >&2; exit 1; }
    kill -INT "$pid"
    local rc=0
    wait "$pid" || rc=$?
    pid=
    [ "$rc" -eq 0 ] || { echo "start $1: fieldsyncd exited with $rc after SIGINT" >&2; cat "$dir/run$1.log" >&2; exit 1; }
}

start_and_check 1
start_and_check 2
echo "run-demo: fresh folder and second start both served"
