-- 0006: months whose person-based figures are being computed a slice at a time. Computing a month
-- reads every person of the district (5 s of the writer at ten times a full district, 14 s with a
-- cold cache), so fieldsyncd does it in slices of persons between pushes instead of inside the
-- push that opens the month. Persons up to after_rid (their row in records) are counted in the
-- month's figures and kept in step from then on; the rest are counted when the slices reach them.
-- A month moves to rollup_months when its last slice is done.
CREATE TABLE rollup_opening (
    month TEXT PRIMARY KEY,
    after_rid INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID, STRICT;
