-- rosterd state, schema 6: each provider's last known rate-limit window (the twin of
-- migrations/0006_rate_windows.sql).
CREATE TABLE rate_windows (
    provider      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    base_url      TEXT NOT NULL,
    request_limit BIGINT CHECK (request_limit IS NULL OR request_limit >= 0),
    remaining     BIGINT NOT NULL CHECK (remaining >= 0),
    reset_at      TEXT COLLATE "C" NOT NULL,
    observed_at   TEXT COLLATE "C" NOT NULL
);
