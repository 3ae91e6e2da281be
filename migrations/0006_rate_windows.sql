-- rosterd state, schema 6: each provider's last known rate-limit window, so that the
-- next process (a daemon restart, the next CronJob run, a rerun after a crash) does
-- not send into a window an earlier one spent.
--
-- One row per provider, replaced as the window changes. The base URL is part of what
-- the window belongs to: a row for another URL is not used (and is replaced). Times
-- are absolute UTC; a row whose reset has passed is ignored.
CREATE TABLE rate_windows (
    provider      TEXT NOT NULL PRIMARY KEY COLLATE BINARY,
    base_url      TEXT NOT NULL,
    request_limit INTEGER CHECK (request_limit IS NULL OR request_limit >= 0),
    remaining     INTEGER NOT NULL CHECK (remaining >= 0),
    reset_at      TEXT NOT NULL,
    observed_at   TEXT NOT NULL
) STRICT, WITHOUT ROWID;
