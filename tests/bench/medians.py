#!/usr/bin/env python3
"""Medians (and ranges) of several `fieldsync bench --json` runs, per scenario.

Usage: tests/bench/medians.py run1.json run2.json run3.json
Wall-clock figures of one run vary by a third on a 2-core VM; docs/benchmarks.md quotes medians.
"""
import json
import statistics
import sys

KEYS = ["records_per_s", "requests_per_s", "p50_ms", "p95_ms", "p99_ms",
        "server_peak_rss_mb", "server_cpu_s", "client_cpu_s", "wall_s"]
DETAILS = ["random_keys_rows_per_s", "single_commit_p50_ms", "single_commit_p99_ms",
           "pull_p50_ms", "pull_p99_ms", "server_rss_mb_without_idle",
           "server_rss_mb_with_idle", "baseline_p99_ms", "push_p99_ms",
           "server_cpu_s_per_100k", "conflicts_in_db"]


def main(paths):
    runs = [json.load(open(p)) for p in paths]
    for r in runs:
        print("machine:", r.get("machine"))
    for scenario in runs[0]["scenarios"]:
        name = scenario["scenario"]
        rows = [s for r in runs for s in r["scenarios"] if s["scenario"] == name]
        print(f"\n{name} ({len(rows)} runs): median [min..max]")
        for key in KEYS + DETAILS:
            vals = [s.get(key, s.get("details", {}).get(key)) for s in rows]
            vals = [v for v in vals if isinstance(v, (int, float))]
            if vals:
                print(f"  {key:28} {statistics.median(vals):12.4g}  [{min(vals):.4g}..{max(vals):.4g}]")
        print("  stored/expected:", [(s.get("stored"), s.get("expected_stored")) for s in rows],
              "meets_target:", [s.get("meets_target") for s in rows])


if __name__ == "__main__":
    main(sys.argv[1:])
