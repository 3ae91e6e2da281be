-- rosterd state, schema 2: consecutive failures per user, for quarantine (the twin
-- of migrations/0002_failures.sql).
CREATE TABLE failures (
    provider    TEXT COLLATE "C" NOT NULL,
    external_id TEXT COLLATE "C" NOT NULL,
    op          TEXT    NOT NULL,
    -- Fingerprint of the record that failed; '' for operations without one.
    fingerprint TEXT    NOT NULL,
    count       BIGINT  NOT NULL CHECK (count > 0),
    last_error  TEXT    NOT NULL,
    last_at     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (provider, external_id)
);
