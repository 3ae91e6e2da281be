-- rosterd state, schema 4: what a SCIM service turned out not to do (the twin of
-- migrations/0004_scim_quirks.sql).
CREATE TABLE scim_quirks (
    provider      TEXT COLLATE "C" NOT NULL,
    quirk         TEXT COLLATE "C" NOT NULL,
    config_digest TEXT NOT NULL,
    detail        TEXT NOT NULL,
    detected_at   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (provider, quirk)
);
