-- 0001: the tablet replica. The server-confirmed state of each record, and the outbox of local
-- mutations not yet acknowledged. The local view is the confirmed state with the outbox on top.

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value ANY
) WITHOUT ROWID, STRICT;

CREATE TABLE records (
    id BLOB PRIMARY KEY,
    collection TEXT NOT NULL,
    fields TEXT NOT NULL,   -- JSON object: field -> value, as the server last sent it
    clocks TEXT NOT NULL,   -- JSON object: field -> clock text
    deleted INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Local mutations, numbered 1, 2, 3, … per device; removed when the server acknowledges them.
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY,
    collection TEXT NOT NULL,
    id BLOB NOT NULL,
    fields TEXT NOT NULL,   -- JSON object: field -> {"value", "clock", "base"}
    created_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_id ON outbox(id, seq);

-- What the server said about this tablet's records: rejections (with the message to show) and
-- fields whose value lost a concurrent edit and awaits the township head.
CREATE TABLE record_status (
    id BLOB NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('rejected', 'conflict')),
    field TEXT NOT NULL DEFAULT '',
    code TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    mutation_seq INTEGER NOT NULL,
    PRIMARY KEY (id, kind, field)
) WITHOUT ROWID, STRICT;
