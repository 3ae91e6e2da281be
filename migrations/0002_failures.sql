-- rosterd state, schema 2: consecutive failures per user, for quarantine.
--
-- Kept apart from the snapshot because a failed create has no snapshot row. A row is
-- the last failed operation for a user and how many runs in a row it failed with the
-- same record; a confirmed operation removes it.
CREATE TABLE failures (
    provider    TEXT    NOT NULL COLLATE BINARY,
    external_id TEXT    NOT NULL COLLATE BINARY,
    op          TEXT    NOT NULL,
    -- Fingerprint of the record that failed; '' for operations without one.
    fingerprint TEXT    NOT NULL,
    count       INTEGER NOT NULL CHECK (count > 0),
    last_error  TEXT    NOT NULL,
    last_at     TEXT    NOT NULL,
    PRIMARY KEY (provider, external_id)
) STRICT, WITHOUT ROWID;
