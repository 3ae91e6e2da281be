-- rosterd state, schema 4: what a SCIM service turned out not to do (its quirks).
--
-- One row per provider and quirk (patch_unusable, multi_valued_merge,
-- filter_unusable, bulk_unusable), with what showed it. The digest is of the
-- provider's config (base URL and feature settings) when it was learned: a quirk
-- whose digest no longer matches is not applied, so a changed config revisits it.
CREATE TABLE scim_quirks (
    provider      TEXT NOT NULL COLLATE BINARY,
    quirk         TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    detail        TEXT NOT NULL,
    detected_at   TEXT NOT NULL,
    PRIMARY KEY (provider, quirk)
) STRICT, WITHOUT ROWID;
