-- rosterd state, schema 3: leavers already looked for at a vendor.
--
-- A person who left, whom the snapshot has no row for, may still hold an account
-- made before rosterd. Each is looked for once per provider (or, where the vendor
-- cannot look up, disabled by key once): a row here says it was, and what was found,
-- so that the next passes neither look again nor send again.
CREATE TABLE leaver_checks (
    provider    TEXT NOT NULL COLLATE BINARY,
    external_id TEXT NOT NULL COLLATE BINARY,
    -- 'absent': the vendor has no account; 'inactive': it has one, already disabled.
    outcome     TEXT NOT NULL CHECK (outcome IN ('absent', 'inactive')),
    checked_at  TEXT NOT NULL,
    PRIMARY KEY (provider, external_id)
) STRICT, WITHOUT ROWID;
