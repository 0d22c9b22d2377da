#!/usr/bin/env bash
# Prints every figure docs/benchmarks.md quotes, in its order: the machine, all scenarios (with a
# perf profile of the server for each), the growth series, and the in-process micro-benchmarks.
# Usage: tests/bench/refresh.sh [BUILD_DIR] > bench-results.txt   (about 10-20 minutes)
# Needs build/bin/fieldsync, fieldsyncd and engine_bench (cmake --build build --target fieldsync
# fieldsyncd engine_bench) and, for the profiles, perf (apt-get install linux-perf).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
bin=$build/bin
out=$(mktemp -d /tmp/fieldsync-refresh-XXXXXX)

echo "== machine"
echo "cores: $(nproc)"
grep -m1 'model name' /proc/cpuinfo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"

profile=()
if perf record -q -o "$out/probe.data" true >/dev/null 2>&1; then
    profile=(--profile "$out/profiles")
else
    echo "(perf not usable: no profiles; apt-get install linux-perf)"
fi

echo
echo "== all scenarios, three runs: $bin/fieldsync bench --json (medians by tests/bench/medians.py)"
for i in 1 2 3; do
    "$bin/fieldsync" bench --json >"$out/run$i.json"
done
if command -v python3 >/dev/null; then
    python3 "$here/medians.py" "$out"/run*.json
else
    cat "$out"/run*.json
fi

echo
echo "== all scenarios, profiled: $bin/fieldsync bench ${profile[*]}"
"$bin/fieldsync" bench "${profile[@]}"

echo
echo "== day-end, all 256 pushes at the same moment: $bin/fieldsync bench --scenario day-end --window 0"
"$bin/fieldsync" bench --scenario day-end --window 0

if [ ${#profile[@]} -gt 0 ]; then
    for f in "$out"/profiles/*.perf.data; do
        echo
        "$here/profile_summary.sh" "$f" 30
    done
fi

echo
echo "== growth: $bin/fieldsync bench --scenario initial-pull --records 10k,100k,1m --scale 0"
"$bin/fieldsync" bench --scenario initial-pull --records 10k,100k,1m --scale 0
echo
echo "== growth: $bin/fieldsync bench --scenario push-new --records 10k,100k,1m --scale 0"
"$bin/fieldsync" bench --scenario push-new --records 10k,100k,1m --scale 0

echo
echo "== micro-benchmarks: $bin/engine_bench"
"$bin/engine_bench" 2>/dev/null
if [ -x "$bin/district_bench" ]; then
    echo
    echo "== micro-benchmarks: $bin/district_bench"
    "$bin/district_bench" 2>/dev/null
fi
rm -rf "$out"
