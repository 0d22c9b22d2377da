-- 0003: review and rollups. Monthly indicators per township maintained incrementally by the
-- writer (sync/rollups), approvals with revisions, and the access log of revealed personal data.

-- Counters: one row per township, month ("YYYY-MM"; "" for township-wide live figures such as
-- open conflicts) and indicator. The district figure is the sum over townships.
CREATE TABLE rollups (
    township TEXT NOT NULL,
    month TEXT NOT NULL,
    indicator TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (township, month, indicator)
) WITHOUT ROWID, STRICT;

-- Reference counts behind distinct-count indicators (persons visited, households flagged): a
-- key counts once however many records name it.
CREATE TABLE rollup_keys (
    township TEXT NOT NULL,
    month TEXT NOT NULL,
    indicator TEXT NOT NULL,
    key TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (township, month, indicator, key)
) WITHOUT ROWID, STRICT;

-- What happened to a person and in which month, derived from visits, registrations and
-- services: the inputs of the "four ones" and the graduates' ledger.
CREATE TABLE person_events (
    record TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('verified', 'assessed', 'registered', 'served')),
    person TEXT NOT NULL,
    month TEXT NOT NULL,
    PRIMARY KEY (record, kind)
) WITHOUT ROWID, STRICT;
CREATE INDEX person_events_person ON person_events(person);

-- Months whose person-based indicators are maintained. A month is opened (computed once over
-- all persons) when its first record arrives or its figures are asked for.
CREATE TABLE rollup_months (
    month TEXT PRIMARY KEY
) WITHOUT ROWID, STRICT;

-- Approvals of a township's month. Revision 1 is the first approval; a later change to an
-- approved month's figures opens the next revision (approved_ms NULL) holding the difference,
-- until the township head approves it.
CREATE TABLE month_revisions (
    township TEXT NOT NULL,
    month TEXT NOT NULL,
    revision INTEGER NOT NULL,
    figures TEXT NOT NULL,        -- JSON {indicator: value} at approval (or at the change)
    changes TEXT,                 -- JSON {indicator: [approved, now]} for a changed revision
    created_ms INTEGER NOT NULL,
    approved_by TEXT,
    approved_ms INTEGER,
    PRIMARY KEY (township, month, revision)
) WITHOUT ROWID, STRICT;

-- Every reveal of a masked personal value (ID or phone number) and every export of unmasked
-- data: who, what, when. District admins read it.
CREATE TABLE access_log (
    id INTEGER PRIMARY KEY,
    user TEXT NOT NULL,
    action TEXT NOT NULL,          -- "reveal", "export"
    record_id TEXT,
    field TEXT,
    detail TEXT,
    at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX access_log_time ON access_log(at_ms);
