//! The snapshot: what each provider holds per source user, as last confirmed.
//! (Reading a whole provider's snapshot lives in `snapshot_read.rs`.)
//!
//! Rows change only after a vendor confirms an operation, so a crash never records
//! work that was not done.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use super::backend::{placeholders, Begin};
use super::{query_err, time_text, AccountState, Store, StoreError};
use crate::providers::Fingerprint;

/// One confirmed row to write, borrowed from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotUpsert<'a> {
    pub provider: &'a str,
    pub external_id: &'a str,
    pub vendor_id: Option<&'a str>,
    pub email: &'a str,
    pub fingerprint: Fingerprint,
    pub state: AccountState,
    /// The confirmed record as JSON (a `StoredRecord`); must be valid JSON.
    pub record_json: &'a str,
    pub confirmed_at: DateTime<Utc>,
}

// The upsert, in pieces so that `upsert_snapshot_many` can send many rows per
// statement. A confirmed write clears the error and the failure count: the user is
// healthy again.
macro_rules! upsert_head {
    () => {
        "INSERT INTO snapshot \
            (provider, external_id, vendor_id, email, fingerprint, state, record, \
             confirmed_at, last_error, failures) \
         VALUES "
    };
}
macro_rules! upsert_tail {
    () => {
        " ON CONFLICT (provider, external_id) DO UPDATE SET \
            vendor_id = excluded.vendor_id, \
            email = excluded.email, \
            fingerprint = excluded.fingerprint, \
            state = excluded.state, \
            record = excluded.record, \
            confirmed_at = excluded.confirmed_at, \
            last_error = NULL, \
            failures = 0"
    };
}

/// Values bound per row, in the order of [`bind_row!`].
const VALUES_PER_ROW: usize = 8;

pub(super) const UPSERT_ONE: &str = concat!(
    upsert_head!(),
    "($1, $2, $3, $4, $5, $6, $7, $8, NULL, 0)",
    upsert_tail!()
);

/// Rows per statement in `upsert_snapshot_many`: 8 parameters each keeps a statement
/// far under SQLite's limit of 32,766 (and PostgreSQL's of 65,535), and a round trip
/// per few hundred rows instead of per row.
const ROWS_PER_STATEMENT: usize = 250;

/// The upsert for `rows` rows at once (built from the constant pieces only).
fn upsert_sql(rows: usize) -> Arc<str> {
    let mut sql = String::with_capacity(upsert_head!().len() + rows * 48 + upsert_tail!().len());
    sql.push_str(upsert_head!());
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push('(');
        sql.push_str(&placeholders(i * VALUES_PER_ROW + 1, VALUES_PER_ROW));
        sql.push_str(", NULL, 0)");
    }
    sql.push_str(upsert_tail!());
    sql.into()
}

/// Binds one row's eight values to `$query` (either backend's), in the order of
/// [`UPSERT_ONE`]'s placeholders.
macro_rules! bind_row {
    ($query:expr, $row:expr) => {{
        let row: &SnapshotUpsert<'_> = $row;
        $query
            .bind(row.provider)
            .bind(row.external_id)
            // What a vendor answered (its id) and the record: scrubbed like all stored text.
            .bind(row.vendor_id.map(|v| crate::redact::scrub(v).into_owned()))
            .bind(row.email)
            .bind(row.fingerprint.to_string())
            .bind(row.state.as_str())
            .bind(crate::redact::scrub(row.record_json).into_owned())
            .bind(time_text(row.confirmed_at))
    }};
}
pub(super) use bind_row;

impl Store {
    /// How many rows each provider has in each state, sorted by provider then state.
    pub async fn snapshot_counts(&self) -> Result<Vec<(String, AccountState, u64)>, StoreError> {
        const ACTION: &str = "count the snapshot";
        let rows: Vec<(String, String, i64)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT provider, state, count(*) FROM snapshot \
             GROUP BY provider, state ORDER BY provider, state",
        )
        .fetch_all(pool)
        .await)
        .map_err(query_err(ACTION))?;
        let mut counts = Vec::with_capacity(rows.len());
        for (provider, state, count) in rows {
            let state = state.as_str();
            let Some(state) = AccountState::parse(state) else {
                return Err(StoreError::CorruptRow {
                    table: "snapshot",
                    key: provider,
                    message: format!("unknown state {state:?}"),
                });
            };
            counts.push((provider, state, u64::try_from(count).unwrap_or(0)));
        }
        Ok(counts)
    }

    /// Records a confirmed row, clearing its last error and failure count.
    pub async fn upsert_snapshot(&self, row: &SnapshotUpsert<'_>) -> Result<(), StoreError> {
        with_pool!(self, |pool| bind_row!(sqlx::query(UPSERT_ONE), row)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(query_err("write a snapshot row"))
    }

    /// Records many confirmed rows in one transaction: all of them or none.
    pub async fn upsert_snapshot_many(
        &self,
        rows: &[SnapshotUpsert<'_>],
    ) -> Result<(), StoreError> {
        const ACTION: &str = "write snapshot rows";
        // Full chunks share one statement, prepared once and cached on the
        // transaction's connection; only the last, shorter chunk needs its own.
        let full: Arc<str> = upsert_sql(ROWS_PER_STATEMENT);
        with_pool!(self, async |pool| {
            let mut tx = pool.begin_write().await?;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let sql = if chunk.len() == ROWS_PER_STATEMENT {
                    Arc::clone(&full)
                } else {
                    upsert_sql(chunk.len())
                };
                let query = chunk
                    .iter()
                    .fold(sqlx::query(AssertSqlSafe(sql)), |q, r| bind_row!(q, r));
                query.execute(&mut *tx).await?;
            }
            tx.commit().await
        })
        .map_err(query_err(ACTION))
    }

    /// Notes a failed operation on an existing row (the row itself stays as last
    /// confirmed). Does nothing when the row does not exist: a failed create leaves
    /// no trace in the snapshot.
    pub async fn record_failure(
        &self,
        provider: &str,
        external_id: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query(
            "UPDATE snapshot SET failures = failures + 1, last_error = $1 \
             WHERE provider = $2 AND external_id = $3",
        )
        // Free text a vendor may have echoed a secret into: scrubbed before it is kept.
        .bind(crate::redact::scrub(error).into_owned())
        .bind(provider)
        .bind(external_id)
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(query_err("record a failure in the snapshot"))
    }

    /// Forgets everything rosterd holds for `provider` — its snapshot rows, its
    /// journal entries (done, failed or in flight) and its failure counts — in one
    /// transaction, for a provider removed from the config for good. Says what was
    /// forgotten: the accounts by state, and the operations left in flight.
    pub async fn forget_provider(&self, provider: &str) -> Result<Forgotten, StoreError> {
        const ACTION: &str = "forget a provider";
        let (states, in_flight): (Vec<(String, i64)>, i64) = with_pool!(self, async |pool| {
            let mut tx = pool.begin_write().await?;
            let states = sqlx::query_as(
                "SELECT state, count(*) FROM snapshot WHERE provider = $1 GROUP BY state",
            )
            .bind(provider)
            .fetch_all(&mut *tx)
            .await?;
            let in_flight = sqlx::query_scalar(
                "SELECT count(*) FROM journal WHERE provider = $1 AND status = 'in_flight'",
            )
            .bind(provider)
            .fetch_one(&mut *tx)
            .await?;
            for delete in [
                "DELETE FROM snapshot WHERE provider = $1",
                "DELETE FROM journal WHERE provider = $1",
                "DELETE FROM failures WHERE provider = $1",
                "DELETE FROM leaver_checks WHERE provider = $1",
                "DELETE FROM scim_quirks WHERE provider = $1",
                "DELETE FROM rate_windows WHERE provider = $1",
            ] {
                sqlx::query(delete).bind(provider).execute(&mut *tx).await?;
            }
            tx.commit().await.map(|()| (states, in_flight))
        })
        .map_err(query_err(ACTION))?;
        let mut forgotten = Forgotten::default();
        for (state, n) in states {
            let n = u64::try_from(n).unwrap_or(0);
            match AccountState::parse(&state) {
                Some(AccountState::Active) => forgotten.active += n,
                Some(AccountState::Disabled) => forgotten.disabled += n,
                Some(AccountState::Manual) | None => forgotten.manual += n,
            }
        }
        forgotten.in_flight = u64::try_from(in_flight).unwrap_or(0);
        Ok(forgotten)
    }

    /// Forgets a row (after a confirmed delete at the vendor).
    pub async fn delete_snapshot_row(
        &self,
        provider: &str,
        external_id: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query(DELETE_ROW)
            .bind(provider)
            .bind(external_id)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(query_err("delete a snapshot row"))
    }
}

pub(super) const DELETE_ROW: &str = "DELETE FROM snapshot WHERE provider = $1 AND external_id = $2";

/// What [`Store::forget_provider`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgotten {
    pub active: u64,
    pub disabled: u64,
    pub manual: u64,
    /// Operations an interrupted run left in flight (their outcome is now unknown).
    pub in_flight: u64,
}
