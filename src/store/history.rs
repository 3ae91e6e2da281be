//! The record of what rosterd did, for `rosterd history`: journal entries joined with
//! the pass that sent them, and the pruning that keeps the record from growing forever
//! (`state_retention_days`).
//!
//! Both only read or delete finished rows: an entry still in flight is what crash
//! recovery resolves, and is never pruned.

use chrono::{DateTime, Utc};
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};

use super::backend::{Begin, Cols, Sql};
use super::{parse_time, query_err, time_text, OpKind, Store, StoreError};

/// Which journal entries to read; every part narrows the answer.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// Only these source keys (`None`: any; an empty list matches nothing).
    pub keys: Option<Vec<String>>,
    pub provider: Option<String>,
    /// Sent at or after.
    pub since: Option<DateTime<Utc>>,
    /// Sent before.
    pub until: Option<DateTime<Utc>>,
}

/// One operation as the history shows it: no field values, no email.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    /// When it was written to the journal, just before it was sent.
    pub sent_at: DateTime<Utc>,
    /// When the vendor's answer was recorded (`None` while in flight).
    pub finished_at: Option<DateTime<Utc>>,
    pub run_id: String,
    /// How the pass ended (`ok`, `failed`, …), or `unfinished` for a pass that is
    /// running or was interrupted, or `pruned` when its run row is gone.
    pub run_outcome: String,
    pub provider: String,
    pub external_id: String,
    pub op: OpKind,
    /// Names of the fields it changed; `None` for entries written before rosterd
    /// recorded them (schema 5).
    pub fields: Option<Vec<String>>,
    /// `done`, `manual`, `failed`, `deferred`, or `in_flight` (outcome not known yet).
    pub outcome: String,
    pub vendor_id: Option<String>,
    /// The vendor's (or transport's) message, for a failed operation.
    pub error: Option<String>,
}

/// What [`Store::prune_before`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub journal: u64,
    pub runs: u64,
}

/// The columns [`history_entry`] reads, by position.
macro_rules! history_select {
    () => {
        "SELECT j.id, j.created_at, j.finished_at, j.run_id, r.run_id, r.outcome, \
                j.provider, j.external_id, j.op, j.fields, j.status, j.outcome, \
                j.vendor_id, j.error \
         FROM journal j LEFT JOIN runs r ON r.run_id = j.run_id "
    };
}

/// The history of the keys in the JSON array `$1`.
const HISTORY_OF_KEYS: Sql = Sql {
    sqlite: concat!(
        history_select!(),
        "WHERE j.external_id IN (SELECT value FROM json_each($1)) \
           AND ($2 IS NULL OR j.provider = $2) \
           AND j.created_at >= $3 AND j.created_at < $4 \
         ORDER BY j.created_at, j.id"
    ),
    postgres: concat!(
        history_select!(),
        "WHERE j.external_id IN (SELECT jsonb_array_elements_text($1::jsonb)) \
           AND ($2::text IS NULL OR j.provider = $2) \
           AND j.created_at >= $3 AND j.created_at < $4 \
         ORDER BY j.created_at, j.id"
    ),
};

/// The history of every key (`$1` is NULL).
const HISTORY_OF_ALL: Sql = Sql {
    sqlite: concat!(
        history_select!(),
        "WHERE $1 IS NULL \
           AND ($2 IS NULL OR j.provider = $2) \
           AND j.created_at >= $3 AND j.created_at < $4 \
         ORDER BY j.created_at, j.id"
    ),
    postgres: concat!(
        history_select!(),
        "WHERE $1::text IS NULL \
           AND ($2::text IS NULL OR j.provider = $2) \
           AND j.created_at >= $3 AND j.created_at < $4 \
         ORDER BY j.created_at, j.id"
    ),
};

/// Keys that ever had an email, compared without case (ASCII, as SQLite's NOCASE).
const KEYS_WITH_EMAIL: Sql = Sql {
    sqlite: "SELECT external_id FROM snapshot WHERE email = $1 COLLATE NOCASE \
             UNION \
             SELECT external_id FROM journal \
             WHERE json_extract(payload, '$.email') = $1 COLLATE NOCASE \
             ORDER BY 1",
    postgres: "SELECT external_id FROM snapshot \
               WHERE translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') \
                   = translate($1, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') \
               UNION \
               SELECT external_id FROM journal \
               WHERE translate(payload::jsonb ->> 'email', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') \
                   = translate($1, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') \
               ORDER BY 1",
};

impl Store {
    /// The journal entries `filter` selects, oldest first, all at once (see
    /// [`Store::history_stream`] for answers that may be large).
    pub async fn history(&self, filter: &HistoryFilter) -> Result<Vec<HistoryEntry>, StoreError> {
        self.history_stream(filter).try_collect().await
    }

    /// The journal entries `filter` selects, oldest first, read as they are consumed:
    /// a million-row answer is never held in memory at once.
    pub fn history_stream<'a>(
        &'a self,
        filter: &HistoryFilter,
    ) -> BoxStream<'a, Result<HistoryEntry, StoreError>> {
        // Two static queries rather than one with `?1 IS NULL OR …`: SQLite plans a
        // statement before it sees the values, and would scan the whole journal for a
        // key instead of using `journal_by_key`. An absent time bound is one no stored
        // time passes: '' sorts before and '~' after every RFC 3339 text.
        let since = filter.since.map_or_else(String::new, time_text);
        let until = filter.until.map_or_else(|| "~".to_string(), time_text);
        let keys = match filter.keys.as_deref() {
            Some([]) => return stream::empty().boxed(),
            // One JSON array for any number of keys: they are the source's, untrusted
            // text, so bound, never spliced into the SQL.
            Some(keys) => Some(serde_json::Value::from(keys.to_vec()).to_string()),
            None => None,
        };
        let provider = filter.provider.clone();
        with_pool!(self, |pool, dialect| {
            let sql = match keys {
                Some(_) => dialect.pick(&HISTORY_OF_KEYS),
                // `$1 IS NULL` (bound to NULL) keeps the other parameters' numbers.
                None => dialect.pick(&HISTORY_OF_ALL),
            };
            sqlx::query(sql)
                .bind(keys)
                .bind(provider)
                .bind(since)
                .bind(until)
                .fetch(pool)
                .map(|row| {
                    row.map_err(query_err("read the history"))
                        .and_then(|r| history_entry(&r))
                })
                .boxed()
        })
    }

    /// The source keys that ever had `email` (compared without case): in the snapshot
    /// now, or in any operation the journal still holds — so a person's past is found
    /// after their email changed, under the old address or the new one.
    pub async fn keys_with_email(&self, email: &str) -> Result<Vec<String>, StoreError> {
        with_pool!(self, |pool, dialect| sqlx::query_scalar(
            dialect.pick(&KEYS_WITH_EMAIL)
        )
        .bind(email)
        .fetch_all(pool)
        .await)
        .map_err(query_err("look up an email in the history"))
    }

    /// Applies `state_retention_days` at `now`: prunes what is older than that many
    /// days ([`Store::prune_before`]); 0 keeps everything.
    pub async fn prune_history(
        &self,
        retention_days: u32,
        now: DateTime<Utc>,
    ) -> Result<Pruned, StoreError> {
        let cutoff = chrono::TimeDelta::try_days(i64::from(retention_days))
            .and_then(|age| now.checked_sub_signed(age));
        match cutoff {
            Some(cutoff) if retention_days > 0 => self.prune_before(cutoff).await,
            // 0, or further back than any time rosterd can have written.
            _ => Ok(Pruned::default()),
        }
    }

    /// Deletes finished journal entries and runs older than `cutoff`, in one
    /// transaction. Kept whatever their age: entries in flight (crash recovery
    /// resolves them), the runs those belong to, and the newest successful run (when
    /// rosterd last succeeded). The snapshot and the failure counts are never touched.
    pub async fn prune_before(&self, cutoff: DateTime<Utc>) -> Result<Pruned, StoreError> {
        const ACTION: &str = "prune old history";
        let cutoff = time_text(cutoff);
        let (journal, runs) = with_pool!(self, async |pool| {
            let mut tx = pool.begin_write().await?;
            let journal = sqlx::query(
                "DELETE FROM journal WHERE status != 'in_flight' \
                 AND coalesce(finished_at, created_at) < $1",
            )
            .bind(&cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let runs = sqlx::query(
                "DELETE FROM runs WHERE coalesce(finished_at, started_at) < $1 \
                 AND run_id NOT IN (SELECT run_id FROM journal WHERE status = 'in_flight') \
                 AND run_id IS DISTINCT FROM (SELECT run_id FROM runs WHERE outcome = 'ok' \
                                    ORDER BY started_at DESC, rowid DESC LIMIT 1)",
            )
            .bind(&cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await.map(|()| (journal, runs))
        })
        .map_err(query_err(ACTION))?;
        Ok(Pruned { journal, runs })
    }
}

fn history_entry(row: &impl Cols) -> Result<HistoryEntry, StoreError> {
    let id = row.int(0).map_err(query_err("read the history"))?;
    let corrupt = |message: String| StoreError::CorruptRow {
        table: "journal",
        key: id.to_string(),
        message,
    };
    let get_err = |e: sqlx::Error| corrupt(e.to_string());
    let sent_at = row.text(1).map_err(get_err)?;
    let finished_at = row.opt_text(2).map_err(get_err)?;
    let run_found = row.opt_text(4).map_err(get_err)?;
    let run_outcome = row.opt_text(5).map_err(get_err)?.map(str::to_owned);
    let op = row.text(8).map_err(get_err)?;
    let fields = row.opt_text(9).map_err(get_err)?;
    let status = row.text(10).map_err(get_err)?.to_owned();
    let outcome = row.opt_text(11).map_err(get_err)?.map(str::to_owned);
    let fields = fields
        .map(serde_json::from_str::<Vec<String>>)
        .transpose()
        .map_err(|e| corrupt(format!("bad field list: {e}")))?;
    Ok(HistoryEntry {
        sent_at: parse_time(sent_at).map_err(corrupt)?,
        finished_at: finished_at.map(parse_time).transpose().map_err(corrupt)?,
        run_id: row.text(3).map_err(get_err)?.to_owned(),
        run_outcome: match (run_found, run_outcome) {
            (None, _) => "pruned".into(),
            (Some(_), None) => "unfinished".into(),
            (Some(_), Some(o)) => o,
        },
        provider: row.text(6).map_err(get_err)?.to_owned(),
        external_id: row.text(7).map_err(get_err)?.to_owned(),
        op: OpKind::parse(op).ok_or_else(|| corrupt(format!("unknown operation {op:?}")))?,
        fields,
        // Entries from before schema 5 have no outcome: their status says it.
        outcome: outcome.unwrap_or(status),
        vendor_id: row.opt_text(12).map_err(get_err)?.map(str::to_owned),
        error: row.opt_text(13).map_err(get_err)?.map(str::to_owned),
    })
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
