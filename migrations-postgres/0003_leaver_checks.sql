-- rosterd state, schema 3: leavers already looked for at a vendor (the twin of
-- migrations/0003_leaver_checks.sql).
CREATE TABLE leaver_checks (
    provider    TEXT COLLATE "C" NOT NULL,
    external_id TEXT COLLATE "C" NOT NULL,
    -- 'absent': the vendor has no account; 'inactive': it has one, already disabled.
    outcome     TEXT NOT NULL CHECK (outcome IN ('absent', 'inactive')),
    checked_at  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (provider, external_id)
);
