-- rosterd state, schema 5: what `rosterd history` and the audit trail need of the
-- journal (the twin of migrations/0005_history.sql).
ALTER TABLE journal ADD COLUMN fields TEXT CHECK (fields IS NULL OR fields::json IS NOT NULL);
ALTER TABLE journal ADD COLUMN vendor_id TEXT;
ALTER TABLE journal ADD COLUMN outcome TEXT
    CHECK (outcome IS NULL OR outcome IN ('done', 'manual', 'failed', 'deferred'));

CREATE INDEX journal_by_key ON journal (external_id);
CREATE INDEX journal_by_created ON journal (created_at);
