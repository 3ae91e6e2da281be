//! Consecutive failures per user, so that a user failing run after run with the same
//! record can be quarantined instead of hammering the vendor forever.

use std::collections::BTreeMap;

use super::{query_err, time_text, OpKind, Store, StoreError};
use chrono::{DateTime, Utc};

/// The last failed operation of one user at one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRecord {
    pub op: OpKind,
    /// Fingerprint (text) of the record that failed; empty when the operation has none.
    pub fingerprint: String,
    /// Runs in a row this operation failed with this record.
    pub count: u32,
    pub last_error: String,
}

impl Store {
    /// Counts a failed operation: one more in a row when the same operation failed with
    /// the same record last time, else the first.
    pub async fn record_op_failure(
        &self,
        provider: &str,
        external_id: &str,
        op: OpKind,
        fingerprint: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO failures (provider, external_id, op, fingerprint, count, last_error, last_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $6) \
             ON CONFLICT (provider, external_id) DO UPDATE SET \
                count = CASE WHEN failures.op = excluded.op AND failures.fingerprint = excluded.fingerprint \
                             THEN failures.count + 1 ELSE 1 END, \
                op = excluded.op, fingerprint = excluded.fingerprint, \
                last_error = excluded.last_error, last_at = excluded.last_at",
        )
        .bind(provider)
        .bind(external_id)
        .bind(op.as_str())
        .bind(fingerprint)
        // Free text a vendor may have echoed a secret into: scrubbed before it is kept.
        .bind(crate::redact::scrub(error).into_owned())
        .bind(time_text(now))
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(query_err("count a failure"))
    }

    /// Forgets a user's failures (after a confirmed operation).
    pub async fn clear_op_failure(
        &self,
        provider: &str,
        external_id: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query(
            "DELETE FROM failures WHERE provider = $1 AND external_id = $2"
        )
        .bind(provider)
        .bind(external_id)
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(query_err("clear a failure"))
    }

    /// Every user of `provider` with failures, by external_id.
    pub async fn op_failures(
        &self,
        provider: &str,
    ) -> Result<BTreeMap<String, FailureRecord>, StoreError> {
        const ACTION: &str = "read failures";
        let rows: Vec<(String, String, String, i64, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT external_id, op, fingerprint, count, last_error FROM failures \
                 WHERE provider = $1",
            )
            .bind(provider)
            .fetch_all(pool)
            .await
        })
        .map_err(query_err(ACTION))?;
        let mut out = BTreeMap::new();
        for (external_id, op, fingerprint, count, last_error) in rows {
            let op = OpKind::parse(&op).ok_or_else(|| StoreError::Corrupt {
                provider: provider.to_string(),
                external_id: external_id.clone(),
                message: format!("failures: unknown operation {op:?}"),
            })?;
            out.insert(
                external_id,
                FailureRecord {
                    op,
                    fingerprint,
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    last_error,
                },
            );
        }
        Ok(out)
    }
}

/// A user that needs a look: an account in the manual state, or an operation failing
/// run after run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Attention {
    pub provider: String,
    pub external_id: String,
    /// `manual`, or the failing operation (`create`, `update`, …).
    pub what: String,
    /// Runs in a row it failed (0 for manual accounts).
    pub failures: u32,
    pub message: String,
}

impl Store {
    /// Accounts needing manual action, then failing operations, by provider and key.
    pub async fn attention(&self) -> Result<Vec<Attention>, StoreError> {
        const ACTION: &str = "read what needs attention";
        let rows: Vec<(String, String, String, i64, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT provider, external_id, 'manual', CAST(0 AS BIGINT), \
                        coalesce(last_error, '') FROM snapshot \
                 WHERE state = 'manual' \
                 UNION ALL \
                 SELECT provider, external_id, op, count, last_error FROM failures \
                 ORDER BY 1, 2",
            )
            .fetch_all(pool)
            .await
        })
        .map_err(query_err(ACTION))?;
        Ok(rows
            .into_iter()
            .map(|(provider, external_id, what, count, message)| Attention {
                provider,
                external_id,
                what,
                failures: u32::try_from(count).unwrap_or(u32::MAX),
                message,
            })
            .collect())
    }
}
