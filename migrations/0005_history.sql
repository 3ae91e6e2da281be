-- rosterd state, schema 5: what `rosterd history` and the audit trail need of the
-- journal beyond what it kept for crash recovery.
--
-- Rows written before this migration have NULL in every new column: their changed
-- fields were not recorded, their outcome is read from `status`, their vendor id
-- is unknown.

-- The names of the fields the operation changed, as a JSON array of strings (never
-- their values: the snapshot holds those, and only the latest).
ALTER TABLE journal ADD COLUMN fields TEXT CHECK (fields IS NULL OR json_valid(fields));
-- The vendor's id for the account once the vendor confirmed the operation.
ALTER TABLE journal ADD COLUMN vendor_id TEXT;
-- How a finished operation ended, finer than `status`: a done operation may have left
-- the account needing a person (`manual`); a failed one may have been the provider's
-- failure as a whole and left for the next pass (`deferred`).
ALTER TABLE journal ADD COLUMN outcome TEXT
    CHECK (outcome IS NULL OR outcome IN ('done', 'manual', 'failed', 'deferred'));

-- `history --user KEY` and `--since` / retention pruning read by key and by time.
CREATE INDEX journal_by_key ON journal (external_id);
CREATE INDEX journal_by_created ON journal (created_at);
