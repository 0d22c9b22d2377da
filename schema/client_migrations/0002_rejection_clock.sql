-- 0002: the server's clock when it rejected a mutation, so that a later pull can tell the
-- township head's repair of that record (written by the server under "srv-<head>", with a
-- later clock) from office writes made before the rejection. Empty for rejections stored
-- before this column existed.
ALTER TABLE record_status ADD COLUMN server_clock TEXT NOT NULL DEFAULT '';
