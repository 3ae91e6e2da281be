-- rosterd state, schema 1.
--
-- Times are RFC 3339 text in UTC with microseconds ("2024-05-01T12:00:00.000000Z"),
-- so text order is time order. Text columns use the BINARY collation so that
-- `ORDER BY external_id` is byte order, the order of Rust's `str`, which the planner
-- merges in.

-- Marks the file as ours: `Store::open` refuses to migrate a database without it.
CREATE TABLE rosterd_meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

INSERT INTO rosterd_meta (key, value) VALUES ('application', 'rosterd');

-- What each provider holds, per source user, as last confirmed by the vendor.
CREATE TABLE snapshot (
    provider     TEXT    NOT NULL COLLATE BINARY,
    external_id  TEXT    NOT NULL COLLATE BINARY,
    vendor_id    TEXT,
    email        TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL CHECK (length(fingerprint) = 32),
    state        TEXT    NOT NULL CHECK (state IN ('active', 'disabled', 'manual')),
    record       TEXT    NOT NULL CHECK (json_valid(record)),
    confirmed_at TEXT    NOT NULL,
    last_error   TEXT,
    failures     INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    PRIMARY KEY (provider, external_id)
) STRICT, WITHOUT ROWID;

-- Every operation, written before it is sent; rows left 'in_flight' after a crash are
-- resolved before the next plan is made.
CREATE TABLE journal (
    id          INTEGER NOT NULL PRIMARY KEY,
    run_id      TEXT    NOT NULL,
    provider    TEXT    NOT NULL,
    op          TEXT    NOT NULL,
    external_id TEXT    NOT NULL,
    payload     TEXT    NOT NULL CHECK (json_valid(payload)),
    status      TEXT    NOT NULL CHECK (status IN ('in_flight', 'done', 'failed')),
    error       TEXT,
    created_at  TEXT    NOT NULL,
    finished_at TEXT
) STRICT;

-- Recovery on start reads only the unfinished entries; keep that cheap however long
-- the journal grows.
CREATE INDEX journal_in_flight ON journal (id) WHERE status = 'in_flight';
CREATE INDEX journal_by_run ON journal (run_id);

-- One row per sync pass.
CREATE TABLE runs (
    run_id      TEXT NOT NULL PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    mode        TEXT NOT NULL CHECK (mode IN ('dry_run', 'apply')),
    outcome     TEXT,
    summary     TEXT CHECK (summary IS NULL OR json_valid(summary))
) STRICT;

CREATE INDEX runs_by_start ON runs (started_at);
