-- 0004: web sessions of township heads and district admins (the page fieldsyncd serves).
-- The session cookie is a bearer secret like a device token: only its SHA-256 is stored. The
-- CSRF token is not a credential by itself (it is useless without the cookie) and is stored as
-- it is so that GET /v1/session can hand it back to a reloaded page.
CREATE TABLE web_sessions (
    cookie_hash TEXT PRIMARY KEY,      -- SHA-256 hex of the fs_session cookie value
    username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,       -- absolute end (created + session_max_s)
    last_seen_ms INTEGER NOT NULL      -- idle expiry: last_seen + session_idle_s
) WITHOUT ROWID, STRICT;
CREATE INDEX web_sessions_user ON web_sessions(username);
CREATE INDEX web_sessions_expires ON web_sessions(expires_ms);
