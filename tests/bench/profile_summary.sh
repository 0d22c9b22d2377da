#!/usr/bin/env bash
# Summarises a `fieldsync bench --profile DIR` recording: where the server's CPU went, by
# library (TLS = libcrypto/libssl, storage = libsqlite3 + kernel I/O, JSON = libboost_json and
# fieldsync's protocol code, allocation = libc malloc), by thread, and the top functions.
# Usage: tests/bench/profile_summary.sh DIR/push-new.perf.data [TOP]
set -euo pipefail
data=$1
top=${2:-25}
clean() { grep -v '^#' | grep -v '^$' | sed -e 's/ \+$//' | cut -c1-110; }
echo "== $data: share of server CPU samples by library"
perf report -i "$data" --no-children --sort dso --stdio -g none 2>/dev/null | clean | head -12
echo "== by thread"
perf report -i "$data" --no-children --sort pid --stdio -g none 2>/dev/null | clean | head -8
echo "== top $top functions"
perf report -i "$data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | clean |
    head -"$top"
