-- 0001: the sync core. Records with per-field clocks, the change sequence, per-device mutation
-- numbers, history (audit trail), conflicts and quarantine.

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value ANY
) WITHOUT ROWID, STRICT;

-- Administrative divisions of the district: district (6 digits), townships (9), villages (12).
CREATE TABLE divisions (
    code TEXT PRIMARY KEY,
    level INTEGER NOT NULL CHECK (level IN (6, 9, 12)),
    name TEXT NOT NULL,
    parent TEXT
) WITHOUT ROWID, STRICT;

-- One row per record. rid is assigned in insertion order so inserts append to the table's
-- B-tree; the 16-byte UUIDv7 id has its own (time-ordered, so also appending) index.
-- seq is the change sequence of the record's latest accepted change: pulls read by seq.
CREATE TABLE records (
    rid INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    collection TEXT NOT NULL,
    township TEXT NOT NULL,
    village TEXT,
    seq INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    fields TEXT NOT NULL,          -- JSON object: field -> value
    clocks TEXT NOT NULL,          -- JSON object: field -> clock text
    created_ms INTEGER NOT NULL,   -- server time of the first accepted change
    updated_ms INTEGER NOT NULL,   -- server time of the latest accepted change
    created_by TEXT NOT NULL,      -- user who created it
    created_device TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX records_id ON records(id);
CREATE UNIQUE INDEX records_seq ON records(seq);
CREATE INDEX records_scope ON records(township, seq);

-- Per-device state: the last applied mutation number is written in the same transaction as the
-- mutation's effects, which is what makes pushes exactly-once.
CREATE TABLE devices (
    device TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    last_push_ms INTEGER
) WITHOUT ROWID, STRICT;

-- Acknowledgements that were not a plain "applied" (rejections, conflicts, restamps), so that a
-- repeated mutation is answered exactly as the first time. Plain acks are not stored.
CREATE TABLE mutation_acks (
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ack TEXT NOT NULL,
    PRIMARY KEY (device, seq)
) WITHOUT ROWID, STRICT;

-- Every accepted change: who, which device, when, and per field [old, new].
CREATE TABLE history (
    hid INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    rid INTEGER NOT NULL,
    user TEXT NOT NULL,
    device TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    mutation_seq INTEGER,          -- the device's mutation number, null for server-made changes
    changes TEXT NOT NULL          -- JSON object: field -> [old, new]
) STRICT;
CREATE INDEX history_rid ON history(rid, seq);

-- Concurrent edits: the winning value stays in the record, the losing one is kept here until a
-- township head resolves it.
CREATE TABLE conflicts (
    cid INTEGER PRIMARY KEY,
    rid INTEGER NOT NULL,
    collection TEXT NOT NULL,
    township TEXT NOT NULL,
    village TEXT,
    field TEXT NOT NULL,
    winner_value TEXT NOT NULL,
    winner_clock TEXT NOT NULL,
    winner_device TEXT NOT NULL,
    winner_user TEXT NOT NULL,
    loser_value TEXT NOT NULL,
    loser_clock TEXT NOT NULL,
    loser_device TEXT NOT NULL,
    loser_user TEXT NOT NULL,
    opened_seq INTEGER NOT NULL,
    opened_ms INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    resolved_by TEXT,
    resolved_ms INTEGER,
    resolution TEXT
) STRICT;
CREATE INDEX conflicts_scope ON conflicts(township, status);
CREATE INDEX conflicts_rid ON conflicts(rid);

-- Mutations that failed validation, with their full payload for review and repair.
CREATE TABLE quarantine (
    qid INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    user TEXT NOT NULL,
    mutation_seq INTEGER NOT NULL,
    collection TEXT NOT NULL,
    record_id TEXT NOT NULL,
    township TEXT,                 -- as claimed by the payload, when readable
    payload TEXT NOT NULL,
    code TEXT NOT NULL,
    field TEXT NOT NULL,
    message_zh TEXT NOT NULL,
    message_en TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resubmitted', 'dismissed')),
    handled_by TEXT,
    handled_ms INTEGER,
    note TEXT
) STRICT;
CREATE INDEX quarantine_scope ON quarantine(township, status);
