#!/usr/bin/env bash
# What a district admin's spreadsheet of a month says upward must be complete: `fieldsync export
# rollups` of a month whose persons are not counted yet (never opened, or still being counted by
# fieldsyncd between pushes) writes nothing and says why, unless --incomplete; `rollups show`
# shows it with the same warning; a complete month exports silently.
#   rollups_cli_test.sh BIN_DIR
set -euo pipefail
bin=$1
dir=$(mktemp -d /tmp/fieldsync-rollups-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "rollups_cli: $*" >&2; exit 1; }

"$bin/fieldsync" demo --data "$dir/d" --until 2026-10-31 >"$dir/demo.log" 2>&1 || {
    cat "$dir/demo.log" >&2
    fail "demo failed"
}

# October has records: opened by the demo's pushes, complete.
"$bin/fieldsync" export rollups --data "$dir/d" --month 2026-10 --format csv \
    --out "$dir/oct.csv" 2>"$dir/oct.err" || fail "export of a complete month failed: $(cat "$dir/oct.err")"
[ -s "$dir/oct.csv" ] || fail "no file for a complete month"
[ ! -s "$dir/oct.err" ] || fail "warning for a complete month: $(cat "$dir/oct.err")"

# December: no record, never opened.
rc=0
"$bin/fieldsync" export rollups --data "$dir/d" --month 2026-12 --format csv \
    --out "$dir/dec.csv" 2>"$dir/dec.err" || rc=$?
[ "$rc" -eq 1 ] || fail "export of an incomplete month exited $rc, not 1"
[ ! -e "$dir/dec.csv" ] || fail "a file was written for an incomplete month"
grep -q "not complete" "$dir/dec.err" || fail "no reason given: $(cat "$dir/dec.err")"
grep -q -- "--incomplete" "$dir/dec.err" || fail "the way out is not named: $(cat "$dir/dec.err")"

"$bin/fieldsync" export rollups --data "$dir/d" --month 2026-12 --format csv \
    --out "$dir/dec.csv" --incomplete 2>"$dir/dec2.err" || fail "--incomplete export failed"
[ -s "$dir/dec.csv" ] || fail "--incomplete wrote no file"
grep -q "not complete" "$dir/dec2.err" || fail "--incomplete export without the warning"

"$bin/fieldsync" rollups show --data "$dir/d" --month 2026-12 >"$dir/show.out" 2>"$dir/show.err" ||
    fail "rollups show of an incomplete month failed"
grep -q "2026-12" "$dir/show.out" || fail "rollups show printed no table"
grep -q "not complete" "$dir/show.err" || fail "rollups show without the warning"
echo "rollups_cli: complete month exported, incomplete month refused, shown with a warning"
