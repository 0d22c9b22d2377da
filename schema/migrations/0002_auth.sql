-- 0002: users, tablets (devices) and enrolment codes. Secrets are never stored: passwords as
-- PBKDF2-HMAC-SHA256 with a per-user salt, device tokens and enrolment codes as SHA-256 hashes.

-- A person who uses fieldsync. Their scope is where they may read and write:
--   field_worker: a township, optionally some of its villages (JSON array of village codes);
--   township_head: a township; district_admin: the whole district (township empty).
CREATE TABLE users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('field_worker', 'township_head', 'district_admin')),
    township TEXT NOT NULL DEFAULT '',
    villages TEXT NOT NULL DEFAULT '[]',
    password_hash TEXT,                -- "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>"
    disabled INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID, STRICT;

-- The tablets: the sync core's per-device row (0001) gains its credentials. A device row is made
-- when an enrolment code is redeemed; its token is shown once and stored only as a hash.
ALTER TABLE devices ADD COLUMN token_hash TEXT;     -- SHA-256 hex of the bearer token
ALTER TABLE devices ADD COLUMN label TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN enrolled_ms INTEGER;
ALTER TABLE devices ADD COLUMN revoked_ms INTEGER;  -- set: the token is refused (device_revoked)
ALTER TABLE devices ADD COLUMN last_seen_ms INTEGER;
CREATE UNIQUE INDEX devices_token ON devices(token_hash) WHERE token_hash IS NOT NULL;
CREATE INDEX devices_user ON devices(user);

-- One-time enrolment codes: short-lived, stored as SHA-256 of the normalized code.
CREATE TABLE enrolment_codes (
    code_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(username),
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    used_ms INTEGER,                   -- set when redeemed: a code works once
    device TEXT                        -- the device it enrolled
) WITHOUT ROWID, STRICT;
CREATE INDEX enrolment_codes_user ON enrolment_codes(username);
