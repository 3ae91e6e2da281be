//! The journal: each operation is written before it is sent, and finished (with its
//! snapshot change, atomically) once the vendor answers. Entries still in flight on
//! start are the ones a crash interrupted.

use chrono::{DateTime, Utc};

use super::backend::{Begin, Cols};
use super::snapshot::{bind_row, SnapshotUpsert, DELETE_ROW, UPSERT_ONE};
use super::{parse_time, query_err, time_text, AccountState, OpKind, Store, StoreError};

/// What a confirmed operation changes in the snapshot.
#[derive(Debug, Clone, Copy)]
pub enum SnapshotChange<'a> {
    /// A new or changed account: the whole row (create, update, enable with changes).
    Upsert(SnapshotUpsert<'a>),
    /// Only the state changes (disable, enable as it was): the last record stays.
    State {
        provider: &'a str,
        external_id: &'a str,
        state: AccountState,
        confirmed_at: DateTime<Utc>,
    },
    /// The account is gone (delete).
    Remove {
        provider: &'a str,
        external_id: &'a str,
    },
}

impl<'a> From<SnapshotUpsert<'a>> for SnapshotChange<'a> {
    fn from(row: SnapshotUpsert<'a>) -> Self {
        SnapshotChange::Upsert(row)
    }
}

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalStatus {
    /// Written before sending; not yet answered (or interrupted by a crash).
    InFlight,
    Done,
    Failed,
}

impl JournalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JournalStatus::InFlight => "in_flight",
            JournalStatus::Done => "done",
            JournalStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "in_flight" => Some(JournalStatus::InFlight),
            "done" => Some(JournalStatus::Done),
            "failed" => Some(JournalStatus::Failed),
            _ => None,
        }
    }
}

/// One journal row, every column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub id: i64,
    pub run_id: String,
    pub provider: String,
    pub op: OpKind,
    pub external_id: String,
    /// What was sent, as JSON.
    pub payload: String,
    pub status: JournalStatus,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A journal entry just written by [`Store::journal_begin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Begun {
    pub id: i64,
    /// It took over an earlier attempt at the same account left in flight — an
    /// interrupted run's, or a create whose outcome the vendor left unknown — so
    /// whatever that attempt may have done is this entry's to settle.
    pub carries_unknown: bool,
}

impl Store {
    /// Records an operation about to be sent. `payload_json` must be valid JSON.
    pub async fn journal_begin(
        &self,
        run_id: &str,
        provider: &str,
        op: OpKind,
        external_id: &str,
        payload_json: &str,
        now: DateTime<Utc>,
    ) -> Result<Begun, StoreError> {
        self.journal_begin_fields(run_id, provider, op, external_id, payload_json, None, now)
            .await
    }

    /// [`Store::journal_begin`], also recording the names of the fields the operation
    /// changes (for `rosterd history`; never their values).
    #[allow(clippy::too_many_arguments)]
    pub async fn journal_begin_fields(
        &self,
        run_id: &str,
        provider: &str,
        op: OpKind,
        external_id: &str,
        payload_json: &str,
        fields: Option<&[&str]>,
        now: DateTime<Utc>,
    ) -> Result<Begun, StoreError> {
        const ACTION: &str = "write a journal entry";
        let fields = fields.map(|f| serde_json::Value::from(f.to_vec()).to_string());
        let (superseded, id): (u64, i64) = with_pool!(self, async |pool| {
            let mut tx = pool.begin_write().await?;
            // An earlier attempt at the same account still in flight (its outcome
            // unknown) is carried by this one: one entry per account, not one per pass.
            let superseded = sqlx::query(
                "UPDATE journal SET status = 'failed', outcome = 'failed', \
                     error = 'superseded by a later attempt', finished_at = $1 \
                 WHERE status = 'in_flight' AND provider = $2 AND external_id = $3",
            )
            .bind(time_text(now))
            .bind(provider)
            .bind(external_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let id = sqlx::query_scalar(
                "INSERT INTO journal \
                     (run_id, provider, op, external_id, payload, status, created_at, fields) \
                 VALUES ($1, $2, $3, $4, $5, 'in_flight', $6, $7) RETURNING id",
            )
            .bind(run_id)
            .bind(provider)
            .bind(op.as_str())
            .bind(external_id)
            .bind(crate::redact::scrub(payload_json).into_owned())
            .bind(time_text(now))
            .bind(fields)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await.map(|()| (superseded, id))
        })
        .map_err(query_err(ACTION))?;
        Ok(Begun {
            id,
            carries_unknown: superseded > 0,
        })
    }

    /// Marks an operation done and, in the same transaction, records what the vendor
    /// confirmed: either both are written or neither.
    pub async fn journal_finish(
        &self,
        id: i64,
        snapshot: Option<&SnapshotChange<'_>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const ACTION: &str = "finish a journal entry";
        // A confirmed operation that left the account needing a person is `manual`.
        let outcome = match snapshot {
            Some(SnapshotChange::Upsert(row)) if row.state == AccountState::Manual => "manual",
            _ => "done",
        };
        let qe = |source| StoreError::Query {
            action: ACTION,
            source,
        };
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await.map_err(qe)?;
            let done = sqlx::query(
                "UPDATE journal SET status = 'done', outcome = $1, finished_at = $2 \
                 WHERE id = $3 AND status = 'in_flight'",
            )
            .bind(outcome)
            .bind(time_text(now))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(qe)?;
            if done.rows_affected() == 0 {
                // Dropping the transaction rolls it back.
                return Err(StoreError::NotInFlight { id });
            }
            // The vendor's id, for the history: copied from the row before a delete
            // removes it, and after the other changes have written it.
            let copy_vendor_id = |change: &SnapshotChange<'_>| {
                let (provider, external_id) = row_key(change);
                sqlx::query(
                    "UPDATE journal SET vendor_id = \
                         (SELECT vendor_id FROM snapshot WHERE provider = $1 AND external_id = $2) \
                     WHERE id = $3",
                )
                .bind(provider.to_owned())
                .bind(external_id.to_owned())
                .bind(id)
            };
            match snapshot {
                None => {}
                Some(change @ SnapshotChange::Upsert(row)) => {
                    bind_row!(sqlx::query(UPSERT_ONE), row)
                        .execute(&mut *tx)
                        .await
                        .map_err(qe)?;
                    copy_vendor_id(change).execute(&mut *tx).await.map_err(qe)?;
                }
                Some(
                    change @ SnapshotChange::State {
                        provider,
                        external_id,
                        state,
                        confirmed_at,
                    },
                ) => {
                    let changed = sqlx::query(
                        "UPDATE snapshot SET state = $1, confirmed_at = $2, last_error = NULL, \
                         failures = 0 WHERE provider = $3 AND external_id = $4",
                    )
                    .bind(state.as_str())
                    .bind(time_text(*confirmed_at))
                    .bind(*provider)
                    .bind(*external_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(qe)?;
                    if changed.rows_affected() == 0 {
                        return Err(StoreError::Corrupt {
                            provider: provider.to_string(),
                            external_id: external_id.to_string(),
                            message: format!("no snapshot row to mark {}", state.as_str()),
                        });
                    }
                    copy_vendor_id(change).execute(&mut *tx).await.map_err(qe)?;
                }
                Some(
                    change @ SnapshotChange::Remove {
                        provider,
                        external_id,
                    },
                ) => {
                    copy_vendor_id(change).execute(&mut *tx).await.map_err(qe)?;
                    sqlx::query(DELETE_ROW)
                        .bind(*provider)
                        .bind(*external_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(qe)?;
                }
            }
            tx.commit().await.map_err(qe)
        })
    }

    /// Marks an operation failed, with the vendor's (or transport's) message.
    pub async fn journal_fail(
        &self,
        id: i64,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.journal_fail_as(id, error, "failed", now).await
    }

    /// Marks an operation failed because its provider failed as a whole (unreachable,
    /// credentials rejected): the history says `deferred`, as the pass's result does.
    pub async fn journal_defer(
        &self,
        id: i64,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.journal_fail_as(id, error, "deferred", now).await
    }

    async fn journal_fail_as(
        &self,
        id: i64,
        error: &str,
        outcome: &'static str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = with_pool!(self, |pool| sqlx::query(
            "UPDATE journal SET status = 'failed', outcome = $1, error = $2, finished_at = $3 \
             WHERE id = $4 AND status = 'in_flight'",
        )
        .bind(outcome)
        // Free text a vendor may have echoed a secret into: scrubbed before it is kept.
        .bind(crate::redact::scrub(error).into_owned())
        .bind(time_text(now))
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(query_err("mark a journal entry failed"))?;
        if done == 0 {
            return Err(StoreError::NotInFlight { id });
        }
        Ok(())
    }

    /// Entries still in flight (left by a crash, or being sent now), oldest first.
    pub async fn in_flight(&self) -> Result<Vec<JournalEntry>, StoreError> {
        const ACTION: &str = "read the journal";
        with_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT id, run_id, provider, op, external_id, payload, status, error, \
                        created_at, finished_at \
                 FROM journal WHERE status = 'in_flight' ORDER BY id",
            )
            .fetch_all(pool)
            .await
            .map_err(query_err(ACTION))?;
            rows.iter().map(journal_entry).collect()
        })
    }
}

/// The snapshot row a change is about.
fn row_key<'c>(change: &SnapshotChange<'c>) -> (&'c str, &'c str) {
    match *change {
        SnapshotChange::Upsert(SnapshotUpsert {
            provider,
            external_id,
            ..
        })
        | SnapshotChange::State {
            provider,
            external_id,
            ..
        }
        | SnapshotChange::Remove {
            provider,
            external_id,
        } => (provider, external_id),
    }
}

fn journal_entry(row: &impl Cols) -> Result<JournalEntry, StoreError> {
    const ACTION: &str = "read the journal";
    let provider = row.text(2).map_err(query_err(ACTION))?.to_owned();
    let external_id = row.text(4).map_err(query_err(ACTION))?.to_owned();
    let corrupt = |message: String| StoreError::Corrupt {
        provider: provider.clone(),
        external_id: external_id.clone(),
        message,
    };
    let get_err = |e: sqlx::Error| corrupt(e.to_string());
    let id = row.int(0).map_err(get_err)?;
    let status = row.text(6).map_err(get_err)?;
    let status = JournalStatus::parse(status)
        .ok_or_else(|| corrupt(format!("journal entry {id}: unknown status {status:?}")))?;
    let op = row.text(3).map_err(get_err)?;
    let op = OpKind::parse(op)
        .ok_or_else(|| corrupt(format!("journal entry {id}: unknown operation {op:?}")))?;
    let created_at = row.text(8).map_err(get_err)?;
    let finished_at = row.opt_text(9).map_err(get_err)?;
    Ok(JournalEntry {
        id,
        run_id: row.text(1).map_err(get_err)?.to_owned(),
        op,
        payload: row.text(5).map_err(get_err)?.to_owned(),
        status,
        error: row.opt_text(7).map_err(get_err)?.map(str::to_owned),
        created_at: parse_time(created_at)
            .map_err(|m| corrupt(format!("journal entry {id}: {m}")))?,
        finished_at: finished_at
            .map(parse_time)
            .transpose()
            .map_err(|m| corrupt(format!("journal entry {id}: {m}")))?,
        provider,
        external_id,
    })
}
