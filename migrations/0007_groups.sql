-- rosterd state, schema 7: SCIM groups and memberships (`groups:` in a provider).
--
-- Plain SQL (no STRICT, no WITHOUT ROWID) so that the PostgreSQL backend can take
-- it as it is. Booleans are 0 / 1 integers; times are RFC 3339 text in UTC.
--
-- One row per group rosterd manages at a provider, by the name the `groups:`
-- template gives: the server's id for it, its displayName there, and whether
-- rosterd created it (only then may `on_group_empty: delete` delete it; an adopted
-- group is never deleted).
CREATE TABLE scim_groups (
    provider     TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    group_id     TEXT    NOT NULL,
    display_name TEXT    NOT NULL,
    created      INTEGER NOT NULL CHECK (created IN (0, 1)),
    confirmed_at TEXT    NOT NULL,
    PRIMARY KEY (provider, name)
);

-- One row per confirmed membership of a source user in such a group: the member's
-- id at the server when it was confirmed, and whether rosterd added it (only then may
-- rosterd remove it; a membership the group already had when it was adopted is kept).
CREATE TABLE scim_group_members (
    provider     TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    member_id    TEXT    NOT NULL,
    added        INTEGER NOT NULL CHECK (added IN (0, 1)),
    confirmed_at TEXT    NOT NULL,
    PRIMARY KEY (provider, name, external_id)
);

-- Every group request (create or adopt, add members, remove members, delete),
-- written before it is sent and finished with its snapshot change in the same
-- transaction. One left in flight by a crash is settled by the next plan: group
-- operations are derived from the snapshot again, and each is safe to repeat (a
-- create adopts the group by displayName, an add of a member already there and a
-- remove of one already gone change nothing).
CREATE TABLE group_journal (
    id          INTEGER NOT NULL PRIMARY KEY,
    run_id      TEXT    NOT NULL,
    provider    TEXT    NOT NULL,
    op          TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('in_flight', 'done', 'failed')),
    error       TEXT,
    created_at  TEXT    NOT NULL,
    finished_at TEXT
);

CREATE INDEX group_journal_in_flight ON group_journal (status);
